-- People who use the web pages and the API, their sessions and tokens, login attempts (for
-- rate limiting), operators' queue states (for the wallboard) and the audit of spying.

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text        NOT NULL UNIQUE,
    display_name  text        NOT NULL DEFAULT '',
    password_hash text        NOT NULL,          -- argon2id
    role          text        NOT NULL CHECK (role IN ('admin', 'supervisor', 'operator',
                                                       'client')),
    client        text,                           -- the one client a client user sees
    extension     text,                           -- phone of an operator or supervisor
    active        boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'client') = (client IS NOT NULL))
);

-- Browser sessions: only a hash of the cookie is stored.
CREATE TABLE web_sessions (
    token_hash  text PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- API bearer tokens: only a hash is stored; the token is shown once.
CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   text        NOT NULL UNIQUE,
    name         text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked      boolean     NOT NULL DEFAULT false
);

CREATE TABLE login_failures (
    username text        NOT NULL,
    address  text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_user ON login_failures (username, at DESC);
CREATE INDEX login_failures_address ON login_failures (address, at DESC);

-- Queue members as AMI last told the instance that holds the PBX.
CREATE TABLE operator_states (
    pbx_id      text        NOT NULL,
    queue       text        NOT NULL,
    interface   text        NOT NULL,
    operator    text        NOT NULL,
    member_name text        NOT NULL DEFAULT '',
    status      text        NOT NULL,   -- not_in_use | in_use | ringing | unavailable | ...
    paused      boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pbx_id, queue, interface)
);

-- Every listen / whisper / barge: who, on whom, how, when, and whether it worked.
CREATE TABLE spy_audit (
    id            bigserial PRIMARY KEY,
    supervisor    text        NOT NULL,
    supervisor_phone text     NOT NULL,
    operator      text        NOT NULL,
    spied_channel text,
    linkedid      text,
    mode          text        NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),
    at            timestamptz NOT NULL DEFAULT now(),
    result        text        NOT NULL,
    detail        text
);
