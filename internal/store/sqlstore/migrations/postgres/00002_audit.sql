-- +goose Up
-- The audit log is a hash chain: seq is gapless and assigned under the lock on
-- audit_head, so every writer process appends to one chain (see docs/audit.md).
CREATE TABLE audit_events (
    seq           BIGINT PRIMARY KEY,
    id            TEXT NOT NULL,
    time          BIGINT NOT NULL,
    category      TEXT NOT NULL,
    action        TEXT NOT NULL,
    decision      TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    agent_id      TEXT NOT NULL DEFAULT '',
    user_name     TEXT NOT NULL DEFAULT '',
    client_id     TEXT NOT NULL DEFAULT '',
    resource_type TEXT NOT NULL DEFAULT '',
    resource      TEXT NOT NULL DEFAULT '',
    source_ip     TEXT NOT NULL DEFAULT '',
    request_id    TEXT NOT NULL DEFAULT '',
    trace_id      TEXT NOT NULL DEFAULT '',
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
-- Each filter has an index ending in seq, so a filtered newest-first page is one
-- backward index range scan.
CREATE INDEX audit_events_agent ON audit_events (agent_id, seq);
CREATE INDEX audit_events_user ON audit_events (user_name, seq);
CREATE INDEX audit_events_client ON audit_events (client_id, seq);
CREATE INDEX audit_events_category ON audit_events (category, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_resource ON audit_events (resource_type, resource, seq);
CREATE INDEX audit_events_decision ON audit_events (decision, seq);
CREATE INDEX audit_events_time ON audit_events (time);

-- One row: the last event's seq and hash. Writers lock it to append.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

-- Retention deletes a prefix of the chain; a signed checkpoint keeps the seq and
-- hash of the last deleted event so verify can start after it.
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    signature  TEXT NOT NULL
);

-- The checkpoint signing key, sealed by the KMS envelope.
CREATE TABLE audit_keys (
    id         TEXT PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE audit_keys;
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP TABLE audit_events;
