package sqlstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
)

// auditJournal is how SQLite appends audit events. An SQLite commit costs a
// dozen system calls whatever it holds (a WAL frame per changed page, the WAL
// locks), and every token request waits for its event's commit; so the append
// writes the chained batch to an append-only journal file with one write(2) and
// returns, and a second goroutine (the applier) moves what the journal holds
// into the database in large transactions. The durability is the database's
// own (synchronous=NORMAL): the write is in the operating system's cache when
// it returns, so it survives any crash of agentguard, and a power cut can lose
// the last writes of either. On the next start the journal's events that the
// database lacks are applied before anything else touches the log.
//
// The journal keeps the chain head in memory, so it must be the only appender
// of the database: it holds an exclusive lock (flock) on the journal file, and
// a second process appending to the same SQLite file is refused (SQLite serves
// one instance; several use PostgreSQL). Every read of the audit log first
// waits until the events appended before it are applied (sync), so a search or
// verify sees every event whose request was answered.
//
// Record format: 4-byte big-endian length n, 4-byte CRC-32C of the payload,
// then n bytes of payload (the JSON array of the batch's chained events). A
// record cut short or with a wrong CRC ends the journal: it is a write that
// never returned, so no caller was answered for it.
type auditJournal struct {
	s    *Store
	path string

	mu     sync.Mutex
	f      *os.File
	size   int64         // bytes in the file
	seq    int64         // chain head: the last appended event's seq,
	hash   string        // its hash,
	last   int64         // and the newest time (Unix µs), for ClampTimes
	queue  []audit.Event // appended, not yet taken by the applier
	broken error         // set when the file can no longer be trusted
	closed bool

	wake  chan struct{} // 1-buffered: the applier has work
	hurry chan struct{} // 1-buffered: a reader waits for the applier

	appliedMu sync.Mutex
	applied   int64         // the last seq in the database
	advanced  chan struct{} // closed and replaced whenever applied moves
	applyErr  error         // the applier's last failure, while it lasts

	stop, done chan struct{}
}

// auditJournalMaxBytes bounds the journal: past it the applier holds appends
// until it has applied everything and emptied the file.
const auditJournalMaxBytes = 64 << 20

// auditApplyBatch bounds the events of one applier transaction.
const auditApplyBatch = 2048

// auditApplyDelay is how long the applier lets events gather before it moves
// them into the database, unless a reader waits: nobody else waits for it, and
// a transaction's cost is mostly fixed (one of 1 event costs about as much as
// one of 20), so fewer, larger transactions leave more CPU to the requests.
const auditApplyDelay = 10 * time.Millisecond

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrAuditJournalLocked: another process appends to this SQLite database.
var ErrAuditJournalLocked = errors.New("the audit journal is locked by another agentguard process using this SQLite database; SQLite serves one instance (use PostgreSQL for several)")

// journal returns the started journal, opening it (lock, recovery, head) on
// first use.
func (s *Store) journal() (*auditJournal, error) {
	s.journalOnce.Do(func() {
		var j *auditJournal
		j, s.journalErr = openAuditJournal(s, s.path+"-audit")
		s.auditJournal.Store(j)
	})
	return s.auditJournal.Load(), s.journalErr
}

// auditSync makes a read of the audit log see every appended event: on SQLite
// it waits until the journal is applied (starting it, which applies what a
// crash left in it). A process that reads beside the one that appends (the
// journal is locked) reads what is in the database.
func (s *Store) auditSync(ctx context.Context) error {
	if s.dialect != SQLite {
		return nil
	}
	j, err := s.journal()
	if errors.Is(err, ErrAuditJournalLocked) {
		return nil
	} else if err != nil {
		return err
	}
	return j.sync(ctx)
}

func openAuditJournal(s *Store, path string) (*auditJournal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the audit journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, ErrAuditJournalLocked)
		}
		return nil, fmt.Errorf("lock the audit journal: %w", err)
	}
	j := &auditJournal{s: s, path: path, f: f, wake: make(chan struct{}, 1), hurry: make(chan struct{}, 1), advanced: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := j.recover(); err != nil {
		f.Close()
		return nil, err
	}
	go j.applier()
	return j, nil
}

