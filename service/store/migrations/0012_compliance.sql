-- Issue 13: the law on every outbound call, and books that keep themselves.

-- Every outbound decision on every path (click-to-call, scheduled call back, handset dial,
-- message to a callee): the evidence of what was refused or allowed, when, why, for whom.
-- Allowed rows are also the contact history the limits count (attempts per day, gap).
CREATE TABLE outbound_decisions (
    id              bigserial   PRIMARY KEY,
    decided_at      timestamptz NOT NULL,            -- the service's clock
    client          text,                            -- NULL: a handset with no client set
    callee_e164     text,
    dialled         text        NOT NULL,            -- as dialled / given (masked in logs only)
    path            text        NOT NULL CHECK (path IN ('click_to_call', 'scheduled',
                                                         'handset', 'message')),
    requested_by    text,                            -- the user, or the handset's extension
    operator        text,                            -- whose phone rings
    allowed         boolean     NOT NULL,
    rule            text        NOT NULL,            -- allowed | do_not_call | calling_hours | ...
    reason          text        NOT NULL,
    callee_zone     text,
    callee_local    text,                            -- the callee's wall clock, ISO with offset
    opens_at        timestamptz,                     -- when the callee may next be called
    override_by     text,                            -- a supervisor's override: who
    override_reason text,                            -- and why
    pbx_id          text,
    uniqueid        text,                            -- the handset's channel
    result          text CHECK (result IN ('originated', 'failed', 'dialled')),
    CHECK (override_by IS NULL OR (allowed AND override_reason IS NOT NULL))
);
CREATE INDEX outbound_decisions_history ON outbound_decisions (client, callee_e164, decided_at)
    WHERE allowed;
CREATE INDEX outbound_decisions_month ON outbound_decisions (client, decided_at);

-- Outbound usage per client and month: the calls the PBX saw (the ledger) and the decisions.
-- Months are in each client's time zone.  Documented in docs/compliance.md.
CREATE FUNCTION outbound_usage(p_client text, p_from timestamptz, p_until timestamptz)
RETURNS TABLE (calls bigint, answered bigint, talk_s bigint, allowed bigint, refused bigint,
               overridden bigint)
LANGUAGE sql STABLE AS $$
    SELECT
      (SELECT count(*) FROM calls WHERE direction = 'outbound' AND client = p_client
          AND started_at >= p_from AND started_at < p_until),
      (SELECT count(*) FROM calls WHERE direction = 'outbound' AND client = p_client
          AND started_at >= p_from AND started_at < p_until AND dial_result = 'answered'),
      (SELECT coalesce(sum(greatest(0, extract(epoch FROM ended_at - answered_at)))::bigint, 0)
          FROM calls WHERE direction = 'outbound' AND client = p_client
          AND started_at >= p_from AND started_at < p_until AND answered_at IS NOT NULL
          AND ended_at IS NOT NULL),
      (SELECT count(*) FROM outbound_decisions WHERE client = p_client AND allowed
          AND decided_at >= p_from AND decided_at < p_until),
      (SELECT count(*) FROM outbound_decisions WHERE client = p_client AND NOT allowed
          AND decided_at >= p_from AND decided_at < p_until),
      (SELECT count(*) FROM outbound_decisions WHERE client = p_client
          AND override_by IS NOT NULL AND decided_at >= p_from AND decided_at < p_until)
$$;

