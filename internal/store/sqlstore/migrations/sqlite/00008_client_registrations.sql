-- +goose Up
-- Dynamic client registrations (RFC 7591): a client's request to be registered,
-- pending until an administrator decides (or approved at once in open mode). The id
-- is the client_id handed out at registration; the client itself is created in
-- clients only on approval. secret_hash is the SHA-256 of the client secret handed
-- out (confidential clients), cleared on rejection. redirect_uris and metadata are
-- JSON.
CREATE TABLE client_registrations (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    client_name   TEXT NOT NULL,
    client_type   TEXT NOT NULL,
    auth_method   TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    secret_hash   TEXT NOT NULL DEFAULT '',
    source_ip     TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    decided_at    INTEGER NOT NULL DEFAULT 0,
    decided_by    TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX client_registrations_status ON client_registrations (status, id);

-- +goose Down
DROP TABLE client_registrations;
