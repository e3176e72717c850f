package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"modernc.org/sqlite"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/user"
)

// The read cache keeps the rows every token request reads (the calling agent and
// its secrets, the user, the resource server and grant, the client, the inbound
// rules' version; on SQLite also revocations) in memory: on the 2-core machine
// those queries were two fifths of a token exchange's server CPU.
//
// On SQLite it is correct by construction, not by each write method remembering
// to invalidate it:
//
//   - SQLite tells the Store about every row its write connection changes (the
//     pre-update hook), with the table's name.
//   - Every change runs inside change(), which holds the one write connection until
//     after the commit. If the change touched a table the cache may hold, change()
//     advances the database's generation before it lets the connection go, so no
//     other change can come between the commit and the advance.
//   - A cached value is tagged with the generation read before its query and is
//     served only while the generation is unchanged. A query that raced a change
//     may have seen either side of it; its tag is then already out of date.
//   - A row changed outside change() turns the cache off for good, failing safe.
//
// The generation is shared by every Store on the same file in this process; SQLite
// serves one process (the audit journal's lock refuses a second server), and the
// one command that writes from another process, `kms rotate`, changes only sealed
// columns of tables the cache never holds (uncachedTables).
//
// On PostgreSQL replicas change the database under each other, so the generations
// live in the database (migration 00010): a deferred trigger on every table but
// uncachedTables adds one inside each transaction that changes one, so it becomes
// visible with the change; revocations have a generation of their own, so a
// sign-out does not empty the rest. A request reads them once, at its first
// cached read (WithRequest marks the request), and serves what was cached at
// those generations: the request's reads cost one round trip instead of one each,
// and a change committed on any replica before the request began is seen. A
// change the request itself makes (through change) makes its next cached read
// read the generations again. Reads outside a marked request go to the database.
type readCache struct {
	gen *atomic.Uint64 // the file's generation, shared (generationOf); unused on PostgreSQL
	// remote, on PostgreSQL, reads the database's generations (of everything
	// but revocations, and of revocations).
	remote func(context.Context) ([2]uint64, error)

	// off: serve nothing. Set until migrations are done (start), and on SQLite
	// forever once a row changed outside change().
	off      atomic.Bool
	changing atomic.Bool // change() holds the write connection
	touched  atomic.Bool // the current change touched a cached table

	agents  memo[string, agentWithSecrets]
	users   memo[string, user.User]
	targets memo[[2]string, resourceAndGrant] // audience, agent id
	clients memo[string, bool]
	inbound memo[string, int64]
	revoked memo[string, bool] // on PostgreSQL under the revocations' generation
}

// The cached values, and how to copy what a caller could change.
type agentWithSecrets struct {
	agent   agent.Agent
	secrets []agent.Secret
}

type resourceAndGrant struct {
	server resource.Server
	grant  *grant.Grant
}

func (v agentWithSecrets) clone() agentWithSecrets {
	v.secrets = slices.Clone(v.secrets)
	return v
}

func cloneUser(u user.User) user.User {
	u.Groups, u.Attributes = slices.Clone(u.Groups), maps.Clone(u.Attributes)
	return u
}

func (v resourceAndGrant) clone() resourceAndGrant {
	v.server.Scopes = slices.Clone(v.server.Scopes)
	for i := range v.server.Scopes {
		v.server.Scopes[i].Groups = slices.Clone(v.server.Scopes[i].Groups)
	}
	if v.grant != nil {
		g := *v.grant
		g.Scopes = slices.Clone(g.Scopes)
		v.grant = &g
	}
	return v
}

// uncachedTables are the tables no cached read looks at and that requests write
// all the time. A change to any other table, including one added later,
// empties the cache: forgetting to list a table here costs speed, never
// correctness.
var uncachedTables = map[string]bool{
	"audit_events": true, "audit_head": true, "audit_checkpoints": true, "audit_keys": true,
	"used_once": true, "authorization_codes": true, "login_requests": true, "sessions": true,
	"refresh_tokens": true, "refresh_families": true, "oauth_tokens": true,
	"client_registrations": true, "signing_keys": true, "api_key_versions": true,
	"credentials": true, "oauth_providers": true, "identity_providers": true,
	"goose_db_version": true,
}

