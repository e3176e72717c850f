-- +goose Up
-- The read cache's generations on PostgreSQL (readcache.go): every transaction that
-- changes a table the cache may hold adds one to a generation, at its commit and
-- inside it, so a replica that reads the generations at the start of a request
-- knows whether what it holds is still what the database says. gen covers every
-- table but those below, revocations the revocations (which come and go with
-- sign-outs, and should not empty the rest). The trigger is a deferred
-- constraint trigger so a generation row is locked only while committing, after
-- every data lock of the transaction: two writers cannot wait for each other
-- through it. Tables requests write all the time and no cached read looks at have
-- none (sqlstore.uncachedTables); TestPostgresReadCacheTriggers checks every other
-- table has it.
CREATE TABLE read_cache_generation (id INT PRIMARY KEY CHECK (id = 1), gen BIGINT NOT NULL, revocations BIGINT NOT NULL);
INSERT INTO read_cache_generation (id, gen, revocations) VALUES (1, 0, 0);

-- +goose StatementBegin
-- Once per transaction and generation, however many rows it changed: each
-- update of the row leaves a dead version behind that readers step over until
-- vacuum removes it.
CREATE FUNCTION read_cache_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	flag text := 'agentguard.read_cache_changed_' || TG_ARGV[0];
BEGIN
	IF current_setting(flag, true) IS DISTINCT FROM 'yes' THEN
		IF TG_ARGV[0] = 'revocations' THEN
			UPDATE read_cache_generation SET revocations = revocations + 1 WHERE id = 1;
		ELSE
			UPDATE read_cache_generation SET gen = gen + 1 WHERE id = 1;
		END IF;
		PERFORM set_config(flag, 'yes', true);
	END IF;
	RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
	FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT IN (
		'audit_events', 'audit_head', 'audit_checkpoints', 'audit_keys', 'used_once', 'authorization_codes',
		'login_requests', 'sessions', 'refresh_tokens', 'refresh_families', 'oauth_tokens', 'client_registrations',
		'signing_keys', 'api_key_versions', 'credentials', 'oauth_providers', 'identity_providers',
		'goose_db_version', 'read_cache_generation')
	LOOP
		EXECUTE format('CREATE CONSTRAINT TRIGGER read_cache_changed AFTER INSERT OR UPDATE OR DELETE ON %I
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION read_cache_changed(%s)',
			t, CASE WHEN t = 'revoked_tokens' THEN 'revocations' ELSE 'other' END);
	END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
	FOR t IN SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
		WHERE g.tgname = 'read_cache_changed' AND c.relnamespace = current_schema()::regnamespace
	LOOP
		EXECUTE format('DROP TRIGGER read_cache_changed ON %I', t);
	END LOOP;
END $$;
-- +goose StatementEnd
DROP FUNCTION read_cache_changed();
DROP TABLE read_cache_generation;
