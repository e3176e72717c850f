// Package sqlstore implements every domain's storage interface on SQL, for two
// databases: embedded SQLite (the default) and PostgreSQL.
//
// Statements are written once, in the subset both databases share ($N placeholders,
// ON CONFLICT, RETURNING); each database has its own embedded migrations for the
// types that differ. Times are stored as Unix microseconds (BIGINT) so both return
// identical values.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/agentguard/agentguard/internal/store"
)

//go:embed migrations
var migrations embed.FS

// Dialect names the database behind a Store.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is the SQL implementation of every domain store.
type Store struct {
	dialect Dialect
	// read serves queries; write serves changes. For SQLite write has one
	// connection, so writers queue in Go instead of failing with SQLITE_BUSY; for
	// PostgreSQL both are the same pool.
	read  *readPool
	write *sql.DB
	// cache serves the token endpoint's hot reads on SQLite (readcache.go);
	// every change goes through change() so that it hears of it.
	cache *readCache

	// auditStmts are SQLite's audit append statements, prepared once on the
	// single write connection: parsing them per batch was a tenth of a token
	// request's CPU (the INSERT) and a sixth of the audit writer's (the head).
	auditStmtsOnce sync.Once
	auditStmts     sqliteAuditStmts
	auditStmtsErr  error

	// SQLite only: the database file's path, and the audit journal
	// (auditjournal.go), started on first use.
	path         string
	journalOnce  sync.Once
	auditJournal atomic.Pointer[auditJournal]
	journalErr   error

	// SQLite only: the background checkpointer's connection and its stop signal.
	ckpt               *sql.DB
	ckptStop, ckptDone chan struct{}
	closeOnce          sync.Once
}

// Open connects to databaseURL (postgres://… or postgresql://…), or, when it is
// empty, to the SQLite file agentguard.db in dataDir, and applies migrations.
func Open(ctx context.Context, databaseURL, dataDir string) (*Store, error) {
	var s *Store
	var err error
	switch {
	case databaseURL == "":
		s, err = openSQLite(filepath.Join(dataDir, "agentguard.db"))
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		s, err = openPostgres(databaseURL)
	case strings.HasPrefix(databaseURL, "sqlite://"), strings.HasPrefix(databaseURL, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite://"), "file:")
		s, err = openSQLite(path)
	default:
		return nil, fmt.Errorf("database URL must start with postgres:// or sqlite:// (got scheme %q)", scheme(databaseURL))
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.cache.start()
	return s, nil
}

func scheme(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Scheme
	}
	return ""
}

func openSQLite(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// Create the file 0600 first: SQLite gives its WAL and shm files the same mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("create database file: %w", err)
	} else {
		f.Close()
	}
	// synchronous=NORMAL: a commit is in the WAL file (the operating system's
	// cache) when it returns, so it survives a crash of the process; a power cut
	// can lose the last commits (docs/audit.md says what that means for the audit
	// log). The write connection never checkpoints itself (see checkpoint.go).
	dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	// The read pool cannot change anything (query_only): every change goes through
	// the write connection, where the read cache hears of it (readcache.go).
	read, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		return nil, err
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	cache := newReadCache(path, nil)
	connector, err := sqlite.NewConnector(dsn + "&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(67108864)")
	if err != nil {
		read.Close()
		return nil, err
	}
	write := sql.OpenDB(hookedConnector{connector, cache})
	write.SetMaxOpenConns(1)
	ckpt, err := sql.Open("sqlite", dsn)
	if err != nil {
		read.Close()
		write.Close()
		return nil, err
	}
	ckpt.SetMaxOpenConns(1)
	s := &Store{dialect: SQLite, path: path, read: newReadPool(read, true), write: write, cache: cache, ckpt: ckpt,
		ckptStop: make(chan struct{}), ckptDone: make(chan struct{})}
	go checkpointLoop(ckpt, s.ckptStop, s.ckptDone)
	return s, nil
}

func openPostgres(u string) (*Store, error) {
	db, err := sql.Open("pgx", u)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{dialect: Postgres, read: newReadPool(db, false), write: db}
	s.cache = newReadCache("", func(ctx context.Context) ([2]uint64, error) {
		var g [2]uint64
		err := s.read.QueryRowContext(ctx, `SELECT gen, revocations FROM read_cache_generation WHERE id = 1`).Scan(&g[0], &g[1])
		return g, err
	})
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return err
	}
	var opts []goose.ProviderOption
	dialect := goose.DialectSQLite3
	if s.dialect == Postgres {
		dialect = goose.DialectPostgres
		// Several replicas may start at once; one migrates, the others wait.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.write, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Dialect names the database.
func (s *Store) Dialect() Dialect { return s.dialect }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.read.PingContext(ctx) }

// Close stops the checkpointer and closes the connection pools.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if j := s.auditJournal.Load(); j != nil {
			err = j.close()
		}
		err = errors.Join(err, s.auditStmts.close())
		if s.ckpt != nil {
			close(s.ckptStop)
			<-s.ckptDone
			err = errors.Join(err, s.ckpt.Close())
		}
		err = errors.Join(err, s.read.Close())
		if s.write != s.read.DB {
			err = errors.Join(err, s.write.Close())
		}
	})
	return err
}

// tx runs fn in a write transaction, committing if it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.change(ctx, func(w writer) error {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// execResult runs one change outside a transaction.
func (s *Store) execResult(ctx context.Context, q string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.change(ctx, func(w writer) error {
		var err error
		res, err = w.ExecContext(ctx, q, args...)
		return err
	})
	return res, err
}

// exec runs one change and maps constraint errors; it reports ErrNotFound when
// mustAffect is set and no row changed.
func (s *Store) exec(ctx context.Context, mustAffect bool, q string, args ...any) error {
	res, err := s.execResult(ctx, q, args...)
	if err != nil {
		return mapErr(err)
	}
	if mustAffect {
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
	}
	return nil
}

// mapErr turns unique and foreign-key violations into store errors.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %v", store.ErrNotFound, err)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		case "23503":
			return fmt.Errorf("%w: %v", store.ErrNotFound, err)
		}
	}
	return err
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// page clamps a list limit and tells whether a further row means another page.
func page(limit int) int {
	if limit <= 0 {
		return store.DefaultLimit
	}
	return min(limit, store.MaxLimit)
}
