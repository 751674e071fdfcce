package safe

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func capture(t *testing.T) *syncBuf {
	b := &syncBuf{}
	SetLogger(slog.New(slog.NewTextHandler(b, nil)))
	t.Cleanup(func() { SetLogger(nil) })
	return b
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGoRecoversAndReleases(t *testing.T) {
	log := capture(t)
	before := Panics()
	released := make(chan struct{})
	Go("test-go", func() {
		var p *struct{ n int }
		p.n = 1 // nil pointer dereference, as a missing header would give
	}, func() { close(released) })
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("release not called after the panic")
	}
	if Panics() != before+1 {
		t.Fatalf("panics %d, want %d", Panics(), before+1)
	}
	out := log.String()
	if !strings.Contains(out, `msg="recovered panic"`) || !strings.Contains(out, "where=test-go") || !strings.Contains(out, "stack=") {
		t.Fatalf("log: %s", out)
	}
}

func TestFuncAndFailingRelease(t *testing.T) {
	log := capture(t)
	done := make(chan struct{})
	f := Func("test-func", func() { panic("boom") }, func() { defer close(done); panic("release boom") })
	time.AfterFunc(time.Millisecond, f)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("release not called")
	}
	time.Sleep(10 * time.Millisecond)
	if out := log.String(); !strings.Contains(out, "test-func (release)") {
		t.Fatalf("the failing release was not logged: %s", out)
	}
}

func TestLogRateLimited(t *testing.T) {
	log := capture(t)
	for range 50 {
		func() {
			defer Recover("test-flood")
			panic("again")
		}()
	}
	if n := strings.Count(log.String(), "recovered panic"); n > maxPerSecond*2 || n == 0 {
		t.Fatalf("%d records for 50 panics", n)
	}
}

func TestLoopRestarts(t *testing.T) {
	capture(t)
	stop := make(chan struct{})
	defer close(stop)
	var mu sync.Mutex
	runs := 0
	finished := make(chan struct{})
	Loop("test-loop", stop, func() {
		mu.Lock()
		runs++
		n := runs
		mu.Unlock()
		if n == 1 {
			panic("first round fails")
		}
		close(finished)
	})
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("loop not restarted after its panic")
	}
}
