package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// JSONLines writes each event as one JSON object per line (the same JSON the
// search API returns, hash chain included), for Fluent Bit, Vector or Loki.
type JSONLines struct {
	mu    sync.Mutex
	w     *bufio.Writer
	close func() error
}

// NewJSONLines writes to w; closer (may be nil) runs on Close.
func NewJSONLines(w io.Writer, closer func() error) *JSONLines {
	if closer == nil {
		closer = func() error { return nil }
	}
	return &JSONLines{w: bufio.NewWriterSize(w, 64<<10), close: closer}
}

// OpenJSONLinesFile appends to path, creating it with mode 0600.
func OpenJSONLinesFile(path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the audit export file: %w", err)
	}
	return NewJSONLines(f, f.Close), nil
}

// Export writes the batch and flushes it.
func (j *JSONLines) Export(_ context.Context, events []Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		j.w.Write(b)
		j.w.WriteByte('\n')
	}
	return j.w.Flush()
}

// Close flushes and closes the underlying file.
func (j *JSONLines) Close(context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return errors.Join(j.w.Flush(), j.close())
}

// OpenSinks builds the exporters a --audit-export value names: a comma-separated
// list of "stdout", "file:/path/to/audit.jsonl" and "otlp" (OTLP/HTTP to the
// endpoint in the standard OTEL_EXPORTER_OTLP_* environment variables) or
// "otlp:http://collector:4318". An empty value exports nothing.
func OpenSinks(ctx context.Context, spec string, stdout io.Writer) ([]Sink, error) {
	var sinks []Sink
	fail := func(err error) ([]Sink, error) {
		for _, s := range sinks {
			s.Close(ctx)
		}
		return nil, err
	}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "":
		case part == "stdout":
			sinks = append(sinks, NewJSONLines(stdout, nil))
		case strings.HasPrefix(part, "file:"):
			path := strings.TrimPrefix(part, "file:")
			if path == "" {
				return fail(fmt.Errorf("--audit-export %q: name the file, e.g. file:/var/log/agentguard/audit.jsonl", part))
			}
			s, err := OpenJSONLinesFile(path)
			if err != nil {
				return fail(err)
			}
			sinks = append(sinks, s)
		case part == "otlp" || strings.HasPrefix(part, "otlp:"):
			s, err := NewOTLP(ctx, strings.TrimPrefix(strings.TrimPrefix(part, "otlp"), ":"))
			if err != nil {
				return fail(err)
			}
			sinks = append(sinks, s)
		default:
			return fail(fmt.Errorf("--audit-export %q is not a sink: use stdout, file:/path, otlp or otlp:http://collector:4318 (comma-separated)", part))
		}
	}
	return sinks, nil
}