// recover applies the journal's events that the database lacks, empties the
// journal and loads the chain head from the database.
func (j *auditJournal) recover() error {
	ctx := context.Background()
	var seq int64
	if err := j.s.write.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&seq); err != nil {
		return fmt.Errorf("read the audit chain head: %w", err)
	}
	records, err := readJournal(j.f)
	if err != nil {
		return fmt.Errorf("read the audit journal %s: %w", j.path, err)
	}
	var missing []audit.Event
	for _, batch := range records {
		for _, e := range batch {
			if e.Seq > seq {
				missing = append(missing, e)
			}
		}
	}
	if len(missing) > 0 {
		if missing[0].Seq != seq+1 {
			// The database is behind the journal by more than the journal
			// holds (restored from an older backup?). The events are kept
			// anyway: verify reports the gap, which is the truth.
			slog.Error("the audit journal does not continue the database's chain; applying its events, verify will report the gap",
				"journal", j.path, "head_seq", seq, "journal_from_seq", missing[0].Seq)
		}
		for start := 0; start < len(missing); start += auditApplyBatch {
			if err := j.s.insertChainedAudit(ctx, missing[start:min(start+auditApplyBatch, len(missing))]); err != nil {
				return fmt.Errorf("apply the audit journal's events: %w", err)
			}
		}
		slog.Info("applied audit events from the journal", "events", len(missing), "to_seq", missing[len(missing)-1].Seq)
	}
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("empty the audit journal: %w", err)
	}
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := j.s.write.QueryRowContext(ctx, `SELECT seq, hash, time FROM audit_head WHERE id = 1`).Scan(&j.seq, &j.hash, &j.last); err != nil {
		return fmt.Errorf("read the audit chain head: %w", err)
	}
	j.applied = j.seq
	return nil
}

// readJournal returns the batches of the journal's complete records.
func readJournal(r io.Reader) ([][]audit.Event, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out [][]audit.Event
	for len(data) >= 8 {
		n := binary.BigEndian.Uint32(data[:4])
		if uint64(len(data)-8) < uint64(n) || crc32.Checksum(data[8:8+n], crcTable) != binary.BigEndian.Uint32(data[4:8]) {
			break // a write cut short: nobody was answered for it
		}
		var batch []audit.Event
		if err := json.Unmarshal(data[8:8+n], &batch); err != nil {
			return nil, fmt.Errorf("record at a valid checksum does not decode: %w", err)
		}
		out = append(out, batch)
		data = data[8+n:]
	}
	return out, nil
}

// encodeJournalRecord frames one chained batch.
func encodeJournalRecord(events []audit.Event) ([]byte, error) {
	payload, err := json.Marshal(events)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(buf[:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:8], crc32.Checksum(payload, crcTable))
	return append(buf, payload...), nil
}

