-- Call-back obligations, their attempts, messages to clients (受電報告) with their delivery,
-- and operator escalations (手上げ).

-- An obligation to call (client, number) back.  Opened by a missed call with a usable number
-- or by a message asking for a call back; several missed calls join one open obligation.
CREATE TABLE callback_obligations (
    id              bigserial PRIMARY KEY,
    client          text        NOT NULL,
    caller_e164     text,        -- NULL for a withheld number: state cannot_call_back
    caller_number   text,
    state           text        NOT NULL CHECK (state IN
                        ('open', 'fulfilled', 'expired', 'cancelled', 'cannot_call_back')),
    fulfilment      text CHECK (fulfilment IN ('verified', 'reported')),
    reason          text        NOT NULL CHECK (reason IN ('missed', 'message')),
    opened_at       timestamptz NOT NULL,
    due_at          timestamptz,
    calls           integer     NOT NULL DEFAULT 1,
    fulfilled_at    timestamptz,
    fulfilled_by    text,        -- operator extension (verified) or user name (reported)
    fulfilled_pbx   text,
    fulfilled_linkedid text,     -- the answered outbound call (verified)
    note            text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'fulfilled') = (fulfilment IS NOT NULL)),
    CHECK (state <> 'cannot_call_back' OR caller_e164 IS NULL)
);
-- One open obligation per (client, number): later missed calls join it.
CREATE UNIQUE INDEX callback_obligations_open ON callback_obligations (client, caller_e164)
    WHERE state = 'open' AND caller_e164 IS NOT NULL;
CREATE INDEX callback_obligations_due ON callback_obligations (state, due_at);
CREATE INDEX callback_obligations_fulfilled ON callback_obligations
    (client, caller_e164, fulfilled_at DESC) WHERE state = 'fulfilled';

-- The calls that opened or joined an obligation (idempotency: a call counts once).
CREATE TABLE obligation_calls (
    pbx_id        text   NOT NULL,
    linkedid      text   NOT NULL,
    obligation_id bigint NOT NULL REFERENCES callback_obligations (id) ON DELETE CASCADE,
    PRIMARY KEY (pbx_id, linkedid)
);

-- Every outbound call to the number after the obligation opened: answered or not.
CREATE TABLE callback_attempts (
    obligation_id bigint      NOT NULL REFERENCES callback_obligations (id) ON DELETE CASCADE,
    pbx_id        text        NOT NULL,
    linkedid      text        NOT NULL,
    placed_by     text,
    started_at    timestamptz NOT NULL,
    answered_at   timestamptz,
    result        text        NOT NULL,  -- answered | busy | no_answer | failed
    PRIMARY KEY (obligation_id, pbx_id, linkedid)
);

-- Where the obligation worker has got to in the ledger (calls.id is monotonic).
CREATE TABLE worker_marks (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);

-- 受電報告: a message an operator takes for the client.
CREATE TABLE messages (
    id            bigserial PRIMARY KEY,
    client        text        NOT NULL,
    pbx_id        text,
    linkedid      text,
    caller_number text,
    caller_e164   text,
    caller_name   text,
    disposition   text        NOT NULL CHECK (disposition IN
                      ('callback_requested', 'urgent', 'info_only')),
    body          text        NOT NULL,
    taken_by      text,
    obligation_id bigint REFERENCES callback_obligations (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_client ON messages (client, created_at DESC);

-- Delivery of a message by webhook or e-mail: an outbox the delivery worker drains.
CREATE TABLE message_deliveries (
    id              bigserial PRIMARY KEY,
    message_id      bigint      NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    channel         text        NOT NULL CHECK (channel IN ('webhook', 'email')),
    target          text        NOT NULL,
    delivery_id     uuid        NOT NULL UNIQUE,
    state           text        NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_deliveries_due ON message_deliveries (next_attempt_at)
    WHERE state = 'pending';

-- 手上げ: an operator (or supervisor) moved a caller to the supervisors.
CREATE TABLE escalations (
    id            bigserial PRIMARY KEY,
    pbx_id        text        NOT NULL,
    linkedid      text,
    client        text,
    channel       text        NOT NULL,
    reason        text        NOT NULL CHECK (reason IN
                      ('complaint', 'complaint_naming_operator', 'payment_dispute', 'other')),
    requested_by  text        NOT NULL,
    via           text        NOT NULL CHECK (via IN ('feature_code', 'api')),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    result        text        NOT NULL,  -- moved | failed
    detail        text
);
CREATE INDEX escalations_time ON escalations (requested_at DESC);

-- Outbound calls to a number for a client, newest answered first (verified call backs).
CREATE INDEX calls_callback ON calls (client, callee_e164, answered_at DESC)
    WHERE direction = 'outbound' AND dial_result = 'answered';
