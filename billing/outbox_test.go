package billing

import (
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

func answer(id string, at time.Time) *events.Event {
	return &events.Event{Kind: events.CallAnswer, Time: at, Answer: at, CallID: id, Gateway: "gw1"}
}

func entries(t *testing.T, b *Billing) []OutboxEntry {
	t.Helper()
	out, err := b.Outbox("acct", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func kinds(es []OutboxEntry) string {
	s := ""
	for _, e := range es {
		s += map[OutboxKind]string{OutboxStart: "start ", OutboxStop: "stop "}[e.Kind] + e.Rec.CallID + ";"
	}
	return s
}

// An answered call gets a Start and a Stop, with its record id; an
// unanswered one nothing. Delivered entries go at the next commit; a
// crash before it keeps them (sent again, the same ids).
func TestOutboxStartStopDelivered(t *testing.T) {
	dir := t.TempDir()
	cfg := cfgFor(dir)
	cfg.Outboxes = []string{"acct"}
	b := mustOpen(t, cfg)
	b.Handle(attempt("c1", t0))
	b.Handle(answer("c1", t0.Add(time.Second)))
	b.Handle(attempt("c2", t0))
	b.Handle(release("c2", t0.Add(2*time.Second), "CANCEL", 487, false))
	b.step(t0.Add(time.Second), false)
	select {
	case <-b.OutboxNotify("acct"):
	default:
		t.Fatal("no notice of the committed entries")
	}
	b.Handle(release("c1", t0.Add(5*time.Second), "BYE", 200, true))
	b.step(t0.Add(5*time.Second), false)
	es := entries(t, b)
	if kinds(es) != "start c1;stop c1;" || es[0].Rec.ID != es[1].Rec.ID || es[0].Rec.ID == "" ||
		!es[0].Rec.Release.IsZero() || es[1].Rec.BillableMS != 4000 || es[0].Seq >= es[1].Seq {
		t.Fatalf("entries %s %+v", kinds(es), es)
	}
	b.Delivered("acct", es[0].Seq)
	crash(b) // before the writer's commit: the Start stays
	b = mustOpen(t, cfg)
	if got := kinds(entries(t, b)); got != "start c1;stop c1;" {
		t.Fatalf("after the crash: %s", got)
	}
	b.Delivered("acct", es[0].Seq)
	b.step(t0.Add(6*time.Second), false)
	if got := kinds(entries(t, b)); got != "stop c1;" {
		t.Fatalf("after delivery of the Start: %s", got)
	}
	// New entries get new sequence numbers after a restart.
	b.Handle(attempt("c3", t0))
	b.Handle(answer("c3", t0.Add(time.Second)))
	b.step(t0.Add(7*time.Second), false)
	es = entries(t, b)
	if kinds(es) != "stop c1;start c3;" || es[1].Seq <= es[0].Seq {
		t.Fatalf("%s %+v", kinds(es), es)
	}
	stop(b)
}

// Events the spool never committed (the process died first) make their
// entries at the restart, from the journal, once; an answered call the
// crash cut gets its Stop, ended by restart.
func TestOutboxThroughACrash(t *testing.T) {
	dir := t.TempDir()
	cfg := cfgFor(dir)
	cfg.Outboxes = []string{"acct"}
	b := mustOpen(t, cfg)
	b.Handle(attempt("c1", t0))
	b.Handle(answer("c1", t0.Add(time.Second)))
	b.Handle(attempt("c2", t0))
	b.Handle(answer("c2", t0.Add(time.Second)))
	b.Handle(release("c2", t0.Add(3*time.Second), "BYE", 200, true))
	crash(b) // nothing committed
	b = mustOpen(t, cfg)
	es := entries(t, b)
	if got := kinds(es); got != "start c1;start c2;stop c2;stop c1;" {
		t.Fatalf("entries %s", got)
	}
	if es[3].Rec.EndReason != "ended by restart" || es[3].Rec.ID != es[0].Rec.ID {
		t.Fatalf("the cut call's Stop: %+v", es[3].Rec)
	}
	stop(b)
	b = mustOpen(t, cfg)
	if got := kinds(entries(t, b)); got != "start c1;start c2;stop c2;stop c1;" {
		t.Fatalf("after a clean restart: %s", got)
	}
	stop(b)
}

// An outbox turned off (accounting removed at run time) gets no entries
// of the calls meanwhile, keeps those it had, and gets entries again
// once turned on.
func TestOutboxTurnedOff(t *testing.T) {
	cfg := cfgFor(t.TempDir())
	cfg.Outboxes = []string{"acct"}
	b := mustOpen(t, cfg)
	defer crash(b)
	b.Handle(attempt("c1", t0))
	b.Handle(answer("c1", t0.Add(time.Second)))
	b.step(t0.Add(time.Second), false)
	if !b.SetOutboxActive("acct", false) || b.SetOutboxActive("nope", false) {
		t.Fatal("SetOutboxActive: the outbox not found, or one that does not exist found")
	}
	b.Handle(release("c1", t0.Add(2*time.Second), "BYE", 200, true))
	b.Handle(attempt("c2", t0.Add(2*time.Second)))
	b.Handle(answer("c2", t0.Add(3*time.Second)))
	b.step(t0.Add(3*time.Second), false)
	if got := kinds(entries(t, b)); got != "start c1;" {
		t.Fatalf("while off: %s", got)
	}
	b.SetOutboxActive("acct", true)
	b.Handle(release("c2", t0.Add(4*time.Second), "BYE", 200, true))
	b.step(t0.Add(4*time.Second), false)
	if got := kinds(entries(t, b)); got != "start c1;stop c2;" {
		t.Fatalf("on again: %s", got)
	}
}
