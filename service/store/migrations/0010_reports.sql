-- What the client company receives (issue 9): report settings per client, the monthly
-- report's schedule, pushes of missed calls / voicemails / messages, reminders of overdue
-- call backs, handover imports, retention and the audit of who looked at a client's data.

-- Per-client report settings from the clients file (service/clients/schema.py).
ALTER TABLE clients ADD COLUMN name_ja text;
ALTER TABLE clients ADD COLUMN name_en text;
ALTER TABLE clients ADD COLUMN plan_counts text NOT NULL DEFAULT 'answered'
    CHECK (plan_counts IN ('answered', 'offered'));
ALTER TABLE clients ADD COLUMN overage_price integer;               -- JPY per call over plan
ALTER TABLE clients ADD COLUMN service_level_s double precision NOT NULL DEFAULT 20;
ALTER TABLE clients ADD COLUMN report_contacts text[] NOT NULL DEFAULT '{}';  -- monthly report
ALTER TABLE clients ADD COLUMN push_mode text NOT NULL DEFAULT 'immediate'
    CHECK (push_mode IN ('immediate', 'digest', 'daily', 'off'));
ALTER TABLE clients ADD COLUMN push_every_s double precision;       -- digest interval
ALTER TABLE clients ADD COLUMN push_daily_at time;                  -- daily digest, local time
ALTER TABLE clients ADD COLUMN retention_s double precision;        -- NULL: keep for ever

-- When an obligation stopped being open (fulfilled, expired, cancelled): the monthly report
-- counts what was still owed at a month's end.  Set by a trigger so that every code path
-- that closes an obligation records it.
ALTER TABLE callback_obligations ADD COLUMN closed_at timestamptz;
CREATE FUNCTION callback_obligations_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.closed_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER callback_obligations_closed BEFORE UPDATE ON callback_obligations FOR EACH ROW
    WHEN (OLD.state = 'open' AND NEW.state <> 'open' AND NEW.closed_at IS NULL)
    EXECUTE FUNCTION callback_obligations_closed();

-- The delivery outbox of 受電報告 also carries the monthly report, pushes, digests and
-- reminders: same worker, retries, attempts and tracking.  Such a row has no message; what
-- to send is on the row itself.
ALTER TABLE message_deliveries ALTER COLUMN message_id DROP NOT NULL;
ALTER TABLE message_deliveries ADD COLUMN kind text NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'monthly_report', 'push', 'digest', 'reminder'));
ALTER TABLE message_deliveries ADD COLUMN client text;
ALTER TABLE message_deliveries ADD COLUMN subject text;
ALTER TABLE message_deliveries ADD COLUMN text_body text;
ALTER TABLE message_deliveries ADD COLUMN payload jsonb;
ALTER TABLE message_deliveries ADD COLUMN attachment bytea;
ALTER TABLE message_deliveries ADD COLUMN attachment_name text;
ALTER TABLE message_deliveries ADD CONSTRAINT message_deliveries_has_content
    CHECK (kind = 'message' OR (client IS NOT NULL AND payload IS NOT NULL));
CREATE INDEX message_deliveries_client ON message_deliveries (client, created_at)
    WHERE client IS NOT NULL;
-- The report counts a message's deliveries; the foreign key alone has no index.
CREATE INDEX message_deliveries_message ON message_deliveries (message_id);
-- The report reads a client's obligations by when they opened.
CREATE INDEX callback_obligations_client_opened ON callback_obligations (client, opened_at);

-- A failed delivery is an alert for the wallboard: given up (state failed) or retrying after
-- a failed attempt (state pending, attempts > 0).
CREATE VIEW delivery_failures AS
SELECT d.id, COALESCE(m.client, d.client) AS client, d.kind, d.channel, d.target,
       d.state, d.attempts, d.last_error, d.next_attempt_at, d.created_at,
       (SELECT max(a.finished_at) FROM message_delivery_attempts a
         WHERE a.delivery_id = d.id) AS last_attempt_at
  FROM message_deliveries d LEFT JOIN messages m ON m.id = d.message_id
 WHERE d.state = 'failed' OR (d.state = 'pending' AND d.attempts > 0);

-- One monthly report per client and month, queued once (the scheduler's idempotency).
CREATE TABLE monthly_reports (
    client     text        NOT NULL,
    month      date        NOT NULL,   -- first day of the month, client's calendar
    queued_at  timestamptz NOT NULL DEFAULT now(),
    deliveries integer     NOT NULL,
    PRIMARY KEY (client, month)
);

-- Things pushed to a client as they happen: missed calls with a usable number, voicemails,
-- messages (for clients on a digest).  sent_at is set when the item left in a delivery.
CREATE TABLE push_items (
    id        bigserial PRIMARY KEY,
    client    text        NOT NULL,
    kind      text        NOT NULL CHECK (kind IN ('missed_call', 'voicemail', 'message')),
    ref       text        NOT NULL,   -- pbx_id/linkedid of the call, or the message id
    at        timestamptz NOT NULL,
    item      jsonb       NOT NULL,
    sent_at   timestamptz,
    UNIQUE (kind, ref)
);
CREATE INDEX push_items_unsent ON push_items (client, at) WHERE sent_at IS NULL;

-- The push worker reads calls and messages after a mark (ids are monotonic); history from
-- before this migration is not pushed.
INSERT INTO worker_marks (name, value) VALUES
    ('push_calls', (SELECT coalesce(max(id), 0) FROM calls)),
    ('push_messages', (SELECT coalesce(max(id), 0) FROM messages))
ON CONFLICT (name) DO NOTHING;

-- An overdue call back is reminded once.
CREATE TABLE callback_reminders (
    obligation_id bigint      PRIMARY KEY REFERENCES callback_obligations (id) ON DELETE CASCADE,
    reminded_at   timestamptz NOT NULL DEFAULT now()
);

-- Rows that came in with a handover (引き継ぎ) bundle: importing twice changes nothing.
CREATE TABLE handover_imports (
    source_key  text        PRIMARY KEY,   -- bundle id + kind + the row's id in the bundle
    kind        text        NOT NULL,
    local_id    bigint,
    imported_at timestamptz NOT NULL DEFAULT now()
);

-- Who viewed or exported which client's data (reports, exports, purges).
CREATE TABLE data_access_audit (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text        NOT NULL,    -- user name, or cli:<os user>
    action    text        NOT NULL,    -- report_view | report_export | handover_export |
                                       -- handover_import | purge
    client    text,
    detail    text
);
CREATE INDEX data_access_audit_client ON data_access_audit (client, at DESC);
CREATE INDEX data_access_audit_at ON data_access_audit (at DESC);