// PostgresUncachedTables are the tables without the read cache's trigger on
// PostgreSQL (migration 00010 lists the same): uncachedTables and the cache's own
// generations.
func PostgresUncachedTables() map[string]bool {
	m := maps.Clone(uncachedTables)
	m["read_cache_generation"] = true
	return m
}

// generations holds one generation per SQLite file, so two Stores on the same
// file (as tests open, and as a CLI command in the server's process would) see
// each other's changes.
var generations struct {
	mu sync.Mutex
	m  map[string]*atomic.Uint64
}

func generationOf(path string) *atomic.Uint64 {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	generations.mu.Lock()
	defer generations.mu.Unlock()
	if generations.m == nil {
		generations.m = map[string]*atomic.Uint64{}
	}
	g := generations.m[path]
	if g == nil {
		g = new(atomic.Uint64)
		generations.m[path] = g
	}
	return g
}

// newReadCache returns a cache for the SQLite file at path, or, with remote, one
// that reads PostgreSQL's generation. It starts off; start turns it on.
func newReadCache(path string, remote func(context.Context) ([2]uint64, error)) *readCache {
	c := &readCache{gen: new(atomic.Uint64), remote: remote}
	c.revoked.which = 1
	if path != "" {
		c.gen = generationOf(path)
	}
	c.off.Store(true)
	return c
}

// WithRequest marks ctx as one request's, for the read cache on PostgreSQL (see
// readCache); on SQLite it changes nothing.
func WithRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestKey{}, &requestGen{})
}

type requestKey struct{}

// requestGen is the database's generations as one request read them.
type requestGen struct {
	mu  sync.Mutex
	gen [2]uint64
	ok  bool
}

// generation is the request's generation of the database (which: 0 everything
// but revocations, 1 revocations), read at its first use.
func (c *readCache) generation(ctx context.Context, which int) (uint64, bool) {
	if c.remote == nil {
		return c.gen.Load(), true
	}
	rg, _ := ctx.Value(requestKey{}).(*requestGen)
	if rg == nil {
		return 0, false
	}
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if !rg.ok {
		g, err := c.remote(ctx)
		if err != nil {
			return 0, false
		}
		rg.gen, rg.ok = g, true
	}
	return rg.gen[which], true
}

// changed, on PostgreSQL, has the request that made a change read the
// generation again at its next cached read.
func changed(ctx context.Context) {
	if rg, _ := ctx.Value(requestKey{}).(*requestGen); rg != nil {
		rg.mu.Lock()
		rg.ok = false
		rg.mu.Unlock()
	}
}

// start turns the cache on once migrations, which change rows outside change(),
// are done: the advance voids anything a concurrent reader on the same file
// tagged while they ran.
func (c *readCache) start() {
	c.gen.Add(1)
	c.off.Store(false)
}

// rowChanged is the write connection's pre-update hook.
func (c *readCache) rowChanged(table string) {
	if uncachedTables[table] {
		return
	}
	if c.changing.Load() {
		c.touched.Store(true)
		return
	}
	if !c.off.Swap(true) {
		slog.Error("the SQLite read cache turned itself off: a row changed outside Store.change, so the cache could miss the change; "+
			"every request now reads the database (slower, still correct). This is a bug in agentguard; please report it", "table", table)
	}
	c.gen.Add(1)
}

// enter and leave bracket a change on the write connection (see change).
func (c *readCache) enter() {
	c.touched.Store(false)
	c.changing.Store(true)
}

func (c *readCache) leave() {
	if c.touched.Swap(false) {
		c.gen.Add(1)
	}
	c.changing.Store(false)
}

// hookedConnector registers the cache's hook on every write connection SQLite opens.
type hookedConnector struct {
	driver.Connector
	cache *readCache
}

func (h hookedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := h.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	hooks, ok := conn.(sqlite.HookRegisterer)
	if !ok {
		conn.Close()
		return nil, errors.New("the SQLite driver offers no pre-update hook, which the read cache needs")
	}
	hooks.RegisterPreUpdateHook(func(d sqlite.SQLitePreUpdateData) { h.cache.rowChanged(d.TableName) })
	return conn, nil
}

