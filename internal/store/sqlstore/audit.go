package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store"
)

const auditColumns = `seq, id, time, category, action, decision, reason, agent_id, user_name, client_id,
	resource_type, resource, source_ip, request_id, trace_id, prev_hash, hash`

// auditInsertRows bounds one multi-row INSERT (17 parameters a row).
const auditInsertRows = 128

func scanAuditEvent(r interface{ Scan(...any) error }) (audit.Event, error) {
	var e audit.Event
	var t int64
	err := r.Scan(&e.Seq, &e.ID, &t, &e.Category, &e.Action, &e.Decision, &e.Reason, &e.AgentID, &e.User,
		&e.ClientID, &e.ResourceType, &e.Resource, &e.SourceIP, &e.RequestID, &e.TraceID, &e.PrevHash, &e.Hash)
	e.Time = time.UnixMicro(t).UTC()
	return e, mapErr(err)
}

// AppendAuditEvents links the events after the chain head and writes them. On
// PostgreSQL it locks the head (SELECT … FOR UPDATE makes concurrent writers in
// several processes wait for each other, so the chain never forks) and writes
// events and head in one transaction. On SQLite it appends them to the audit
// journal, which holds the head and moves events into the database behind the
// callers (auditjournal.go).
func (s *Store) AppendAuditEvents(ctx context.Context, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	if s.dialect == SQLite {
		return s.appendAuditSQLite(ctx, events)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var seq, last int64
		var hash string
		if err := tx.QueryRowContext(ctx, `SELECT seq, hash, time FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&seq, &hash, &last); err != nil {
			return fmt.Errorf("read the audit chain head: %w", err)
		}
		last = audit.ClampTimes(events, last)
		seq, hash = audit.Chain(events, seq, hash)
		for start := 0; start < len(events); start += auditInsertRows {
			chunk := events[start:min(start+auditInsertRows, len(events))]
			var b strings.Builder
			b.WriteString(`INSERT INTO audit_events (` + auditColumns + `) VALUES `)
			args := make([]any, 0, len(chunk)*17)
			for i, e := range chunk {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteByte('(')
				for j := range 17 {
					if j > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "$%d", len(args)+j+1)
				}
				b.WriteByte(')')
				args = append(args, auditArgs(e)...)
			}
			if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
				return fmt.Errorf("insert audit events: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = $1, hash = $2, time = $3 WHERE id = 1`, seq, hash, last); err != nil {
			return fmt.Errorf("update the audit chain head: %w", err)
		}
		return nil
	})
}

func auditArgs(e audit.Event) []any {
	return []any{e.Seq, e.ID, e.Time.UnixMicro(), e.Category, e.Action, e.Decision, e.Reason,
		e.AgentID, e.User, e.ClientID, e.ResourceType, e.Resource, e.SourceIP, e.RequestID, e.TraceID,
		e.PrevHash, e.Hash}
}

// sqliteAuditStmts are the statements of the journal's applier on SQLite.
type sqliteAuditStmts struct {
	insert, setHead *sql.Stmt
}

func (st sqliteAuditStmts) close() error {
	var err error
	for _, s := range []*sql.Stmt{st.insert, st.setHead} {
		if s != nil {
			err = errors.Join(err, s.Close())
		}
	}
	return err
}

// appendAuditSQLite appends through the journal (auditjournal.go).
func (s *Store) appendAuditSQLite(ctx context.Context, events []audit.Event) error {
	j, err := s.journal()
	if err != nil {
		return err
	}
	return j.append(events)
}

// insertChainedAudit writes events that the journal has chained, and moves the
// head to the last of them, in one transaction on SQLite's write connection.
// Its statements are prepared once; the one-row INSERT runs per event: inside
// the transaction SQLite does no more work than for a multi-row INSERT, minus
// the parsing.
func (s *Store) insertChainedAudit(ctx context.Context, events []audit.Event) error {
	// Prepared before the transaction takes the one write connection.
	s.auditStmtsOnce.Do(func() {
		bg := context.Background()
		prep := func(q string) *sql.Stmt {
			st, err := s.write.PrepareContext(bg, q)
			s.auditStmtsErr = errors.Join(s.auditStmtsErr, err)
			return st
		}
		s.auditStmts = sqliteAuditStmts{
			insert:  prep(`INSERT INTO audit_events (` + auditColumns + `) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)`),
			setHead: prep(`UPDATE audit_head SET seq = $1, hash = $2, time = MAX(time, $3) WHERE id = 1`),
		}
	})
	if s.auditStmtsErr != nil {
		return fmt.Errorf("prepare the audit statements: %w", s.auditStmtsErr)
	}
	// A cancellable context makes the SQLite driver start a watcher goroutine
	// per statement; the applier never cancels, and lock waits are bounded by
	// busy_timeout.
	ctx = context.WithoutCancel(ctx)
	return s.tx(ctx, func(tx *sql.Tx) error {
		insert := tx.StmtContext(ctx, s.auditStmts.insert)
		for _, e := range events {
			if _, err := insert.ExecContext(ctx, auditArgs(e)...); err != nil {
				return fmt.Errorf("insert audit events: %w", err)
			}
		}
		last := events[len(events)-1]
		if _, err := tx.StmtContext(ctx, s.auditStmts.setHead).ExecContext(ctx, last.Seq, last.Hash, last.Time.UnixMicro()); err != nil {
			return fmt.Errorf("update the audit chain head: %w", err)
		}
		return nil
	})
}

