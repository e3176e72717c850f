package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// readPool is the pool reads go through. For SQLite it keeps one prepared statement
// per distinct query text, so the hot lookups of the token endpoint (agent, secrets,
// resource server, grant, revocation) are parsed once per connection instead of on
// every call: parsing was a fifth of a token request's CPU. pgx already caches
// prepared statements per connection, so for PostgreSQL it passes queries through.
type readPool struct {
	*sql.DB
	prepare bool

	mu    sync.Mutex
	stmts sync.Map // query text -> *sql.Stmt
	count atomic.Int32
}

// maxStmts bounds the cache; queries beyond it (dynamic list filters in some
// unforeseen combination) simply run unprepared.
const maxStmts = 256

func newReadPool(db *sql.DB, prepare bool) *readPool { return &readPool{DB: db, prepare: prepare} }

func (p *readPool) stmt(ctx context.Context, q string) *sql.Stmt {
	if !p.prepare {
		return nil
	}
	if st, ok := p.stmts.Load(q); ok {
		return st.(*sql.Stmt)
	}
	if p.count.Load() >= maxStmts {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.stmts.Load(q); ok {
		return st.(*sql.Stmt)
	}
	st, err := p.DB.PrepareContext(ctx, q)
	if err != nil {
		// Let the unprepared query report the error in context.
		return nil
	}
	p.stmts.Store(q, st)
	p.count.Add(1)
	return st
}

// QueryContext runs q, prepared when the pool prepares.
func (p *readPool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, q, args...)
}

// QueryRowContext runs q for one row, prepared when the pool prepares.
func (p *readPool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := p.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.DB.QueryRowContext(ctx, q, args...)
}

// Close closes the prepared statements and the pool.
func (p *readPool) Close() error {
	p.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	return p.DB.Close()
}
