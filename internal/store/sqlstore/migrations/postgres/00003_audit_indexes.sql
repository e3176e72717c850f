-- +goose Up
-- category, action and decision have a handful of values each: an index on them
-- costs every audit write (the writer is on the token endpoint's path) and helps
-- little, since a newest-first page filtered on them alone scans seq backwards and
-- stops after the page; combined with agent_id, user, client or resource the
-- selective index is used and they are checked on its rows (see docs/audit.md).
DROP INDEX audit_events_category;
DROP INDEX audit_events_action;
DROP INDEX audit_events_decision;

-- +goose Down
CREATE INDEX audit_events_category ON audit_events (category, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_decision ON audit_events (decision, seq);