// SearchAuditEvents builds one WHERE clause from the set filters (auditFieldFilters)
// plus seq bounds for a time range (auditSeqRange) and the cursor, newest first.
func (s *Store) SearchAuditEvents(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	if err := s.auditSync(ctx); err != nil {
		return nil, err
	}
	where, args := s.auditFieldFilters(f)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !f.From.IsZero() || !f.To.IsZero() {
		lo, hi, err := s.auditSeqRange(ctx, f.From, f.To)
		if err != nil {
			return nil, err
		}
		if lo > 0 {
			add("seq >= $%d", lo)
		}
		if hi != 0 {
			add("seq <= $%d", hi)
		}
	}
	// The time conditions stay: the seq bounds only narrow the scan.
	if !f.From.IsZero() {
		add("time >= $%d", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		add("time < $%d", f.To.UnixMicro())
	}
	if f.BeforeSeq > 0 {
		add("seq < $%d", f.BeforeSeq)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (audit.Event, error) { return scanAuditEvent(r) })
}

// auditFieldFilters returns the conditions and arguments for f's field filters.
// agent_id, user and client_id (partial indexes: non-empty values only, migration
// 00009) and resource have an index ending in seq, so ORDER BY seq DESC LIMIT n is
// a backward range scan of that index; category, action and decision are checked
// on its rows (or on a backward scan of seq).
func (s *Store) auditFieldFilters(f audit.Filter) (where []string, args []any) {
	// SQLite has no statistics to choose between two usable indexes and may pick
	// the less selective one (category over agent_id), scanning far more rows. The
	// filters are listed most selective first; on SQLite all but the first are
	// written as +column, which keeps them out of index selection.
	plus := ""
	for _, c := range []struct{ col, v string }{
		{"agent_id", f.AgentID}, {"client_id", f.ClientID}, {"user_name", f.User}, {"resource", f.Resource},
		{"resource_type", f.ResourceType}, {"action", f.Action}, {"category", f.Category}, {"decision", f.Decision},
	} {
		if c.v == "" {
			continue
		}
		args = append(args, c.v)
		where = append(where, fmt.Sprintf("%s%s = $%d", plus, c.col, len(args)))
		if plus == "" && (c.col == "agent_id" || c.col == "client_id" || c.col == "user_name") {
			// A planner uses a partial index only for a query that implies its
			// condition; the value is never empty here, so this changes no result.
			where = append(where, c.col+" <> ''")
		}
		if s.dialect == SQLite && c.col != "resource" {
			plus = "+"
		}
	}
	return where, args
}

// auditSeqRange maps a time range to seq bounds (0 = unbounded) by binary search on
// the primary key over the events written in time order (seq >= monotonic_from;
// see ClampTimes and migration 00003). The bounds are safe to AND with the time
// conditions: every event outside them is outside the time range. An event
// appended during the search has a higher seq and a time not below the newest
// one seen, so it is never cut off by an upper bound the search did not prove.
func (s *Store) auditSeqRange(ctx context.Context, from, to time.Time) (lo, hi int64, err error) {
	var first, head sql.NullInt64
	var mono int64
	if err := s.read.QueryRowContext(ctx, `SELECT (SELECT MIN(seq) FROM audit_events), seq, monotonic_from FROM audit_head WHERE id = 1`).
		Scan(&first, &head, &mono); err != nil {
		return 0, 0, fmt.Errorf("read the audit chain head: %w", err)
	}
	if !first.Valid || !head.Valid {
		return 0, 0, nil
	}
	start := max(first.Int64, mono)
	if start > head.Int64 {
		return 0, 0, nil
	}
	// firstAtOrAfter returns the smallest seq in [start, head] whose time >= t,
	// or head+1. A seq deleted by retention meanwhile counts as older than t.
	firstAtOrAfter := func(t int64) (int64, error) {
		l, r := start, head.Int64+1
		for l < r {
			m := l + (r-l)/2
			var tm int64
			err := s.read.QueryRowContext(ctx, `SELECT time FROM audit_events WHERE seq = $1`, m).Scan(&tm)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, err
			}
			if err == nil && tm >= t {
				r = m
			} else {
				l = m + 1
			}
		}
		return l, nil
	}
	if !from.IsZero() {
		n, err := firstAtOrAfter(from.UnixMicro())
		if err != nil {
			return 0, 0, err
		}
		if n > start { // else events before start (not in time order) may match too
			lo = n
		}
	}
	if !to.IsZero() {
		n, err := firstAtOrAfter(to.UnixMicro())
		if err != nil {
			return 0, 0, err
		}
		if n <= head.Int64 { // else events appended since may still be before to
			hi = n - 1
			if hi == 0 {
				hi = -1 // nothing before to: match no seq
			}
		}
	}
	return lo, hi, nil
}

