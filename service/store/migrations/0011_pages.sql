-- The pages (issue 10): clients' wallboard thresholds, why an operator
-- paused, supervisors' acknowledgements of alerts, and live updates of call backs.

-- (name_ja, name_en and service_level_s come with 0010_reports.)
-- The wallboard marks a client whose service level is below its target.
ALTER TABLE clients ADD COLUMN service_level_target double precision NOT NULL DEFAULT 0.8;
-- A caller waiting longer than this is an alert on the wallboard.
ALTER TABLE clients ADD COLUMN long_wait_s double precision NOT NULL DEFAULT 60;

ALTER TABLE operator_states ADD COLUMN paused_reason text NOT NULL DEFAULT '';
ALTER TABLE operator_states ADD COLUMN status_since timestamptz NOT NULL DEFAULT now();

-- An alert a supervisor has seen (key: kind and what it is about, e.g. overdue:42).
CREATE TABLE alert_acks (
    key       text PRIMARY KEY,
    acked_by  text        NOT NULL,
    acked_at  timestamptz NOT NULL DEFAULT now()
);

-- Every change of a call back reaches the pages' live stream (worklist, portal), whoever made
-- it: the call-back worker, a click on a page, a script on the API, another instance.
CREATE FUNCTION callback_obligations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orikaeshi_calls', json_build_object(
        'kind', 'obligation', 'id', NEW.id, 'client', NEW.client, 'state', NEW.state)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER callback_obligations_notify AFTER INSERT OR UPDATE ON callback_obligations
    FOR EACH ROW EXECUTE FUNCTION callback_obligations_notify();
