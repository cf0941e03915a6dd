-- Issue 13: messages to callees (e-mail, or fax through an e-mail-to-fax gateway) follow the
-- same calling window and do-not-call list as calls (貸金業法 21条: the window applies to
-- fax and e-mail too).  A message asked for outside the window is held until the window
-- opens in the callee's time; every decision is an outbound_decisions row (path 'message').
CREATE TABLE callee_messages (
    id             bigserial   PRIMARY KEY,
    client         text        NOT NULL,
    obligation_id  bigint,                            -- the call back it belongs to, if any
    callee_e164    text        NOT NULL,              -- decides the callee's zone and the list
    channel        text        NOT NULL CHECK (channel IN ('email', 'fax')),
    target         text        NOT NULL,              -- the e-mail address, or the fax number
    subject        text        NOT NULL,
    body           text        NOT NULL,
    requested_by   text        NOT NULL,
    created_at     timestamptz NOT NULL,              -- the service's clock
    state          text        NOT NULL CHECK (state IN ('pending', 'held', 'sent', 'refused',
                                                         'failed', 'cancelled')),
    not_before     timestamptz NOT NULL,              -- held: when the window opens
    attempts       integer     NOT NULL DEFAULT 0,    -- sending attempts (SMTP)
    last_decision  bigint,                            -- outbound_decisions.id of the last check
    last_reason    text,
    sent_at        timestamptz,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX callee_messages_due ON callee_messages (not_before)
    WHERE state IN ('pending', 'held');
CREATE INDEX callee_messages_client ON callee_messages (client, created_at);
