-- The call-back worker's bookkeeping, and where each client wants its messages delivered.

-- A call is looked at by the call-back worker once it has ended and has its outcome.
ALTER TABLE calls ADD COLUMN callbacks_seen_at timestamptz;
CREATE INDEX calls_callbacks_todo ON calls (ended_at)
    WHERE ended_at IS NOT NULL AND callbacks_seen_at IS NULL;

ALTER TABLE clients ADD COLUMN report_webhook text;
ALTER TABLE clients ADD COLUMN report_webhook_secret text;
ALTER TABLE clients ADD COLUMN report_emails text[] NOT NULL DEFAULT '{}';

-- A call back an operator or the worklist asked for, refused or placed.
CREATE TABLE callback_requests (
    id            bigserial PRIMARY KEY,
    obligation_id bigint REFERENCES callback_obligations (id),
    client        text        NOT NULL,
    callee_e164   text        NOT NULL,
    operator      text        NOT NULL,
    requested_by  text        NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    result        text        NOT NULL CHECK (result IN ('originated', 'refused', 'failed')),
    reason        text
);
