-- +goose Up
-- Clients (the apps users sign in through), browser sign-in state, and the
-- authorization codes and refresh tokens issued to clients. Every secret a browser
-- or client holds (session cookie, code, refresh token, client secret, CSRF token)
-- is stored only as its SHA-256 hash. user_id has no foreign key: users live in the
-- directory, which may also be an upstream provider; every use reloads the user.
CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    type                      TEXT NOT NULL,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);

CREATE TABLE client_secrets (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX client_secrets_client ON client_secrets (client_id);

-- A pending authorization request waiting for the user to sign in, bound to the
-- browser that started it (browser_hash) and to the form's CSRF token.
CREATE TABLE login_requests (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    request      TEXT NOT NULL,
    csrf_hash    TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX login_requests_expiry ON login_requests (expires_at);

-- A browser's sign-in session: id_hash is the hash of the cookie value, sid the
-- public id that ID tokens carry.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    sid        TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE authorization_codes (
    hash              TEXT PRIMARY KEY,
    client_id         TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL,
    sid               TEXT NOT NULL,
    redirect_uri      TEXT NOT NULL,
    code_challenge    TEXT NOT NULL DEFAULT '',
    scope             TEXT NOT NULL,
    audience          TEXT NOT NULL DEFAULT '',
    nonce             TEXT NOT NULL DEFAULT '',
    auth_time         BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    used_at           BIGINT NOT NULL DEFAULT 0,
    access_jti        TEXT NOT NULL DEFAULT '',
    access_expires_at BIGINT NOT NULL DEFAULT 0,
    family_id         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- A refresh token family: every token rotated from one authorization code. sid is
-- the session it ends with ('' for offline_access).
CREATE TABLE refresh_families (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL,
    sid            TEXT NOT NULL DEFAULT '',
    scope          TEXT NOT NULL,
    audience       TEXT NOT NULL DEFAULT '',
    auth_time      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT NOT NULL DEFAULT 0,
    revoked_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX refresh_families_sid ON refresh_families (sid);
CREATE INDEX refresh_families_user ON refresh_families (user_id);
CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);

-- One refresh token and the access token issued beside it (so a revoked family
-- revokes its access tokens too).
CREATE TABLE refresh_tokens (
    hash              TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    used_at           BIGINT NOT NULL DEFAULT 0,
    access_jti        TEXT NOT NULL DEFAULT '',
    access_expires_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
