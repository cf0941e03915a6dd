"""HTTP: call recordings (service/callflows/recordings.py): start one on demand, list them,
play or download one.  Every playback is audited before a byte is sent."""

from __future__ import annotations

from aiohttp import web

from service.ami.adapter import AmiError
from service.callflows import recordings as r
from service.web.auth import allow, client_scope, current_user
from service.web.callflow_context import bridged_caller, operator_call, operator_of
from service.web.callflow_context import directory as clients_directory
from service.web.context import config, now, pool
from service.web.http import (
    conflict,
    json_body,
    not_found,
    ok,
    page,
    paged,
)


@allow("admin", "supervisor", "operator")
async def start_recording(request: web.Request) -> web.Response:
    """Record the operator's current call now (clients whose policy is on_demand)."""
    data = await json_body(request)
    user = current_user(request)
    operator = operator_of(request, data)
    async with pool(request).acquire() as conn:
        linkedid, operator_channel, client_code, pbx, ami = await operator_call(
            request, conn, operator)
        known = await clients_directory(request, conn)
        client = known.clients.get(client_code or "") if known else None
        if client is None or not r.on_demand_allowed(client.recording):
            raise conflict(f"client {client_code}'s calls are not recorded on demand "
                           f"(policy: {client.recording if client else 'unknown'})")
        caller = await bridged_caller(ami, operator, operator_channel)
        try:
            recording_id = await r.start_on_demand(
                ami, conn, pbx_id=pbx.pbx_id, caller_channel=caller, linkedid=linkedid,
                client=client_code, requested_by=user.username, at=now(request))
        except (AmiError, r.RecordingError) as exc:
            raise conflict(str(exc)) from None
    return ok({"id": recording_id}, status=201)


@allow(*r.PLAYERS)
async def list_recordings(request: web.Request) -> web.Response:
    p = page(request)
    async with pool(request).acquire() as conn:
        items = await r.recordings(conn, client_scope(request),
                                   linkedid=request.query.get("linkedid"), limit=p.limit,
                                   before_id=p.before_id)
    return ok(paged(items, p.limit))


@allow(*r.PLAYERS)
async def audio(request: web.Request) -> web.StreamResponse:
    """The WAV file (``?download=1``: as an attachment).  Audited first."""
    try:
        recording_id = int(request.match_info["recording_id"])
    except ValueError:
        raise not_found() from None
    user = current_user(request)
    download = request.query.get("download") == "1"
    async with pool(request).acquire() as conn:
        row = await r.recording(conn, recording_id)
        # Another client's recording is "not found", not "forbidden": it is not theirs.
        if row is None or not r.may_play(user.role, user.client, row["client"]):
            raise not_found()
        spool = next((p.recordings_dir for p in config(request).pbxs
                      if p.pbx_id == row["pbx_id"]), None)
        if spool is None:
            raise not_found("the recording's PBX is not configured here")
        try:
            path = r.audio_path(spool, row["file_name"])
        except r.RecordingError:
            raise not_found() from None
        if not path.is_file():
            raise not_found("the recording's file is not on this host")
        await r.audit(conn, recording_id, user.username, user.role,
                      "download" if download else "play", now(request))
    headers = {"Content-Type": "audio/wav", "Cache-Control": "private, no-store"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{row["linkedid"]}.wav"'
    return web.FileResponse(path, headers=headers)

