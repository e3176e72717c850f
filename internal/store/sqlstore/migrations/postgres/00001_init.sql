-- +goose Up
CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    owner           TEXT NOT NULL DEFAULT '',
    type            TEXT NOT NULL,
    access_identity TEXT NOT NULL,
    audience        TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX agents_owner ON agents (owner);
CREATE INDEX agents_status ON agents (status);

CREATE TABLE agent_secrets (
    id         TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX agent_secrets_agent ON agent_secrets (agent_id);

CREATE TABLE agent_keys (
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    kid        TEXT NOT NULL,
    alg        TEXT NOT NULL,
    jwk        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, kid)
);

CREATE TABLE agent_federations (
    id         TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    jwks_uri   TEXT NOT NULL DEFAULT '',
    audience   TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (issuer, subject)
);
CREATE INDEX agent_federations_agent ON agent_federations (agent_id);

CREATE TABLE resource_servers (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    audience               TEXT NOT NULL UNIQUE,
    scopes                 TEXT NOT NULL,
    token_lifetime_seconds BIGINT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);

CREATE TABLE grants (
    id                 TEXT PRIMARY KEY,
    agent_id           TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    resource_server_id TEXT NOT NULL REFERENCES resource_servers (id) ON DELETE CASCADE,
    scopes             TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    UNIQUE (agent_id, resource_server_id)
);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    private_sealed BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT NOT NULL DEFAULT 0,
    drop_after     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

CREATE TABLE used_once (
    key        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_once_expiry ON used_once (expires_at);

CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
