-- Call backs, second pass: every delivery attempt of a 受電報告 kept on its own row, and calls
-- the ledger changes after the call-back worker looked at them are looked at again.

-- One row per attempt to deliver a message (webhook or e-mail): when, how it went.
CREATE TABLE message_delivery_attempts (
    delivery_id  bigint      NOT NULL REFERENCES message_deliveries (id) ON DELETE CASCADE,
    attempt      integer     NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    ok           boolean     NOT NULL,
    status       integer,     -- HTTP status (webhook), NULL for e-mail or no answer
    error        text,
    PRIMARY KEY (delivery_id, attempt)
);

-- The ledger merges late records into a call row (outage spool, another instance's view,
-- reconciliation).  If a fact the call-back rules read changes after the worker saw the
-- call, the call is due again; the worker's writes are idempotent.  The WHEN clause keeps the
-- ledger's ordinary writes (calls not seen yet, unchanged facts) free of any function call.
CREATE FUNCTION calls_callbacks_again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.callbacks_seen_at := NULL;
    RETURN NEW;
END $$;

CREATE TRIGGER calls_callbacks_again BEFORE UPDATE ON calls FOR EACH ROW
    WHEN (OLD.callbacks_seen_at IS NOT NULL
          AND NEW.callbacks_seen_at IS NOT DISTINCT FROM OLD.callbacks_seen_at
          AND (OLD.outcome, OLD.forward_answered, OLD.dial_result, OLD.answered_at, OLD.client,
               OLD.caller_e164, OLD.callee_e164, OLD.direction, OLD.ended_at)
              IS DISTINCT FROM
              (NEW.outcome, NEW.forward_answered, NEW.dial_result, NEW.answered_at, NEW.client,
               NEW.caller_e164, NEW.callee_e164, NEW.direction, NEW.ended_at))
    EXECUTE FUNCTION calls_callbacks_again();
