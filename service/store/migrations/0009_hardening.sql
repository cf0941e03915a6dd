-- Issue 12 (run it like a telephone system): login throttling that slows an attacker without
-- locking out the owner, credentials that can be ended, and fencing of each PBX's ledger.

-- Failed logins per key ('p:<address>:<username>' for one source trying one name,
-- 'a:<address>' for one source trying any name).  A login attempt is counted here *before*
-- its password is checked, under the row's lock, so concurrent guesses cannot all slip in
-- before the first failure is recorded; a successful login gives its attempt back.
CREATE TABLE login_throttle (
    key        text        PRIMARY KEY,
    failures   integer     NOT NULL DEFAULT 0,
    last_at    timestamptz NOT NULL DEFAULT now()
);

-- Sessions and API tokens made before this moment are void: a password change, `users
-- disable` or `users revoke-token --all` ends every way in at once.
ALTER TABLE users ADD COLUMN credentials_since timestamptz NOT NULL DEFAULT '-infinity';
-- API tokens expire (NULL: made before expiry existed, or made with --days 0 by an admin).
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;

-- Fencing of each PBX's ledger: the instance that takes a PBX's advisory lock bumps its
-- epoch; every ledger write checks, in its own transaction (FOR SHARE, so a take-over
-- waits for writes in flight), that the epoch is still the one it was given.  A leader that
-- lost its lock connection therefore cannot write once another has started.
CREATE TABLE ledger_leases (
    pbx_id      text        PRIMARY KEY,
    epoch       bigint      NOT NULL,
    holder      text        NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);
