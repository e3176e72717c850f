-- +goose Up
-- Credentials agents use against third parties (API keys, OAuth credential
-- providers) and each agent's outbound rule (the nodes naming them). Every sealed
-- column is listed in sqlstore/rewrap.go so KMS rotation covers it.

-- One identifier namespace for both kinds: it is what agent code and outbound nodes
-- name. version/last_version: for an API key the version of the value handed out and
-- the highest ever assigned (versions are never reused); for an OAuth provider the
-- generation of its secret and token endpoint settings (both equal), which is part of
-- the token cache key.
CREATE TABLE credentials (
    id           TEXT PRIMARY KEY,
    identifier   TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    version      INTEGER NOT NULL,
    last_version INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- id is "<credential id>/v<version>"; the value is sealed with AAD "api_key/<id>".
-- expires_at 0: kept until replaced; else a previous version kept for rollback until then.
CREATE TABLE api_key_versions (
    id            TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    value_sealed  BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (credential_id, version)
);

-- The client secret is sealed with AAD "oauth_provider/<credential id>/client_secret".
CREATE TABLE oauth_providers (
    credential_id        TEXT PRIMARY KEY REFERENCES credentials (id) ON DELETE CASCADE,
    client_id            TEXT NOT NULL,
    client_secret_sealed BLOB NOT NULL,
    token_endpoint       TEXT NOT NULL,
    default_scopes       TEXT NOT NULL DEFAULT '',
    auth_method          TEXT NOT NULL,
    token_params         TEXT NOT NULL DEFAULT '{}',
    preset               TEXT NOT NULL DEFAULT '',
    preset_params        TEXT NOT NULL DEFAULT '{}',
    last_error           TEXT NOT NULL DEFAULT '',
    last_error_at        INTEGER NOT NULL DEFAULT 0
);

-- Upstream access tokens, sealed with AAD "oauth_token/<cache_key>"; cache_key is
-- "<credential id>/g<generation>/<hash of the scope set>".
CREATE TABLE oauth_tokens (
    cache_key     TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    token_sealed  BLOB NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX oauth_tokens_credential ON oauth_tokens (credential_id);
CREATE INDEX oauth_tokens_expiry ON oauth_tokens (expires_at);

-- The data authorization rule: one row per node, one credential per node.
CREATE TABLE outbound_nodes (
    id              TEXT PRIMARY KEY,
    agent_id        TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    credential_id   TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    node_type       TEXT NOT NULL,
    upstream_url    TEXT NOT NULL DEFAULT '',
    header_template TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (agent_id, credential_id)
);
CREATE INDEX outbound_nodes_credential ON outbound_nodes (credential_id);

-- +goose Down
DROP TABLE outbound_nodes;
DROP TABLE oauth_tokens;
DROP TABLE oauth_providers;
DROP TABLE api_key_versions;
DROP TABLE credentials;
