package acct

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/events"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// recorder is a transport that fails while down says so, and records
// what it acknowledged.
type recorder struct {
	mu    sync.Mutex
	down  func(kind Kind, r *cdr.Record) bool
	acked []string
	sent  int
}

func (t *recorder) Send(ctx context.Context, kind Kind, r *cdr.Record, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	if t.down != nil && t.down(kind, r) {
		return errors.New("no server answers")
	}
	t.acked = append(t.acked, kind.String()+" "+r.CallID)
	return nil
}

func (t *recorder) got() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.acked...)
}

func openBilling(t *testing.T, dir string) *billing.Billing {
	t.Helper()
	b, err := billing.Open(billing.Config{Dir: dir, Node: "n1", Format: cdr.CSV, RotateInterval: time.Hour,
		RotateRecords: 1000, RotateBytes: 1 << 20, QueueLimit: 100000, SyncInterval: time.Millisecond,
		Outboxes: []string{"radius"}}, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	// Every test runs the writer under a context it cancels on return:
	// the writer's last file is written before the directory goes.
	t.Cleanup(func() {
		if !b.Wait(10 * time.Second) {
			t.Error("the CDR writer did not stop")
		}
	})
	return b
}

func call(b *billing.Billing, id string, answered bool) {
	b.Handle(&events.Event{Kind: events.CallAttempt, Time: t0, Setup: t0, CallID: id, Calling: "1001", Called: "9123"})
	if answered {
		b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(time.Second), Answer: t0.Add(time.Second), CallID: id})
	}
	b.Handle(&events.Event{Kind: events.CallRelease, Time: t0.Add(3 * time.Second), CallID: id, Cause: "BYE",
		Status: 200, Q850: 16, Answered: answered})
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
	}
}

func empty(b *billing.Billing) bool {
	es, _ := b.Outbox("radius", 0, 10)
	return len(es) == 0
}

// Every answered call's Start and Stop, in order, each once; delivered
// entries leave the outbox.
func TestSenderDeliversInOrder(t *testing.T) {
	b := openBilling(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	tr := &recorder{}
	s := &Sender{Name: "radius", Box: b, T: tr, Window: 4, Log: quiet}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	for i := 0; i < 50; i++ {
		call(b, fmt.Sprint("c", i), i%5 != 0)
	}
	waitFor(t, "40 calls' Start and Stop", func() bool { return len(tr.got()) == 80 })
	waitFor(t, "an empty outbox", func() bool { return empty(b) })
	pos := map[string]int{}
	for i, a := range tr.got() {
		if _, dup := pos[a]; dup {
			t.Fatalf("%s twice", a)
		}
		pos[a] = i
	}
	for i := 0; i < 50; i++ {
		id := fmt.Sprint("c", i)
		st, okS := pos["start "+id]
		sp, okP := pos["stop "+id]
		if i%5 == 0 {
			if okS || okP {
				t.Fatalf("unanswered %s accounted", id)
			}
			continue
		}
		if !okS || !okP || st > sp {
			t.Fatalf("%s: start at %d (%v), stop at %d (%v)", id, st, okS, sp, okP)
		}
	}
	cancel()
	<-done
}

// While no server answers, nothing is lost or skipped: the sender backs
// off and tries again; a Stop whose Start failed waits for it.
func TestSenderOutageAndStopAfterStart(t *testing.T) {
	b := openBilling(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	var mu sync.Mutex
	down := true
	failedStart := 0
	tr := &recorder{down: func(kind Kind, r *cdr.Record) bool {
		mu.Lock()
		defer mu.Unlock()
		if r.CallID == "c3" && kind == Start && failedStart < 2 {
			failedStart++ // c3's Start fails twice while others get through
			return true
		}
		return down && r.CallID == "c0"
	}}
	var failings []bool
	s := &Sender{Name: "radius", Box: b, T: tr, Window: 8, Log: quiet,
		OnFailing: func(f bool, _ error) { mu.Lock(); failings = append(failings, f); mu.Unlock() }}
	go s.Run(ctx)
	for i := 0; i < 6; i++ {
		call(b, fmt.Sprint("c", i), true)
	}
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor(t, "every Start and Stop", func() bool { return len(tr.got()) == 12 })
	waitFor(t, "an empty outbox", func() bool { return empty(b) })
	got := tr.got()
	idx := map[string]int{}
	for i, a := range got {
		idx[a] = i
	}
	if idx["start c3"] > idx["stop c3"] || idx["start c0"] > idx["stop c0"] {
		t.Fatalf("a Stop before its Start: %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failings) < 2 || !failings[0] || failings[len(failings)-1] {
		t.Fatalf("failing reports %v", failings)
	}
}

// Entries delivered but not yet deleted when the process dies are sent
// again after the restart (the same record ids); nothing is lost.
func TestSenderAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := openBilling(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	go b.Run(ctx)
	for i := 0; i < 10; i++ {
		call(b, fmt.Sprint("c", i), true)
	}
	waitFor(t, "20 entries committed", func() bool { es, _ := b.Outbox("radius", 0, 100); return len(es) == 20 })
	cancel()
	time.Sleep(50 * time.Millisecond)
	b = openBilling(t, dir)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	tr := &recorder{}
	go (&Sender{Name: "radius", Box: b, T: tr, Log: quiet}).Run(ctx)
	waitFor(t, "20 delivered after the restart", func() bool { return len(tr.got()) == 20 && empty(b) })
}

// A call taken over from the other node of a pair (its Start was sent
// there): no Start here, interim updates from here, then its Stop; the
// outbox empties.
func TestSenderResumesAdoptedCall(t *testing.T) {
	old := openBilling(t, t.TempDir())
	var mu sync.Mutex
	var rec []byte
	old.SetReplicator(putRecord(func(id string, r []byte) {
		mu.Lock()
		defer mu.Unlock()
		if r != nil {
			rec = r
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go old.Run(ctx)
	old.Handle(&events.Event{Kind: events.CallAttempt, Time: t0, Setup: t0, CallID: "c1", Calling: "1001", Called: "9123"})
	old.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(time.Second), Answer: t0.Add(time.Second), CallID: "c1"})
	waitFor(t, "the open record reported", func() bool { mu.Lock(); defer mu.Unlock(); return rec != nil })

	b := openBilling(t, t.TempDir())
	go b.Run(ctx)
	tr := &recorder{}
	s := &Sender{Name: "radius", Box: b, T: tr, Interim: 300 * time.Millisecond, Log: quiet}
	go s.Run(ctx)
	mu.Lock()
	b.Adopt("c1", rec)
	mu.Unlock()
	waitFor(t, "an interim update", func() bool { g := tr.got(); return len(g) > 0 && g[0] == "interim c1" })
	b.Handle(&events.Event{Kind: events.CallRelease, Time: t0.Add(3 * time.Second), CallID: "c1", Cause: "BYE",
		Status: 200, Q850: 16, Answered: true})
	waitFor(t, "the Stop", func() bool { g := tr.got(); return g[len(g)-1] == "stop c1" })
	waitFor(t, "an empty outbox", func() bool { return empty(b) })
	for _, g := range tr.got() {
		if g == "start c1" {
			t.Fatal("a Start sent for a call the other node started")
		}
	}
}

type putRecord func(string, []byte)

func (f putRecord) PutRecord(id string, rec []byte) { f(id, rec) }
func (putRecord) PutReleased(string, []byte)        {}
func (putRecord) PutAccounting(string, []byte)      {}
func (putRecord) PutFile(string, []byte)            {}
func (putRecord) Flush()                            {}