// append chains events after the head, writes them to the journal and queues
// them for the applier. When it returns nil the events survive a crash.
func (j *auditJournal) append(events []audit.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.closed:
		return errors.New("the audit journal is closed")
	case j.broken != nil:
		return j.broken
	}
	// Chain a copy, so a failed write leaves the caller's events and the head
	// as they were.
	chained := append([]audit.Event(nil), events...)
	last := audit.ClampTimes(chained, j.last)
	seq, hash := audit.Chain(chained, j.seq, j.hash)
	rec, err := encodeJournalRecord(chained)
	if err != nil {
		return fmt.Errorf("encode audit events: %w", err)
	}
	if _, err := j.f.Write(rec); err != nil {
		// Cut the partial record off, or nothing after it could be read back.
		if terr := j.f.Truncate(j.size); terr != nil {
			j.broken = fmt.Errorf("the audit journal %s is damaged (a write failed: %v; cutting it back failed: %v)", j.path, err, terr)
		} else if _, serr := j.f.Seek(j.size, io.SeekStart); serr != nil {
			j.broken = fmt.Errorf("the audit journal %s is damaged: %v", j.path, serr)
		}
		return fmt.Errorf("write the audit journal: %w", err)
	}
	j.size += int64(len(rec))
	j.seq, j.hash, j.last = seq, hash, last
	copy(events, chained)
	j.queue = append(j.queue, chained...)
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// applier moves queued events into the database until stop, then applies
// what is left and empties the journal.
func (j *auditJournal) applier() {
	defer close(j.done)
	backoff := 10 * time.Millisecond
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	for {
		select {
		case <-j.wake:
			gather.Reset(auditApplyDelay)
			select {
			case <-gather.C:
			case <-j.hurry:
			case <-j.stop:
			}
			gather.Stop()
		case <-j.hurry:
		case <-j.stop:
			j.mu.Lock()
			j.drainLocked()
			j.mu.Unlock()
			return
		}
		for {
			j.mu.Lock()
			if len(j.queue) == 0 {
				j.mu.Unlock()
				break
			}
			if j.size > auditJournalMaxBytes {
				// Appends wait while everything is applied and the file emptied.
				j.drainLocked()
				j.mu.Unlock()
				continue
			}
			batch := j.queue[:min(len(j.queue), auditApplyBatch)]
			j.queue = j.queue[len(batch):]
			j.mu.Unlock()
			if err := j.apply(batch); err != nil {
				// Put the batch back in front and try again: the events are
				// in the journal, and reads wait for them.
				j.mu.Lock()
				j.queue = append(batch, j.queue...)
				j.mu.Unlock()
				select {
				case <-j.stop:
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 10 * time.Millisecond
			j.mu.Lock()
			if len(j.queue) == 0 && j.broken == nil {
				j.emptyLocked()
			}
			j.mu.Unlock()
		}
	}
}

// apply writes one batch and advances applied.
func (j *auditJournal) apply(batch []audit.Event) error {
	err := j.s.insertChainedAudit(context.Background(), batch)
	j.appliedMu.Lock()
	defer j.appliedMu.Unlock()
	if err != nil {
		if j.applyErr == nil {
			slog.Error("applying audit events from the journal failed; retrying", "from_seq", batch[0].Seq, "err", err)
		}
		j.applyErr = err
		return err
	}
	j.applyErr = nil
	j.applied = batch[len(batch)-1].Seq
	close(j.advanced)
	j.advanced = make(chan struct{})
	return nil
}

// drainLocked applies the whole queue (retrying until it succeeds or the
// journal stops) and empties the file. j.mu is held.
func (j *auditJournal) drainLocked() {
	for len(j.queue) > 0 {
		batch := j.queue[:min(len(j.queue), auditApplyBatch)]
		if err := j.apply(batch); err != nil {
			select {
			case <-j.stop:
				return // the events stay in the journal for the next start
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		j.queue = j.queue[len(batch):]
	}
	if j.broken == nil {
		j.emptyLocked()
	}
}

// emptyLocked truncates the journal once the database holds all it held.
func (j *auditJournal) emptyLocked() {
	if j.size == 0 {
		return
	}
	if err := j.f.Truncate(0); err != nil {
		slog.Warn("emptying the audit journal failed", "err", err)
		return
	}
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		j.broken = fmt.Errorf("the audit journal %s is damaged: %v", j.path, err)
		return
	}
	j.size = 0
}

// sync waits until every event appended before the call is in the database.
func (j *auditJournal) sync(ctx context.Context) error {
	j.mu.Lock()
	target := j.seq
	j.mu.Unlock()
	select {
	case j.hurry <- struct{}{}:
	default:
	}
	for {
		j.appliedMu.Lock()
		applied, advanced, applyErr := j.applied, j.advanced, j.applyErr
		j.appliedMu.Unlock()
		if applied >= target {
			return nil
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			if applyErr != nil {
				return fmt.Errorf("audit events up to seq %d are not in the database yet: %w", target, applyErr)
			}
			return ctx.Err()
		}
	}
}

// close applies what is queued, empties the journal and releases its lock.
func (j *auditJournal) close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true // no append after this
	j.mu.Unlock()
	close(j.stop)
	<-j.done
	return j.f.Close() // releases the flock
}

// OpenAuditJournal takes the SQLite audit journal now (its lock, and applying
// what a crash left in it) rather than at the first append, so that a second
// server on the same data dir fails at start with ErrAuditJournalLocked
// instead of failing its requests. On PostgreSQL it does nothing.
func (s *Store) OpenAuditJournal() error {
	if s.dialect != SQLite {
		return nil
	}
	_, err := s.journal()
	return err
}
