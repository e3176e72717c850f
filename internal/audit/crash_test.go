package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

// The durability promise, end to end: an event whose Record returned
// (whose request was answered) survives the process being killed. A child
// process records events from many goroutines, prints each one's ID once Record
// has returned, and kills itself with SIGKILL mid-stream (no Close, no flush);
// the parent then opens the same data dir and finds every printed event, in a
// chain that verifies.
func TestAnsweredEventsSurviveSIGKILL(t *testing.T) {
	if dir := os.Getenv("AGENTGUARD_AUDIT_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAnsweredEventsSurviveSIGKILL$")
	cmd.Env = append(os.Environ(), "AGENTGUARD_AUDIT_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	answered := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "answered "); ok {
			answered[id] = true
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v", err)
	}
	if len(answered) < 100 {
		t.Fatalf("the child answered only %d events before it was killed", len(answered))
	}

	st, err := sqlstore.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	found := 0
	for after := int64(0); ; {
		events, err := st.AuditEventsAfter(context.Background(), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 {
			break
		}
		for _, e := range events {
			if answered[e.RequestID] {
				found++
			}
		}
		after = events[len(events)-1].Seq
	}
	if found != len(answered) {
		t.Fatalf("%d of %d answered events survived the kill", found, len(answered))
	}
	if r := verify(t, st); !r.OK {
		t.Fatalf("verify after the kill: %+v", r)
	}
}

// crashChild records events from 16 goroutines and kills its own process once
// 300 have been answered.
func crashChild(dir string) {
	st, err := sqlstore.Open(context.Background(), "", dir)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	l := audit.New(st, audit.Options{})
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				e := event(g*100000 + i)
				// Record assigns the ID inside (it takes a copy); the request ID
				// is what the parent looks for.
				e.RequestID = "req_" + strconv.Itoa(g) + "_" + strconv.Itoa(i)
				if err := l.Record(context.Background(), e); err != nil {
					return
				}
				mu.Lock()
				fmt.Printf("answered %s\n", e.RequestID)
				n++
				if n == 300 {
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
