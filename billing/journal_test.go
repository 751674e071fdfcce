package billing

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

// crash ends b as kill -9 would: nothing more is committed and nothing
// is closed cleanly; what the journal's appends wrote stays.
func crash(b *Billing) { b.sp.close() }

// stop runs the writer to its end (a clean stop).
func stop(b *Billing) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx)
}

func TestJournalEntryRoundTrip(t *testing.T) {
	e := release("c1", t0, "BYE", 200, true)
	e.Setup, e.Answer, e.Ringing = t0.Add(-time.Minute), t0.Add(-50*time.Second), t0.Add(-55*time.Second)
	e.Calling, e.Called, e.Account, e.Trunk, e.Route = "1001", "9123", "acc-1", "peer1", "r1"
	e.AnswerSDP = []byte(answerSDP)
	buf := encodeEntry(nil, 42, e)
	seq, got, err := decodePayload(buf[8:])
	if err != nil || seq != 42 {
		t.Fatalf("seq %d, %v", seq, err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("got  %+v\nwant %+v", got, e)
	}
	for i := 0; i < len(buf)-8; i++ {
		if _, _, err := decodePayload(buf[8 : 8+i]); err == nil && i < 10 {
			t.Fatalf("a %d-byte payload decoded", i)
		}
	}
}

// Events the writer never committed (the process died first) are in the
// records after the restart, from the journal: a released call with its
// real release, an answered one ended by restart after its answer; a
// torn entry at the end of the journal (power loss) is ignored.
func TestJournalKeepsWhatTheSpoolNeverGot(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, cfgFor(dir))
	b.Handle(attempt("c1", t0))
	b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(time.Second), Answer: t0.Add(time.Second), CallID: "c1"})
	b.Handle(attempt("c2", t0))
	b.Handle(release("c2", t0.Add(3*time.Second), "BYE", 200, false))
	crash(b) // no step ran: the spool has nothing

	f, err := os.OpenFile(filepath.Join(dir, "journal-0"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 1, 0, 1, 2, 3, 4, 5}) // a torn entry
	f.Close()

	b = mustOpen(t, cfgFor(dir))
	stop(b)
	_, rows := readCSV(t, dir)
	byCall := map[string][]string{}
	for _, r := range rows {
		byCall[col(r, "caller_call_id")] = r
	}
	if len(rows) != 2 {
		t.Fatalf("%d records, want 2", len(rows))
	}
	if r := byCall["c2"]; col(r, "end_reason") != "normal" || col(r, "release") != "2026-12-01T10:00:03.000Z" {
		t.Fatalf("c2: %v", r)
	}
	if r := byCall["c1"]; col(r, "end_reason") != "ended by restart" || col(r, "answer") != "2026-12-01T10:00:01.000Z" ||
		col(r, "release") < "2026-12-01T10:00:01.000Z" {
		t.Fatalf("c1: %v", r)
	}
	for n := 0; n < 2; n++ {
		if st, err := os.Stat(filepath.Join(dir, fmt.Sprintf("journal-%d", n))); err != nil || st.Size() != 0 {
			t.Fatalf("journal-%d after a clean stop: %v %v", n, st, err)
		}
	}
}

// A process killed while handlers were copying leaves holes: a place
// reserved and never begun (zeros), an entry cut after its length. The
// complete entries around them are read; those of the handlers that had
// not returned are not.
func TestJournalStepsOverHoles(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, cfgFor(dir))
	if b.jcur.mem == nil {
		t.Fatal("the journal is not mapped here: the test would only see pwrite")
	}
	b.Handle(attempt("c1", t0))
	b.jcur.off.Add(24) // a handler reserved 24 bytes and was killed
	cut := encodeEntry(nil, 99, attempt("cut", t0))
	at := b.jcur.off.Add(int64(len(cut)+7)&^7) - int64(len(cut)+7)&^7
	copy(b.jcur.mem[at:], cut[:len(cut)/2]) // killed half way through
	b.Handle(release("c1", t0.Add(2*time.Second), "BYE", 200, false))
	b.Handle(attempt("c2", t0.Add(time.Second)))
	crash(b)

	evs, _, err := readJournals(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range evs {
		got = append(got, fmt.Sprint(j.e.Kind, " ", j.e.CallID))
	}
	want := []string{
		fmt.Sprint(events.CallAttempt, " c1"), fmt.Sprint(events.CallRelease, " c1"), fmt.Sprint(events.CallAttempt, " c2"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	b = mustOpen(t, cfgFor(dir))
	stop(b)
	if _, rows := readCSV(t, dir); len(rows) != 2 {
		t.Fatalf("%d records, want 2 (c1 released, c2 ended by restart)", len(rows))
	}
}

// The files take turns: with a small turn size, many calls, steps and a
// crash at the end, every call is recorded once and nothing is applied
// twice.
func TestJournalTurns(t *testing.T) {
	defer func(n int64) { journalRotate = n }(journalRotate)
	journalRotate = 2000
	dir := t.TempDir()
	cfg := cfgFor(dir)
	cfg.RotateRecords = 1000
	b := mustOpen(t, cfg)
	now := t0
	turns := 0
	for i := 0; i < 300; i++ {
		id := fmt.Sprint("c", i)
		b.Handle(attempt(id, now))
		b.Handle(release(id, now.Add(time.Second), "BYE", 200, false))
		if i%7 == 0 {
			before := b.jcur
			now = now.Add(time.Second)
			b.step(now, false)
			if b.jcur != before {
				turns++
			}
		}
	}
	if turns < 2 {
		t.Fatalf("%d turns of the journal files", turns)
	}
	crash(b)
	b = mustOpen(t, cfg)
	stop(b)
	_, rows := readCSV(t, dir)
	seen := map[string]int{}
	for _, r := range rows {
		seen[col(r, "caller_call_id")]++
		if col(r, "end_reason") != "normal" {
			t.Fatalf("%v", r)
		}
	}
	if len(seen) != 300 || len(rows) != 300 {
		t.Fatalf("%d records of %d calls, want 300", len(rows), len(seen))
	}
}