// writer is what a change runs on: the write pool on PostgreSQL, the one held
// write connection on SQLite.
type writer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// change runs fn, the only way anything changes the database. On SQLite it holds
// the write connection until the read cache has heard of the change.
func (s *Store) change(ctx context.Context, fn func(w writer) error) error {
	if s.dialect != SQLite {
		defer changed(ctx)
		return fn(s.write)
	}
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	s.cache.enter()
	defer s.cache.leave()
	return fn(conn)
}

// memo is one kind of cached value. Its map holds values of one generation; a
// newer generation starts an empty map. When full, an arbitrary entry makes room.
type memo[K comparable, V any] struct {
	mu  sync.RWMutex
	gen uint64
	m   map[K]V

	hits, misses atomic.Uint64 // for the metrics (ReadCacheCollector)
	which        int           // the generation it follows on PostgreSQL (readCache.generation)
}

// memoLimit bounds each memo: enough for every agent, user and resource server of
// a large deployment, at well under a kilobyte each.
const memoLimit = 10000

// cached returns the value for k from m, or loads it. load's errors are never
// cached; clone copies what a caller could change (slices, maps) so the cached
// value stays the database's.
func cached[K comparable, V any](ctx context.Context, c *readCache, mm *memo[K, V], k K, clone func(V) V, load func() (V, error)) (V, error) {
	if c.off.Load() {
		return load()
	}
	g, ok := c.generation(ctx, mm.which)
	if !ok {
		return load()
	}
	mm.mu.RLock()
	v, ok := mm.m[k]
	ok = ok && mm.gen == g
	mm.mu.RUnlock()
	if ok {
		mm.hits.Add(1)
		return clone(v), nil
	}
	mm.misses.Add(1)
	v, err := load()
	if err != nil {
		return v, err
	}
	if testHookLoaded != nil {
		testHookLoaded()
	}
	mm.mu.Lock()
	if g > mm.gen || mm.m == nil {
		mm.gen, mm.m = g, make(map[K]V)
	}
	if g == mm.gen {
		if len(mm.m) >= memoLimit {
			for old := range mm.m {
				delete(mm.m, old)
				break
			}
		}
		mm.m[k] = clone(v)
	}
	mm.mu.Unlock()
	return v, nil
}

// testHookLoaded, when set by a test, runs between a load and its put, where a
// change may commit.
var testHookLoaded func()

func same[V any](v V) V { return v }

// ReadCacheCollector exports the read cache's lookups by kind and result, and
// whether it is on (0 after it turned itself off).
func (s *Store) ReadCacheCollector() prometheus.Collector { return (*cacheCollector)(s.cache) }

type cacheCollector readCache

var (
	cacheLookupsDesc = prometheus.NewDesc("agentguard_store_read_cache_lookups_total",
		"Lookups of the read cache of the token path's rows, by kind and result (hit or miss).", []string{"kind", "result"}, nil)
	cacheOnDesc = prometheus.NewDesc("agentguard_store_read_cache_enabled",
		"1 when the read cache serves reads; 0 after it turned itself off (which it logs as an error).", nil, nil)
)

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheLookupsDesc
	ch <- cacheOnDesc
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	on := 0.0
	if !c.off.Load() {
		on = 1
	}
	ch <- prometheus.MustNewConstMetric(cacheOnDesc, prometheus.GaugeValue, on)
	for _, k := range []struct {
		kind         string
		hits, misses *atomic.Uint64
	}{
		{"agent", &c.agents.hits, &c.agents.misses},
		{"user", &c.users.hits, &c.users.misses},
		{"resource_and_grant", &c.targets.hits, &c.targets.misses},
		{"client", &c.clients.hits, &c.clients.misses},
		{"inbound_version", &c.inbound.hits, &c.inbound.misses},
		{"revocation", &c.revoked.hits, &c.revoked.misses},
	} {
		ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(k.hits.Load()), k.kind, "hit")
		ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(k.misses.Load()), k.kind, "miss")
	}
}