-- Asterisk's own records, as Asterisk writes them into PostgreSQL (cdr_pgsql with
-- timezone=UTC; queue_log through realtime res_config_pgsql with
-- queue_log_realtime_use_gmt=yes), or as the service copies them from Master.csv and
-- queue_log when it follows the files on the PBX host.  Times are UTC.
CREATE TABLE cdr (
    id          bigserial PRIMARY KEY,
    pbx_id      text      NOT NULL DEFAULT '',  -- '': written by Asterisk itself (cdr_pgsql)
    accountcode text      NOT NULL DEFAULT '',
    src         text      NOT NULL DEFAULT '',
    dst         text      NOT NULL DEFAULT '',
    dcontext    text      NOT NULL DEFAULT '',
    clid        text      NOT NULL DEFAULT '',
    channel     text      NOT NULL DEFAULT '',
    dstchannel  text      NOT NULL DEFAULT '',
    lastapp     text      NOT NULL DEFAULT '',
    lastdata    text      NOT NULL DEFAULT '',
    start       timestamp,
    answer      timestamp,
    "end"       timestamp,
    duration    bigint    NOT NULL DEFAULT 0,
    billsec     bigint    NOT NULL DEFAULT 0,
    disposition text      NOT NULL DEFAULT '',
    amaflags    bigint    NOT NULL DEFAULT 0,
    uniqueid    text      NOT NULL DEFAULT '',
    userfield   text      NOT NULL DEFAULT '',
    linkedid    text      NOT NULL DEFAULT '',
    sequence    bigint    NOT NULL DEFAULT 0,
    source      text      NOT NULL DEFAULT 'pgsql'   -- pgsql | file:<path>:<line>
);
CREATE UNIQUE INDEX cdr_once ON cdr (pbx_id, uniqueid, sequence, start);
CREATE INDEX cdr_linkedid ON cdr (pbx_id, linkedid);
CREATE INDEX cdr_id ON cdr (id);

CREATE TABLE queue_log (
    id          bigserial PRIMARY KEY,
    pbx_id      text      NOT NULL DEFAULT '',  -- '': written by Asterisk (realtime)
    time        timestamp,
    callid      text      NOT NULL DEFAULT '',
    queuename   text      NOT NULL DEFAULT '',
    agent       text      NOT NULL DEFAULT '',
    event       text      NOT NULL DEFAULT '',
    data        text      NOT NULL DEFAULT '',
    data1       text      NOT NULL DEFAULT '',
    data2       text      NOT NULL DEFAULT '',
    data3       text      NOT NULL DEFAULT '',
    data4       text      NOT NULL DEFAULT '',
    data5       text      NOT NULL DEFAULT '',
    source      text      NOT NULL DEFAULT 'pgsql'
);
CREATE UNIQUE INDEX queue_log_once ON queue_log (pbx_id, time, callid, event, queuename, agent,
                                                 data1, data2, data3);
CREATE INDEX queue_log_callid ON queue_log (pbx_id, callid);

-- Where the file follower is in each file (so a restart neither skips nor repeats lines).
CREATE TABLE reconcile_positions (
    pbx_id      text   NOT NULL,
    path        text   NOT NULL,
    inode       bigint NOT NULL,
    position    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pbx_id, path)
);

-- The differences the last continuous reconciliation left (the supervisor page, /healthz).
CREATE TABLE reconcile_differences (
    pbx_id      text        NOT NULL,
    kind        text        NOT NULL,
    linkedid    text        NOT NULL DEFAULT '',
    detail      text        NOT NULL,
    started_at  timestamptz,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pbx_id, kind, linkedid)
);

CREATE TABLE reconcile_runs (
    pbx_id      text        PRIMARY KEY,
    ran_at      timestamptz NOT NULL,
    calls_checked integer   NOT NULL,
    settled     integer     NOT NULL,
    added       integer     NOT NULL,
    differences integer     NOT NULL,
    error       text
);

-- Call backs scheduled for a time (by a person on the worklist, or by another program):
-- placed by the service at run_at through the same policy as a click (path 'scheduled').
CREATE TABLE scheduled_callbacks (
    id            bigserial   PRIMARY KEY,
    obligation_id bigint      REFERENCES callback_obligations (id) ON DELETE SET NULL,
    client        text        NOT NULL,
    callee_e164   text        NOT NULL,
    operator      text        NOT NULL,            -- whose phone rings first
    requested_by  text        NOT NULL,
    run_at        timestamptz NOT NULL,
    state         text        NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'placed', 'refused', 'failed', 'cancelled')),
    tries         integer     NOT NULL DEFAULT 0,
    last_reason   text,                            -- why it was refused, moved or failed
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scheduled_callbacks_due ON scheduled_callbacks (run_at) WHERE state = 'pending';
