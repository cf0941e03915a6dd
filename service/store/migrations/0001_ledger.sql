-- The call ledger: one row per call the PBX saw, keyed by (pbx_id, linkedid).
CREATE TABLE calls (
    id                bigserial PRIMARY KEY,
    pbx_id            text        NOT NULL,
    linkedid          text        NOT NULL,
    direction         text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    client            text,
    did               text,
    caller_number     text,        -- as presented by the carrier
    caller_e164       text,        -- normalised (phonenumbers, JP default); NULL when withheld
    caller_name       text,
    caller_withheld   boolean     NOT NULL DEFAULT false,
    caller_uniqueid   text,        -- the caller's queued channel = queue_log callid
    uniqueids         text[]      NOT NULL DEFAULT '{}',
    started_at        timestamptz NOT NULL,
    queued_at         timestamptz,
    answered_at       timestamptz,
    ended_at          timestamptz,
    outcome           text CHECK (outcome IN ('answered', 'abandoned', 'short_abandon',
                          'ivr_hangup', 'timeout', 'no_agents', 'queue_full', 'exit_key',
                          'after_hours', 'forwarded', 'unknown')),
    wait_s            double precision,
    talk_s            double precision,
    answered_by       text,
    escalated         boolean     NOT NULL DEFAULT false,
    escalation_reason text,
    fallback_routed   boolean     NOT NULL DEFAULT false,
    voicemail_left    boolean     NOT NULL DEFAULT false,
    voicemail_box     text,
    forwarded_to      text,
    forward_answered  boolean,
    route_action      text,
    route_queue       text,
    route_flags       text,
    transfers         integer     NOT NULL DEFAULT 0,
    hangup_cause      text,
    callee_number     text,        -- outbound only
    callee_e164       text,
    placed_by         text,
    dial_result       text CHECK (dial_result IN ('answered', 'busy', 'no_answer', 'failed')),
    end_seen          boolean     NOT NULL DEFAULT true,
    settled_by        text,        -- NULL = the AMI stream; 'reconcile' = from CDR/queue_log
    settled_note      text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pbx_id, linkedid),
    CHECK (outcome IS NULL OR direction = 'inbound')
);
CREATE INDEX calls_client_started ON calls (client, started_at DESC);
CREATE INDEX calls_started ON calls (started_at DESC);
CREATE INDEX calls_open ON calls (pbx_id) WHERE ended_at IS NULL;
-- Repeat detection: calls from one number to one client, newest first.
CREATE INDEX calls_repeat ON calls (client, caller_e164, started_at DESC)
    WHERE direction = 'inbound';
-- Verified call backs: outbound calls to a number.
CREATE INDEX calls_callee ON calls (callee_e164, started_at) WHERE direction = 'outbound';
CREATE INDEX calls_uniqueids ON calls USING gin (uniqueids);

-- One stay of the caller in one queue.
CREATE TABLE stints (
    pbx_id          text        NOT NULL,
    linkedid        text        NOT NULL,
    seq             integer     NOT NULL,
    queue           text        NOT NULL,
    caller_uniqueid text,
    joined_at       timestamptz NOT NULL,
    left_at         timestamptz,
    connected_at    timestamptz,
    ended_at        timestamptz,
    position        integer,
    agent           text,
    interface       text,
    result          text        NOT NULL,
    wait_s          double precision,
    talk_s          double precision,
    asterisk_hold_s integer,
    PRIMARY KEY (pbx_id, linkedid, seq),
    FOREIGN KEY (pbx_id, linkedid) REFERENCES calls (pbx_id, linkedid) ON DELETE CASCADE
);

-- One ring of one member for one caller.
CREATE TABLE ring_attempts (
    pbx_id          text        NOT NULL,
    member_uniqueid text        NOT NULL,
    linkedid        text        NOT NULL,
    stint_seq       integer     NOT NULL,
    queue           text        NOT NULL,
    interface       text,
    agent           text,
    member_channel  text,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    result          text        NOT NULL,
    ring_ms         integer,
    PRIMARY KEY (pbx_id, member_uniqueid),
    FOREIGN KEY (pbx_id, linkedid) REFERENCES calls (pbx_id, linkedid) ON DELETE CASCADE
);
CREATE INDEX ring_attempts_call ON ring_attempts (pbx_id, linkedid);