func (s *Store) AuditEventsAfter(ctx context.Context, after int64, limit int) ([]audit.Event, error) {
	if err := s.auditSync(ctx); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (audit.Event, error) { return scanAuditEvent(r) })
}

func (s *Store) AuditHead(ctx context.Context) (int64, string, error) {
	if err := s.auditSync(ctx); err != nil {
		return 0, "", err
	}
	var seq int64
	var hash string
	err := s.read.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash)
	return seq, hash, mapErr(err)
}

func (s *Store) LatestAuditCheckpoint(ctx context.Context) (audit.Checkpoint, error) {
	var c audit.Checkpoint
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT seq, hash, created_at, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).
		Scan(&c.Seq, &c.Hash, &created, &c.Signature)
	c.CreatedAt = time.UnixMicro(created).UTC()
	return c, mapErr(err)
}

// TrimAuditEvents deletes the oldest events up to the first one at or after
// cutoff (never past it, so the remaining events stay one unbroken chain), at most
// batch of them, and stores the signed checkpoint of the last one deleted.
func (s *Store) TrimAuditEvents(ctx context.Context, cutoff time.Time, batch int, sign func(audit.Checkpoint) audit.Checkpoint) (int, error) {
	if err := s.auditSync(ctx); err != nil {
		return 0, err
	}
	var n int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.dialect == Postgres {
			// Serialize with appenders and other trimmers.
			if _, err := tx.ExecContext(ctx, `SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE`); err != nil {
				return err
			}
		}
		var first sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MIN(seq) FROM audit_events`).Scan(&first); err != nil {
			return err
		}
		if !first.Valid {
			return nil
		}
		// The last seq to delete: before the first event at or after cutoff, and
		// within the batch.
		last := first.Int64 + int64(batch) - 1
		var keep sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MIN(seq) FROM audit_events WHERE seq >= $1 AND seq <= $2 AND time >= $3`,
			first.Int64, last, cutoff.UnixMicro()).Scan(&keep); err != nil {
			return err
		}
		if keep.Valid {
			last = keep.Int64 - 1
		}
		var c audit.Checkpoint
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_events WHERE seq <= $1 ORDER BY seq DESC LIMIT 1`, last).Scan(&c.Seq, &c.Hash)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		c = sign(c)
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, created_at, signature) VALUES ($1,$2,$3,$4)`,
			c.Seq, c.Hash, c.CreatedAt.UnixMicro(), c.Signature); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_events WHERE seq <= $1`, c.Seq)
		if err != nil {
			return err
		}
		d, _ := res.RowsAffected()
		n = int(d)
		return nil
	})
	return n, mapErr(err)
}

func (s *Store) AuditKey(ctx context.Context, newSealed []byte, now time.Time) ([]byte, error) {
	if _, err := s.execResult(ctx, `INSERT INTO audit_keys (id, sealed, created_at) VALUES ('checkpoint', $1, $2) ON CONFLICT (id) DO NOTHING`,
		newSealed, now.UnixMicro()); err != nil {
		return nil, mapErr(err)
	}
	var sealed []byte
	err := s.write.QueryRowContext(ctx, `SELECT sealed FROM audit_keys WHERE id = 'checkpoint'`).Scan(&sealed)
	return sealed, mapErr(err)
}
