-- +goose Up
-- The directory (issue 5): users, groups and their memberships, SCIM tokens, upstream
-- identity providers, agents' inbound rules, and the orphaned flag on agents.
-- Booleans are INTEGER 0/1 in both dialects so every statement is written once.

-- Users. username_key and email_key are the Go-lowercased forms: usernames are
-- unique regardless of case, and owners match users without case.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL DEFAULT '',
    email_key     TEXT NOT NULL DEFAULT '',
    display_name  TEXT NOT NULL DEFAULT '',
    attributes    TEXT NOT NULL DEFAULT '{}',
    active        INTEGER NOT NULL,
    source        TEXT NOT NULL,
    external_id   TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX users_email ON users (email_key);
CREATE INDEX users_source ON users (source, id);
CREATE UNIQUE INDEX users_external ON users (source, external_id) WHERE external_id <> '';

CREATE TABLE user_groups (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL,
    external_id  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX user_groups_source ON user_groups (source, id);
CREATE UNIQUE INDEX user_groups_external ON user_groups (source, external_id) WHERE external_id <> '';

-- source says who added the membership (local, scim, oidc:<idp>, ldap:<idp>): an
-- upstream's sync removes only the memberships it added.
CREATE TABLE group_members (
    group_id   TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

-- Bearer tokens an enterprise IdP uses for SCIM 2.0 (stored as SHA-256).
CREATE TABLE scim_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0
);

-- Upstream OpenID Connect and LDAP providers; config is JSON without secrets, the
-- client secret or bind password is sealed by the KMS envelope.
CREATE TABLE identity_providers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    enabled       INTEGER NOT NULL,
    config        TEXT NOT NULL,
    secret_sealed BLOB   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Inbound rules: which users may call an agent through which client. users and
-- groups are JSON arrays (user ids, group names); policy is Cedar text.
CREATE TABLE inbound_rules (
    id         TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    users       TEXT NOT NULL DEFAULT '[]',
    group_names TEXT NOT NULL DEFAULT '[]',
    policy      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX inbound_rules_agent ON inbound_rules (agent_id, client_id);
-- One counter per agent, bumped in the transaction of every rule change: a replica
-- compares it with its compiled copy on each decision (one indexed read).
CREATE TABLE inbound_versions (
    agent_id TEXT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    version  BIGINT NOT NULL
);

-- Orphaned agents: their owner named a user who was deleted or deactivated.
-- owner_key is the lowercased owner, matched against usernames, emails and ids.
ALTER TABLE agents ADD COLUMN orphaned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN owner_key TEXT NOT NULL DEFAULT '';
UPDATE agents SET owner_key = LOWER(TRIM(owner));
CREATE INDEX agents_owner_key ON agents (owner_key);

-- +goose Down
DROP INDEX agents_owner_key;
ALTER TABLE agents DROP COLUMN owner_key;
ALTER TABLE agents DROP COLUMN orphaned;
DROP TABLE inbound_versions;
DROP TABLE inbound_rules;
DROP TABLE identity_providers;
DROP TABLE scim_tokens;
DROP TABLE group_members;
DROP TABLE user_groups;
DROP TABLE users;
