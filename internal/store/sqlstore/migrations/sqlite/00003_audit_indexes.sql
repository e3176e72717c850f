-- +goose Up
-- Every index on audit_events is paid by every audit write, and the writer is on
-- the token endpoint's path (see docs/audit.md, "Search").
--
-- category, action and decision have a handful of values each: a newest-first page
-- filtered on them alone scans seq backwards and stops after the page; combined
-- with agent_id, user, client or resource the selective index is used and they
-- are checked on its rows.
DROP INDEX audit_events_category;
DROP INDEX audit_events_action;
DROP INDEX audit_events_decision;

-- From here on an event's time never goes below the previous event's (the
-- appender clamps it under the head lock), so a time range is a seq range, found
-- by binary search on the primary key, and the time index can go. head.time is
-- the newest time in the log; monotonic_from the first seq written this way
-- (older events are only nearly in time order: searches do not bound seq there).
ALTER TABLE audit_head ADD COLUMN time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN monotonic_from INTEGER NOT NULL DEFAULT 1;
UPDATE audit_head SET time = COALESCE((SELECT MAX(time) FROM audit_events), 0), monotonic_from = seq + 1;
DROP INDEX audit_events_time;

-- +goose Down
CREATE INDEX audit_events_time ON audit_events (time);
ALTER TABLE audit_head DROP COLUMN monotonic_from;
ALTER TABLE audit_head DROP COLUMN time;
CREATE INDEX audit_events_category ON audit_events (category, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_decision ON audit_events (decision, seq);
