package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/secret"
)

// DefaultMaxBatch is how many events one transaction writes at most.
const DefaultMaxBatch = 256

// maxField bounds each text field of an event; longer values are cut (at a rune
// boundary) rather than refused, so an oversized client-supplied value cannot make
// an event go unrecorded.
const maxField = 1024

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("the audit log is closed")

// Sink receives events after they are durable (exporters).
type Sink interface {
	Export(ctx context.Context, events []Event) error
	Close(ctx context.Context) error
}

// Options tune a Log.
type Options struct {
	Now      func() time.Time
	MaxBatch int    // default DefaultMaxBatch
	Sinks    []Sink // exporters, fed after each commit
	// CommitDelay: when the writer finds two or more events waiting it keeps
	// gathering for up to this long before it writes, like PostgreSQL's
	// commit_delay. Fewer, larger transactions cost less CPU per event: when the
	// cores are saturated (64 concurrent token requests on 2 cores) 1 ms buys
	// more throughput than it costs; with few concurrent callers the delay is
	// pure latency and throughput falls. A lone event is never delayed. 0: off.
	CommitDelay time.Duration
}

// Log is the Recorder that writes to a Store with group commit: one writer
// goroutine takes every event waiting (up to MaxBatch), writes them in one
// transaction and then releases all their callers. Record blocks until its
// event is committed, so a request answered after Record returns cannot lose its
// event in a crash; many concurrent requests share one transaction.
type Log struct {
	store    Store
	now      func() time.Time
	maxBatch int
	delay    time.Duration
	sinks    []Sink

	mu     sync.RWMutex
	closed bool
	queue  chan *pending
	done   chan struct{}

	exportQ   chan []Event
	exportEnd chan struct{}
	dropped   atomic.Int64
}

type pending struct {
	e   Event
	err chan error
}

// New starts a Log writing to st. Close it to drain and stop.
func New(st Store, opts Options) *Log {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	l := &Log{
		store: st, now: opts.Now, maxBatch: opts.MaxBatch, delay: opts.CommitDelay, sinks: opts.Sinks,
		queue: make(chan *pending, 4*opts.MaxBatch), done: make(chan struct{}),
	}
	go l.writer()
	if len(l.sinks) > 0 {
		l.exportQ, l.exportEnd = make(chan []Event, 1024), make(chan struct{})
		go l.exporter()
	}
	return l
}

// Validate checks the fields a caller must set.
func Validate(e Event) error {
	switch e.Category {
	case CategoryInbound, CategoryOutbound, CategoryCredential, CategoryToken, CategoryAdmin:
	default:
		return fmt.Errorf("audit event category %q must be inbound, outbound, credential, token or admin", e.Category)
	}
	if e.Decision != Allow && e.Decision != Deny {
		return fmt.Errorf("audit event decision %q must be allow or deny", e.Decision)
	}
	if e.Action == "" {
		return errors.New("audit event action is required")
	}
	return nil
}

func clip(s string) string {
	// PostgreSQL text refuses NUL; an event must never be lost to one.
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= maxField && utf8.ValidString(s) {
		return s
	}
	s = string([]rune(s)) // replaces invalid bytes with U+FFFD
	if len(s) > maxField {
		i := maxField
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	return s
}

// Record completes e (id, time, request metadata), checks it and returns once it
// is committed.
func (l *Log) Record(ctx context.Context, e Event) error {
	Fill(ctx, &e)
	if err := Validate(e); err != nil {
		return err
	}
	e.ID = secret.NewID("evt")
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
	for _, f := range []*string{&e.Action, &e.Reason, &e.AgentID, &e.User, &e.ClientID, &e.ResourceType,
		&e.Resource, &e.SourceIP, &e.RequestID, &e.TraceID} {
		*f = clip(*f)
	}
	p := &pending{e: e, err: make(chan error, 1)}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	select {
	case l.queue <- p:
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	l.mu.RUnlock()
	// Once queued the event will be written whatever happens to ctx; wait for it,
	// so the caller never answers before its event is durable.
	return <-p.err
}

func (l *Log) writer() {
	defer close(l.done)
	batch := make([]*pending, 0, l.maxBatch)
	events := make([]Event, 0, l.maxBatch)
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	for p := range l.queue {
		batch = append(batch[:0], p)
	fill:
		for len(batch) < l.maxBatch {
			select {
			case q, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, q)
			default:
				break fill
			}
		}
		if len(batch) >= 2 && len(batch) < l.maxBatch && l.delay > 0 {
			gather.Reset(l.delay)
		wait:
			for len(batch) < l.maxBatch {
				select {
				case q, ok := <-l.queue:
					if !ok {
						break wait
					}
					batch = append(batch, q)
				case <-gather.C:
					break wait
				}
			}
			gather.Stop()
		}
		events = events[:0]
		for _, q := range batch {
			events = append(events, q.e)
		}
		err := l.write(events)
		for _, q := range batch {
			q.err <- err
		}
		if err == nil && l.exportQ != nil {
			out := append([]Event(nil), events...)
			select {
			case l.exportQ <- out:
			default:
				// The database is the record; the export is a copy. A stuck
				// collector must not stop token issuance, so the batch is dropped
				// and counted; `agentguard audit search` can re-read it.
				n := l.dropped.Add(int64(len(out)))
				slog.Warn("audit export queue full; events not exported", "from_seq", out[0].Seq, "to_seq", out[len(out)-1].Seq, "dropped_total", n)
			}
		}
	}
}

// write commits one batch, retrying a failed transaction once (a PostgreSQL
// serialization hiccup or a dropped connection).
func (l *Log) write(events []Event) error {
	var err error
	for attempt := range 2 {
		if attempt > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = l.store.AppendAuditEvents(ctx, events)
		cancel()
		if err == nil {
			return nil
		}
	}
	slog.Error("writing audit events failed", "events", len(events), "err", err)
	return fmt.Errorf("write audit events: %w", err)
}

func (l *Log) exporter() {
	defer close(l.exportEnd)
	for events := range l.exportQ {
		for _, s := range l.sinks {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := s.Export(ctx, events); err != nil {
				slog.Warn("exporting audit events failed", "sink", fmt.Sprintf("%T", s), "from_seq", events[0].Seq, "err", err)
			}
			cancel()
		}
	}
}

// Queued is how many recorded events wait for the writer to take them.
func (l *Log) Queued() int { return len(l.queue) }

// Dropped counts events the exporters never saw because their queue was full.
func (l *Log) Dropped() int64 { return l.dropped.Load() }

// Close stops taking events, writes every queued one, flushes the exporters and
// stops. It is safe to call more than once.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	if l.exportQ == nil {
		return nil
	}
	close(l.exportQ)
	<-l.exportEnd
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range l.sinks {
		err = errors.Join(err, s.Close(ctx))
	}
	return err
}
