-- Issue 13: the reconciler's state in /healthz without counting the ledger per request.

-- What a pass leaves for /healthz: the calls still unknown after the settle window (counted
-- by the pass, once a pass, through calls_unknown) and when a pass last succeeded (ran_at
-- is also written by a failed pass: "stopped reading" is measured from ok_at).
ALTER TABLE reconcile_runs
    ADD COLUMN ok_at timestamptz,
    ADD COLUMN unknown_calls integer NOT NULL DEFAULT 0;

-- The ledger's calls still unknown: few in a healthy ledger, so counting them reads this
-- small index, not the calls table (outcome 'unknown' implies direction 'inbound').
CREATE INDEX calls_unknown ON calls (pbx_id, started_at) WHERE outcome = 'unknown';

-- A difference a supervisor has looked at and resolved (who, when, why: kept as evidence);
-- a pass that finds it again keeps it resolved.  Only unresolved ones raise the alert.
ALTER TABLE reconcile_differences
    ADD COLUMN resolved_at   timestamptz,
    ADD COLUMN resolved_by   text,
    ADD COLUMN resolved_note text;

-- The differences left, by age (the alert looks at the oldest unresolved one).
CREATE INDEX reconcile_differences_age ON reconcile_differences (pbx_id, first_seen)
    WHERE resolved_at IS NULL;

-- Retention (service/retention): Asterisk's copies and the evidence are purged by time.
CREATE INDEX cdr_start ON cdr (start);
CREATE INDEX queue_log_time ON queue_log (time);
CREATE INDEX scheduled_callbacks_closed ON scheduled_callbacks (client, updated_at)
    WHERE state <> 'pending';
