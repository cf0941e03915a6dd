-- Call flows (docs/callflows.md): wallboard alerts raised by the dialplan (escalation safety
-- net, 手上げ with hold), 手上げ with hold and its audit, complaints, call recordings and the
-- audit of their playback, operator presence and after-call dispositions.

-- An alert for the wallboard, raised by a flow; also sent on the live stream (NOTIFY
-- orikaeshi_calls, kind "alert").  Open until someone clears it.
CREATE TABLE callflow_alerts (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('safety_net', 'handraise')),
    pbx_id      text        NOT NULL,
    linkedid    text,
    client      text,
    detail      jsonb       NOT NULL DEFAULT '{}',
    raised_at   timestamptz NOT NULL DEFAULT now(),
    cleared_at  timestamptz,
    cleared_by  text
);
CREATE INDEX callflow_alerts_open ON callflow_alerts (raised_at) WHERE cleared_at IS NULL;
CREATE INDEX callflow_alerts_call ON callflow_alerts (pbx_id, linkedid);

-- 手上げ with hold: the operator puts the caller on hold and asks a supervisor for help.
CREATE TABLE handraises (
    id               bigserial PRIMARY KEY,
    pbx_id           text        NOT NULL,
    linkedid         text,
    client           text,
    operator         text        NOT NULL,
    caller_channel   text        NOT NULL,
    operator_channel text,                   -- the operator's phone in the consult room
    supervisor_channel text,                 -- the supervisor's phone in the consult room
    via              text        NOT NULL CHECK (via IN ('feature_code', 'api')),
    held_at          timestamptz NOT NULL,
    helped_at        timestamptz,            -- a supervisor joined (listen/whisper/take over)
    helped_by        text,
    ended_at         timestamptz,
    resolution       text CHECK (resolution IN ('taken_over', 'handed_back',
                                                'caller_hung_up', 'cancelled')),
    hold_s           double precision,       -- caller on hold: held_at .. take over / back
    help_s           double precision        -- supervisor helping: helped_at .. ended_at
);
CREATE INDEX handraises_open ON handraises (pbx_id, caller_channel) WHERE ended_at IS NULL;
CREATE INDEX handraises_call ON handraises (pbx_id, linkedid);

CREATE TABLE handraise_audit (
    id            bigserial PRIMARY KEY,
    handraise_id  bigint      NOT NULL REFERENCES handraises (id),
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text        NOT NULL,
    action        text        NOT NULL,    -- hold | alert | listen | whisper | take_over | hand_back | ...
    detail        text
);

-- The ledger's figures for the call (reports read them with the call).
ALTER TABLE calls ADD COLUMN hold_s double precision;
ALTER TABLE calls ADD COLUMN help_s double precision;

-- A complaint, named operator or not.  Supervisors see all; a client only a count.
CREATE TABLE complaints (
    id              bigserial PRIMARY KEY,
    client          text        NOT NULL,
    pbx_id          text,
    linkedid        text,
    named_operator  text,
    category        text        NOT NULL CHECK (category IN
                        ('operator_attitude', 'operator_mistake', 'no_callback', 'service',
                         'payment', 'other')),
    body            text        NOT NULL,
    taken_over_by   text,
    resolution      text,
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN
                        ('open', 'in_progress', 'resolved', 'closed')),
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text
);
CREATE INDEX complaints_client_time ON complaints (client, created_at);

-- Recordings made by MixMonitor, one file per call, named by its linkedid.
CREATE TABLE recordings (
    id            bigserial PRIMARY KEY,
    pbx_id        text        NOT NULL,
    linkedid      text        NOT NULL,
    client        text,
    file_name     text        NOT NULL,    -- relative to [recordings] directory
    reason        text        NOT NULL CHECK (reason IN ('policy', 'on_demand')),
    requested_by  text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    UNIQUE (pbx_id, linkedid)
);
CREATE INDEX recordings_client_time ON recordings (client, started_at);

CREATE TABLE recording_audit (
    id            bigserial PRIMARY KEY,
    recording_id  bigint      NOT NULL REFERENCES recordings (id),
    username      text        NOT NULL,
    role          text        NOT NULL,
    action        text        NOT NULL CHECK (action IN ('play', 'download', 'start',
                                                         'delete')),
    at            timestamptz NOT NULL DEFAULT now()
);

-- Operator presence: each state with its start and end, for per-operator figures.
CREATE TABLE presence_spans (
    id          bigserial PRIMARY KEY,
    pbx_id      text        NOT NULL,
    operator    text        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('logged_in', 'paused', 'logged_out')),
    reason      text,
    queues      text[]      NOT NULL DEFAULT '{}',   -- logged in to (kept for the next login)
    via         text        NOT NULL CHECK (via IN ('api', 'feature_code', 'ami')),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX presence_open ON presence_spans (pbx_id, operator) WHERE ended_at IS NULL;
CREATE INDEX presence_operator_time ON presence_spans (operator, started_at);

-- One disposition code per answered call (the client's list in the clients file).
CREATE TABLE call_dispositions (
    pbx_id    text        NOT NULL,
    linkedid  text        NOT NULL,
    client    text        NOT NULL,
    code      text        NOT NULL,
    operator  text,
    set_by    text        NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pbx_id, linkedid)
);
