"""The call flows' endpoints (docs/callflows.md), listed for service/web/routes.py's table:
(method, path, handler, summary, query, body)."""

from __future__ import annotations

from typing import Any

from service.callflows.complaints import CATEGORIES, STATUSES
from service.callflows.presence import ACTIONS, PAUSE_REASONS
from service.web import api_complaints, api_handraise, api_presence, api_recordings

PAGE = (("limit", "1..500, default 50"), ("before", "id cursor from next_before"))

CALLFLOW_ENDPOINTS: tuple[tuple[Any, ...], ...] = (
    ("POST", "/api/handraise", api_handraise.hold,
     "手上げ with hold: the caller on hold, operator and supervisors rung into a room",
     (), {"operator": "extension (supervisors; operators hold their own caller)"}),
    ("GET", "/api/handraise", api_handraise.list_handraises,
     "手上げ with hold, newest first (hold and help seconds)", (("open", "1: open only"),),
     {}),
    ("POST", "/api/handraise/{handraise_id}/{action}", api_handraise.decide,
     "take_over: the caller to the supervisor; hand_back: the caller to the operator; "
     "listen: the supervisor muted in the room (or rung into it muted); whisper: unmuted, "
     "talking to the operator while the caller stays on hold", (), {}),
    ("GET", "/api/callflow-alerts", api_handraise.list_alerts,
     "Open call-flow alerts: safety_net (no supervisor answered), handraise", (), {}),
    ("POST", "/api/callflow-alerts/{alert_id}/clear", api_handraise.clear_alert,
     "Clear a call-flow alert", (), {}),
    ("POST", "/api/complaints", api_complaints.create_complaint, "Record a complaint", (),
     {"client": "client code", "category": " | ".join(CATEGORIES), "body": "what happened",
      "named_operator": "optional: the operator the caller named",
      "taken_over_by": "optional", "pbx": "optional call", "linkedid": "optional call"}),
    ("GET", "/api/complaints", api_complaints.list_complaints, "Complaints, newest first",
     (("client", "client code"), ("status", " | ".join(STATUSES)), *PAGE), {}),
    ("POST", "/api/complaints/{complaint_id}", api_complaints.update_complaint,
     "Update a complaint (status, resolution, who took over)", (),
     {"status": " | ".join(STATUSES), "resolution": "required to resolve or close",
      "taken_over_by": "optional"}),
    ("GET", "/api/complaints/count", api_complaints.complaint_count,
     "How many complaints a client had (all a client user sees of them)",
     (("client", "client code"), ("from", "ISO time"), ("to", "ISO time")), {}),
    ("POST", "/api/recordings", api_recordings.start_recording,
     "Record the operator's current call now (clients whose policy is on_demand)", (),
     {"operator": "extension (supervisors; operators record their own call)"}),
    ("GET", "/api/recordings", api_recordings.list_recordings,
     "Recordings, newest first (client users: their own calls)",
     (("linkedid", "one call"), *PAGE), {}),
    ("GET", "/api/recordings/{recording_id}/audio", api_recordings.audio,
     "Play (or ?download=1) a recording; every playback audited", (), {}),
    ("POST", "/api/presence", api_presence.change,
     "Log in / log out / pause with a reason (operators: themselves)", (),
     {"action": " | ".join(ACTIONS), "reason": "pause: " + " | ".join(PAUSE_REASONS),
      "queues": "login: list of queues (default: those of the last login)",
      "operator": "extension (supervisors)"}),
    ("GET", "/api/presence", api_presence.states,
     "Every operator's state now (operators: their own)", (), {}),
    ("GET", "/api/presence/report", api_presence.report,
     "Seconds per operator in each state (paused:<reason>)",
     (("from", "ISO time"), ("to", "ISO time")), {}),
    ("POST", "/api/dispositions", api_presence.set_disposition,
     "The disposition code of an answered call (the client's list)", (),
     {"pbx": "pbx id", "linkedid": "the call", "code": "one of the client's dispositions"}),
    ("GET", "/api/dispositions", api_presence.list_dispositions,
     "A client's disposition codes (from the clients file)", (("client", "client code"),), {}),
)
