-- Routing data: every version of the validated clients file, and one row per client for the
-- parts of the service that show clients (screen pop, portal, reports).
CREATE TABLE routing_documents (
    version     bigserial PRIMARY KEY,
    document    jsonb       NOT NULL,    -- the validated clients file, as loaded
    source      text        NOT NULL,    -- file name it came from
    source_text text        NOT NULL,    -- the file itself, for audit and re-validation
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    loaded_by   text
);

CREATE TABLE clients (
    code            text PRIMARY KEY,
    name            text        NOT NULL,
    active          boolean     NOT NULL DEFAULT true,  -- false once removed from the file
    dids            text[]      NOT NULL DEFAULT '{}',
    timezone        text        NOT NULL DEFAULT 'Asia/Tokyo',
    queue           text        NOT NULL,
    greeting_script text        NOT NULL DEFAULT '',
    notes           text        NOT NULL DEFAULT '',
    plan_calls      integer,
    callback_deadline_s double precision NOT NULL DEFAULT 86400,
    calling_hours_start time    NOT NULL DEFAULT '08:00',
    calling_hours_end   time    NOT NULL DEFAULT '21:00',
    repeat_earlier_calls integer NOT NULL DEFAULT 2,
    repeat_window_s double precision NOT NULL DEFAULT 259200,
    repeat_enabled  boolean     NOT NULL DEFAULT true,
    short_abandon_s double precision NOT NULL DEFAULT 5,
    version         bigint      NOT NULL REFERENCES routing_documents (version),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
