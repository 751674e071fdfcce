package billing

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/billing/rating"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// mustOpen opens the writer of cfg or fails the test.
func mustOpen(t *testing.T, cfg Config) *Billing {
	t.Helper()
	b, err := Open(cfg, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cfgFor(dir string) Config {
	return Config{Dir: dir, Node: "ss1", Format: cdr.CSV, RotateInterval: time.Hour, RotateRecords: 2,
		RotateBytes: 1 << 20, QueueLimit: 1000, RefuseOnFault: true}
}

// offerSDP offers two audio streams, PCMU and PCMA.
const offerSDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=audio 4002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"

// answerSDP answers with PCMU.
const answerSDP = "v=0\r\no=- 2 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n" +
	"m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func attempt(id string, at time.Time) *events.Event {
	return &events.Event{Kind: events.CallAttempt, Time: at, Setup: at, CallID: id, Calling: "1001",
		Called: "9123", CalledSent: "123", CallingSent: "1001", Trunk: "peer1", Route: "r1"}
}

func release(id string, at time.Time, cause string, status int, answered bool) *events.Event {
	return &events.Event{Kind: events.CallRelease, Time: at, CallID: id, Cause: cause, Status: status, Q850: 16,
		Side: events.SideCaller, Answered: answered, Gateway: "gw1", Attempts: 1, CalleeCallID: "b-" + id,
		Offer: []byte(offerSDP)}
}

// readCSV reads every closed CSV file of dir in name order and checks its
// sidecar.
func readCSV(t *testing.T, dir string) (names []string, rows [][]string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".csv") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		side, err := os.ReadFile(filepath.Join(dir, n+".sha256"))
		if err != nil {
			t.Fatalf("%s has no sidecar: %v", n, err)
		}
		sum := sha256.Sum256(data)
		if want := hex.EncodeToString(sum[:]) + "  " + n + "\n"; string(side) != want {
			t.Fatalf("%s sidecar %q, want %q", n, side, want)
		}
		recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if strings.Join(recs[0], ",") != strings.Join(cdr.Columns, ",") {
			t.Fatalf("%s header %v", n, recs[0])
		}
		rows = append(rows, recs[1:]...)
	}
	return names, rows
}

func col(row []string, name string) string {
	for i, c := range cdr.Columns {
		if c == name {
			return row[i]
		}
	}
	panic(name)
}

func TestRecordsRotateIntoFiles(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, cfgFor(dir))
	b.Handle(attempt("c1", t0))
	b.Handle(&events.Event{Kind: events.CallRinging, Time: t0.Add(time.Second), CallID: "c1"})
	b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(2 * time.Second), Answer: t0.Add(2 * time.Second), CallID: "c1", Gateway: "gw1", AnswerSDP: []byte(answerSDP)})
	b.Handle(release("c1", t0.Add(62500*time.Millisecond), "BYE", 200, true))
	b.Handle(attempt("c2", t0))
	b.Handle(release("c2", t0.Add(time.Second), "cancelled", 487, false))
	b.Handle(attempt("c3", t0))
	b.Handle(release("c3", t0.Add(time.Second), "rejected", 404, false))
	b.step(t0.Add(time.Minute), false)
	names, rows := readCSV(t, dir)
	if len(names) != 1 || !strings.HasPrefix(names[0], "ss1_0000000001_20261201T100102Z") {
		t.Fatalf("files %v", names)
	}
	if len(rows) != 2 {
		t.Fatalf("%d records in the file, want 2 (rotate_records)", len(rows))
	}
	r := rows[0]
	for k, want := range map[string]string{"record_id": "ss1-0", "caller_call_id": "c1", "callee_call_id": "b-c1",
		"seizure": "2026-12-01T10:00:00.000Z", "ringing": "2026-12-01T10:00:01.000Z", "answer": "2026-12-01T10:00:02.000Z",
		"release": "2026-12-01T10:01:02.500Z", "duration_ms": "62500", "billable_ms": "60500", "end_reason": "normal",
		"source_kind": "trunk", "source": "peer1", "route": "r1", "gateway": "gw1", "called_sent": "123",
		"media_offered": "audio PCMU/8000; audio PCMA/8000", "media_answered": "audio PCMU/8000"} {
		if got := col(r, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if col(rows[1], "end_reason") != "cancelled" {
		t.Errorf("rows %v", rows[1:])
	}
	// The next file continues the sequence, ids go on.
	b.Handle(attempt("c4", t0))
	b.Handle(release("c4", t0.Add(2*time.Minute), "no answer", 480, false))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx) // stops at once: closes the current file
	names, rows = readCSV(t, dir)
	if len(names) != 2 || !strings.HasPrefix(names[1], "ss1_0000000002_") || len(rows) != 4 || col(rows[3], "record_id") != "ss1-3" {
		t.Fatalf("files %v, %d rows", names, len(rows))
	}
	if col(rows[2], "end_reason") != "rejected" || col(rows[2], "billable_ms") != "0" {
		t.Errorf("rows %v", rows[2:])
	}
}

// A held call gives its offer to the records with the answer and keeps
// none: the release of an answered call comes without it.
func TestOfferWithTheAnswer(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, cfgFor(dir))
	b.Handle(attempt("c1", t0))
	b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(time.Second), Answer: t0.Add(time.Second), CallID: "c1",
		AnswerSDP: []byte(answerSDP), Offer: []byte(offerSDP)})
	rel := release("c1", t0.Add(time.Minute), "BYE", 200, true)
	rel.Offer = nil
	b.Handle(rel)
	b.Handle(attempt("c2", t0))
	b.Handle(release("c2", t0.Add(time.Second), "cancelled", 487, false))
	b.step(t0.Add(2*time.Minute), false)
	_, rows := readCSV(t, dir)
	if len(rows) != 2 {
		t.Fatalf("%d records", len(rows))
	}
	for _, r := range rows {
		if got := col(r, "media_offered"); got != "audio PCMU/8000; audio PCMA/8000" {
			t.Errorf("%s: media_offered %q", col(r, "caller_call_id"), got)
		}
	}
}

// An answered call's record stays in the spool only once committed (a
// held call costs billing no record in memory) and is read back whole at
// the call's next event.
func TestHeldCallRecordInTheSpoolOnly(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, cfgFor(dir))
	b.Handle(attempt("c1", t0))
	b.Handle(&events.Event{Kind: events.CallRinging, Time: t0.Add(time.Second), CallID: "c1"})
	b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(2 * time.Second), Answer: t0.Add(2 * time.Second), CallID: "c1",
		Gateway: "gw1", AnswerSDP: []byte(answerSDP), Offer: []byte(offerSDP)})
	b.Handle(attempt("c2", t0))
	b.step(t0.Add(3*time.Second), false)
	if r, ok := b.calls["c1"]; !ok || r != nil {
		t.Fatalf("the answered call's record: in memory %v, known %v", r != nil, ok)
	}
	if b.calls["c2"] == nil {
		t.Fatal("the unanswered call's record left memory")
	}
	rel := release("c1", t0.Add(time.Minute), "BYE", 200, true)
	rel.Offer = nil
	b.Handle(rel)
	b.Handle(release("c2", t0.Add(time.Second), "cancelled", 487, false))
	b.step(t0.Add(2*time.Minute), false)
	_, rows := readCSV(t, dir)
	if len(rows) != 2 {
		t.Fatalf("%d records", len(rows))
	}
	r := rows[0]
	for k, want := range map[string]string{"record_id": "ss1-0", "caller_call_id": "c1", "ringing": "2026-12-01T10:00:01.000Z",
		"answer": "2026-12-01T10:00:02.000Z", "billable_ms": "58000", "gateway": "gw1", "end_reason": "normal",
		"media_offered": "audio PCMU/8000; audio PCMA/8000", "media_answered": "audio PCMU/8000"} {
		if got := col(r, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(b.calls) != 0 {
		t.Errorf("calls left: %v", b.calls)
	}
}

// kill -9 with calls in progress: at the next start each gets its record,
// "ended by restart" at the last durable time; ids are never reused.
func TestRestartEndsCallsInProgress(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, cfgFor(dir))
	b.Handle(attempt("c1", t0))
	b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(time.Second), Answer: t0.Add(time.Second), CallID: "c1"})
	b.Handle(attempt("c2", t0))
	b.step(t0.Add(5*time.Second), false)
	b.sp.close() // the process dies: nothing more is written

	b = mustOpen(t, cfgFor(dir))
	b.Handle(attempt("c3", t0.Add(time.Hour)))
	b.Handle(release("c3", t0.Add(time.Hour+time.Second), "BYE", 200, false))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx)
	_, rows := readCSV(t, dir)
	if len(rows) != 3 {
		t.Fatalf("%d records, want 3", len(rows))
	}
	ids := map[string]bool{}
	for _, r := range rows {
		if ids[col(r, "record_id")] {
			t.Fatalf("record id %s twice", col(r, "record_id"))
		}
		ids[col(r, "record_id")] = true
	}
	byCall := map[string][]string{}
	for _, r := range rows {
		byCall[col(r, "caller_call_id")] = r
	}
	for _, id := range []string{"c1", "c2"} {
		r := byCall[id]
		if col(r, "end_reason") != cdr.EndRestart {
			t.Fatalf("call %s: end reason %q", id, col(r, "end_reason"))
		}
		// The writer was alive at t0+5s (its last commit's time).
		if got := col(r, "release"); got < "2026-12-01T10:00:05.000Z" {
			t.Fatalf("call %s released at %s, before the last durable time", id, got)
		}
	}
	if col(byCall["c3"], "end_reason") != "normal" {
		t.Fatalf("call c3: %v", byCall["c3"])
	}
	if col(byCall["c1"], "billable_ms") == "0" {
		t.Fatal("the answered call cut by the restart bills nothing")
	}
}

// An unanswered call a crash cut: its caller's INVITE, retransmitted to
// the next start, goes on with the same record (id and seizure), once; an
// unanswered call nobody retransmits is ended by restart after Timer B,
// with the release time of the start that had it, even across a second
// crash.
func TestRetransmittedInviteTakesUpItsRecord(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, cfgFor(dir))
	b.Handle(attempt("c1", t0))
	b.Handle(attempt("c2", t0))
	b.step(t0.Add(time.Second), false)
	b.sp.close() // dies

	b = mustOpen(t, cfgFor(dir))
	b.step(t0.Add(10*time.Second), false)
	b.sp.close() // dies again, the orphans not yet closed

	b = mustOpen(t, cfgFor(dir))
	b.Handle(attempt("c1", t0.Add(20*time.Second))) // the retransmission
	b.Handle(release("c1", t0.Add(25*time.Second), "BYE", 200, false))
	b.step(t0.Add(21*time.Second), false)
	if len(b.orphans) != 1 {
		t.Fatalf("%d orphans after the take-up, want 1", len(b.orphans))
	}
	b.step(t0.Add(21*time.Second+orphanWait), false) // Timer B is over
	if len(b.orphans) != 0 {
		t.Fatalf("%d orphans after Timer B", len(b.orphans))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx)
	_, rows := readCSV(t, dir)
	if len(rows) != 2 {
		t.Fatalf("%d records, want 2: %v", len(rows), rows)
	}
	byCall := map[string][]string{}
	for _, r := range rows {
		byCall[col(r, "caller_call_id")] = r
	}
	c1, c2 := byCall["c1"], byCall["c2"]
	if col(c1, "end_reason") != "normal" || col(c1, "record_id") != "ss1-0" || !strings.HasPrefix(col(c1, "seizure"), "2026-12-01T10:00:00") {
		t.Fatalf("taken-up call: %v", c1)
	}
	if col(c2, "end_reason") != cdr.EndRestart || col(c2, "record_id") != "ss1-1" || col(c2, "release") > "2026-12-01T10:00:01.999Z" {
		t.Fatalf("orphan: %v", c2)
	}
}

// A crash between the file's intent and its commit: the file is written
// again, the same name, the same bytes; no sequence number is skipped.
func TestCrashWhileClosingAFile(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, cfgFor(dir))
	b.Handle(attempt("c1", t0))
	b.Handle(release("c1", t0.Add(time.Second), "BYE", 200, false))
	b.cfg.RotateRecords = 100 // not yet
	b.step(t0.Add(2*time.Second), false)
	// The intent is durable and the file half written, then the process dies.
	in := fileIntent{Seq: 1, Gen: 0, Format: "csv", Name: fileName("ss1", 1, b.opened, cdr.CSV)}
	if err := store.Update(b.sp.db, func(tx *bolt.Tx) error {
		if err := putU64(tx, keyGen, 1); err != nil {
			return err
		}
		return putJSON(tx, keyIntent, in)
	}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "."+in.Name+".tmp"), []byte("record_id,no"), 0o640)
	b.sp.close()

	b = mustOpen(t, cfgFor(dir))
	names, rows := readCSV(t, dir)
	if len(names) != 1 || names[0] != in.Name || len(rows) != 1 {
		t.Fatalf("files %v rows %d", names, len(rows))
	}
	if _, err := os.Stat(filepath.Join(dir, "."+in.Name+".tmp")); !os.IsNotExist(err) {
		t.Fatal("the temporary file was left")
	}
	b.Handle(attempt("c2", t0))
	b.Handle(release("c2", t0.Add(time.Second), "BYE", 200, false))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx)
	names, _ = readCSV(t, dir)
	if len(names) != 2 || !strings.HasPrefix(names[1], "ss1_0000000002_") {
		t.Fatalf("files %v", names)
	}
}

// A spool that cannot be written keeps the records and, by policy,
// refuses new calls until it can.
func TestSpoolFaultRefusesAndKeeps(t *testing.T) {
	dir := t.TempDir()
	bus := events.New()
	var seen []string
	bus.Subscribe(func(e *events.Event) {
		if e.Kind == events.CDRSpool {
			seen = append(seen, e.State)
		}
	})
	b, err := Open(cfgFor(dir), bus, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b.fault(os.ErrPermission)
	if !b.Refusing() {
		t.Fatal("a failing spool does not refuse new calls")
	}
	b.Handle(attempt("c1", t0))
	b.Handle(release("c1", t0.Add(time.Second), "BYE", 200, false))
	b.step(t0.Add(2*time.Second), false)
	if b.Refusing() || len(seen) != 2 || seen[1] != "ok" {
		t.Fatalf("after a good commit: refusing %v, events %v", b.Refusing(), seen)
	}
	b.cfg.RefuseOnFault = false
	b.fault(os.ErrPermission)
	if b.Refusing() {
		t.Fatal("policy continue refuses calls")
	}
}

// A released call is rated with the plan in force: charge, currency and
// meter pulses in its record.
func TestRecordsAreRated(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, cfgFor(dir))
	plan, err := rating.Compile(rating.Spec{Default: "std", Precision: 2, Tariffs: []rating.TariffSpec{{Name: "std", Currency: "EUR",
		Rates: []rating.RateSpec{{Prefix: "1", ConnectFee: "0.10", Price: "0.60", Unit: "60s", Increments: "60/60", Pulse: "30s"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	b.SetPlan(plan)
	b.Handle(attempt("c1", t0)) // called as sent: 123
	b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0, Answer: t0, CallID: "c1"})
	b.Handle(release("c1", t0.Add(61*time.Second), "BYE", 200, true))
	b.Handle(attempt("c2", t0))
	b.Handle(release("c2", t0.Add(time.Second), "cancelled", 487, false))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx)
	_, rows := readCSV(t, dir)
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	// 61 s billed 120 s x 0.60/min + 0.10 = 1.30; pulses every 30 s: 3.
	if c, cur, p := col(rows[0], "charge"), col(rows[0], "currency"), col(rows[0], "meter_pulses"); c != "1.30" || cur != "EUR" || p != "3" {
		t.Errorf("answered call: charge %s %s, %s pulses", c, cur, p)
	}
	if c := col(rows[1], "charge"); c != "0.00" {
		t.Errorf("cancelled call charged %s", c)
	}
}

// Hot billing: a record is in the hot stream and on the bus as soon as it
// is durable, before any file closes.
func TestHotBilling(t *testing.T) {
	dir := t.TempDir()
	cfg := cfgFor(dir)
	cfg.Hot, cfg.RotateRecords = true, 1000
	bus := events.New()
	var got []*cdr.Record
	bus.Subscribe(func(e *events.Event) {
		if e.Kind == events.CallRecord {
			got = append(got, e.Detail.(*cdr.Record))
		}
	})
	b, err := Open(cfg, bus, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b.Handle(attempt("c1", t0))
	b.Handle(release("c1", t0.Add(time.Second), "BYE", 200, false))
	b.step(t0.Add(2*time.Second), false)
	if len(got) != 1 || got[0].CallID != "c1" {
		t.Fatalf("bus records %v", got)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "hot", "hot-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("hot files %v", files)
	}
	data, _ := os.ReadFile(files[0])
	if !strings.Contains(string(data), `"record_id":"ss1-0"`) || strings.Count(string(data), "\n") != 1 {
		t.Fatalf("hot stream %q", data)
	}
	if names, _ := readCSV(t, dir); len(names) != 0 {
		t.Fatalf("a file closed already: %v", names)
	}
}

// One batch with more released calls than a file holds: every file gets
// exactly rotate_records, the rest waits for the next file.
func TestRotateRecordsIsExactWithinABatch(t *testing.T) {
	dir := t.TempDir()
	cfg := cfgFor(dir)
	cfg.RotateRecords = 5
	b := mustOpen(t, cfg)
	for i := 0; i < 23; i++ {
		id := "c" + strconv.Itoa(i)
		b.Handle(attempt(id, t0))
		b.Handle(release(id, t0.Add(time.Second), "BYE", 200, false))
	}
	b.step(t0.Add(2*time.Second), false)
	names, _ := readCSV(t, dir)
	if len(names) != 4 {
		t.Fatalf("files %v, want 4", names)
	}
	for _, n := range names {
		data, _ := os.ReadFile(filepath.Join(dir, n))
		if lines := strings.Count(string(data), "\n"); lines != 6 { // header and 5 records
			t.Fatalf("%s has %d lines", n, lines)
		}
	}
	if b.pending != 3 {
		t.Fatalf("%d records pending, want 3", b.pending)
	}
}

// A file closes as soon as its size reaches rotate_mb: no file is more
// than one record over, in either format, across batches and a crash
// (the restarted writer counts what the spool holds the same way).
func TestRotateBytesWithinOneRecord(t *testing.T) {
	for _, f := range []cdr.Format{cdr.CSV, cdr.JSON} {
		t.Run(string(f), func(t *testing.T) {
			dir := t.TempDir()
			cfg := cfgFor(dir)
			cfg.Format, cfg.RotateRecords, cfg.RotateBytes = f, 1000, 3000
			b := mustOpen(t, cfg)
			for i := 0; i < 60; i++ {
				id := "c" + strconv.Itoa(i) + strings.Repeat("x", i*3) // records of many sizes
				e := attempt(id, t0)
				if i%5 == 0 {
					e.Calling = `"quoted, with a comma"` // CSV quotes it, JSON escapes it
				}
				b.Handle(e)
				b.Handle(release(id, t0.Add(time.Second), "BYE", 200, false))
				switch {
				case i == 25:
					b.step(t0.Add(2*time.Second), false)
					crash(b)
					b = mustOpen(t, cfg)
				case i%4 == 0:
					b.step(t0.Add(2*time.Second), false)
				}
			}
			b.step(t0.Add(2*time.Second), false)
			ents, _ := os.ReadDir(dir)
			files := 0
			for _, e := range ents {
				if !strings.HasSuffix(e.Name(), "."+string(f)) || strings.HasPrefix(e.Name(), ".") {
					continue
				}
				data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				body := strings.TrimSuffix(string(data), "\n")
				last := body[strings.LastIndex(body, "\n")+1:]
				if int64(len(data)) < cfg.RotateBytes || int64(len(data)-len(last)-1) >= cfg.RotateBytes {
					t.Errorf("%s: %d bytes, its last record %d: want it to reach %d only with its last record",
						e.Name(), len(data), len(last)+1, cfg.RotateBytes)
				}
				files++
			}
			if files < 3 {
				t.Fatalf("%d files closed by size", files)
			}
		})
	}
}

// A call answered on the other node of a pair and adopted here: its
// release writes one record with the other node's id and times; a call
// handed over is written nowhere here.
func TestAdoptedAndHandedOverCalls(t *testing.T) {
	old := mustOpen(t, cfgFor(t.TempDir()))
	var mu sync.Mutex
	open := map[string][]byte{}
	old.SetReplicator(replicatorFunc(func(id string, rec []byte) {
		mu.Lock()
		defer mu.Unlock()
		if rec == nil {
			delete(open, id)
		} else {
			open[id] = rec
		}
	}))
	old.Handle(attempt("c1", t0))
	old.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(2 * time.Second), Answer: t0.Add(2 * time.Second), CallID: "c1", Gateway: "gw1"})
	old.Handle(attempt("c2", t0))
	old.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(3 * time.Second), Answer: t0.Add(3 * time.Second), CallID: "c2", Gateway: "gw1"})
	old.step(t0.Add(5*time.Second), false)
	mu.Lock()
	rec1 := open["c1"]
	n := len(open)
	mu.Unlock()
	if n != 2 || rec1 == nil {
		t.Fatalf("%d open records reported", n)
	}
	// The old node hands c2 over: no record of it there.
	old.Handle(&events.Event{Kind: events.CallHandover, CallID: "c2"})
	old.step(t0.Add(6*time.Second), false)
	mu.Lock()
	n = len(open)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("%d open records after the handover", n)
	}

	dir := t.TempDir()
	cfg := cfgFor(dir)
	cfg.Node, cfg.RotateRecords = "ss2", 1
	nu := mustOpen(t, cfg)
	nu.Adopt("c1", rec1)
	nu.Adopt("c1", rec1) // twice (a journal replay): one record
	nu.Handle(release("c1", t0.Add(70*time.Second), "BYE", 200, true))
	// One taken over before its record came: the release makes it, with
	// the answer it carries.
	lone := release("c9", t0.Add(70*time.Second), "BYE", 200, true)
	lone.Setup, lone.Answer = t0, t0.Add(4*time.Second)
	nu.Handle(lone)
	nu.step(t0.Add(71*time.Second), false)
	_, rows := readCSV(t, dir)
	if len(rows) != 2 || col(rows[1], "caller_call_id") != "c9" || col(rows[1], "answer") != "2026-12-01T10:00:04.000Z" {
		t.Fatalf("records %v", rows)
	}
	for k, want := range map[string]string{"record_id": "ss1-0", "answer": "2026-12-01T10:00:02.000Z",
		"release": "2026-12-01T10:01:10.000Z", "end_reason": "normal", "source": "peer1"} {
		if got := col(rows[0], k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

type replicatorFunc func(string, []byte)

func (f replicatorFunc) PutRecord(id string, rec []byte) { f(id, rec) }
func (replicatorFunc) PutReleased(string, []byte)        {}
func (replicatorFunc) PutAccounting(string, []byte)      {}
func (replicatorFunc) PutFile(string, []byte)            {}
func (replicatorFunc) Flush()                            {}

// A node of a replicating pair restarted after a crash holds the answered
// calls it had: those the other node carried on are dropped (no second
// record), the others ended by restart; a second Settle does nothing.
func TestHeldCallsSettled(t *testing.T) {
	dir := t.TempDir()
	cfg := cfgFor(dir)
	cfg.HoldCut, cfg.RotateRecords = true, 1
	b := mustOpen(t, cfg)
	for _, id := range []string{"c1", "c2", "c3"} {
		b.Handle(attempt(id, t0))
		b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(time.Second), Answer: t0.Add(time.Second), CallID: id})
	}
	b.step(t0.Add(5*time.Second), false)
	b.sp.close() // the process dies

	b = mustOpen(t, cfg)
	b.step(t0.Add(time.Hour), false)
	if _, rows := readCSV(t, dir); len(rows) != 0 {
		t.Fatalf("%d records before the pair settled the held calls", len(rows))
	}
	// c1 carried on by the other node (by record id), c3 live here again.
	var asked []string
	b.Settle(func(callID, recordID string, answered bool) bool {
		asked = append(asked, callID+"="+recordID)
		return recordID == "ss1-0"
	}, func(callID string) bool { return callID == "c3" })
	b.Settle(func(string, string, bool) bool { return false }, nil)
	b.step(t0.Add(time.Hour+time.Second), false)
	_, rows := readCSV(t, dir)
	if len(rows) != 1 || col(rows[0], "caller_call_id") != "c2" || col(rows[0], "end_reason") != cdr.EndRestart {
		t.Fatalf("records %v (asked %v)", rows, asked)
	}
	// c3 goes on to its release, with its record.
	b.Handle(release("c3", t0.Add(2*time.Hour), "BYE", 200, true))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx)
	_, rows = readCSV(t, dir)
	if len(rows) != 2 || col(rows[1], "record_id") != "ss1-2" || col(rows[1], "end_reason") != "normal" {
		t.Fatalf("records %v", rows)
	}
}

// A node of a pair restarted after a crash holds the records it released
// but had not yet put in a file (the last ones' deletions may never have
// reached the other node, which took those calls on) until it has
// settled them: those the other node wrote are dropped, with their
// Stops; the others are written. Settled once: a later restart asks
// nothing.
func TestReleasedSettled(t *testing.T) {
	dir := t.TempDir()
	cfg := cfgFor(dir)
	cfg.HoldCut, cfg.RotateRecords, cfg.Outboxes = true, 1, []string{"acct"}
	b := mustOpen(t, cfg)
	if got := b.ReleasedPending(); got != nil {
		t.Fatalf("pending on a new spool: %v", got)
	}
	for _, id := range []string{"r1", "r2"} {
		b.Handle(attempt(id, t0))
		b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(time.Second), Answer: t0.Add(time.Second), CallID: id})
	}
	b.step(t0.Add(2*time.Second), false)
	for _, id := range []string{"r1", "r2"} {
		b.Handle(release(id, t0.Add(9*time.Second), "BYE", 200, true)) // journalled only
	}
	b.sp.close() // the process dies

	b = mustOpen(t, cfg)
	if got := strings.Join(b.ReleasedPending(), " "); got != "r1 r2" {
		t.Fatalf("pending %q", got)
	}
	b.step(t0.Add(time.Hour), false)
	if _, rows := readCSV(t, dir); len(rows) != 0 {
		t.Fatalf("%d records in files before they were settled", len(rows))
	}
	b.DropReleased([]string{"r1", "r-unknown"})
	b.step(t0.Add(time.Hour+time.Second), false)
	if _, rows := readCSV(t, dir); len(rows) != 0 {
		t.Fatalf("%d records in files before the settling ended", len(rows))
	}
	b.SettleReleased()
	b.SettleReleased()             // settled: nothing more
	b.DropReleased([]string{"r2"}) // too late: it stands
	b.step(t0.Add(time.Hour+2*time.Second), false)
	_, rows := readCSV(t, dir)
	if len(rows) != 1 || col(rows[0], "caller_call_id") != "r2" {
		t.Fatalf("records %v", rows)
	}
	stops := map[string]int{}
	entries, err := b.Outbox("acct", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == OutboxStop {
			stops[e.Rec.CallID]++
		}
	}
	if stops["r1"] != 0 || stops["r2"] != 1 {
		t.Fatalf("stops %v", stops)
	}
	b.sp.close()
	b = mustOpen(t, cfg)
	if got := b.ReleasedPending(); got != nil {
		t.Fatalf("pending again after a restart: %v", got)
	}
}

// An unanswered call a crash cut on a node of a pair, whose caller's
// retransmitted INVITE set it up on the other node (the address moved),
// is written there only: dropped here when that node reports it. Others
// are still ended by restart once the caller can no longer retransmit.
func TestOrphanTakenElsewhere(t *testing.T) {
	dir := t.TempDir()
	cfg := cfgFor(dir)
	cfg.HoldCut, cfg.RotateRecords = true, 1
	b := mustOpen(t, cfg)
	for _, id := range []string{"o1", "o2"} {
		b.Handle(attempt(id, t0))
	}
	b.step(t0.Add(time.Second), false)
	b.sp.close() // the process dies

	b = mustOpen(t, cfg)
	b.TakenElsewhere("c-unknown") // not an orphan: nothing
	b.TakenElsewhere("o1")
	b.step(t0.Add(2*time.Second), false)
	b.step(t0.Add(2*time.Second+orphanWait), false)
	_, rows := readCSV(t, dir)
	if len(rows) != 1 || col(rows[0], "caller_call_id") != "o2" || col(rows[0], "end_reason") != cdr.EndRestart {
		t.Fatalf("records %v", rows)
	}
	b.TakenElsewhere("o2") // closed already: nothing more
	b.step(t0.Add(time.Hour), false)
	b.sp.close()
	b = mustOpen(t, cfg) // nothing left to recover either
	b.step(t0.Add(2*time.Hour), true)
	if _, rows := readCSV(t, dir); len(rows) != 1 {
		t.Fatalf("records after a restart %v", rows)
	}
}

// Handing files between the nodes of a pair: a node's own undelivered
// files first, in order, then those relayed to it; a relayed file must
// carry a CDR file's name and a matching sidecar.
func TestHandoverAndRelay(t *testing.T) {
	dirB := t.TempDir()
	cfg := cfgFor(dirB)
	cfg.Node, cfg.KeepUntilDelivered = "ss-b", true
	b := mustOpen(t, cfg)
	for i := range 4 {
		id := fmt.Sprint("c", i)
		b.Handle(attempt(id, t0))
		b.Handle(release(id, t0.Add(time.Second), "rejected", 404, false))
	}
	b.step(t0.Add(time.Minute), false) // two files of two records

	a := mustOpen(t, cfgFor(t.TempDir()))
	for n := 1; ; n++ {
		h, ok, err := b.NextHandover()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if n != 3 {
				t.Fatalf("%d files handed over, want 2", n-1)
			}
			break
		}
		if !strings.HasPrefix(h.Name, fmt.Sprintf("ss-b_%010d_", n)) {
			t.Fatalf("file %d is %s", n, h.Name)
		}
		if err := a.Relay(h.Name, h.Data, h.Sidecar); err != nil {
			t.Fatal(err)
		}
		if err := a.Relay(h.Name, h.Data, h.Sidecar); err != nil { // again: the same file, once
			t.Fatal(err)
		}
		if err := b.HandedOver(h); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := b.PushBacklog(); n != 0 {
		t.Fatalf("backlog %d after the handover", n)
	}
	names, err := a.relayed()
	if err != nil || len(names) != 2 {
		t.Fatalf("relayed %v %v", names, err)
	}
	// The node that holds them hands them on in its turn (a later split).
	h, ok, err := a.NextHandover()
	if err != nil || !ok || h.Name != names[0] {
		t.Fatalf("next %q %v %v", h.Name, ok, err)
	}
	if err := a.HandedOver(h); err != nil {
		t.Fatal(err)
	}
	if names, _ := a.relayed(); len(names) != 1 {
		t.Fatalf("relayed after one handed on: %v", names)
	}
	for _, bad := range []struct{ name, data, side string }{
		{"../etc/passwd", "x", ""},
		{"ss-b_0000000009_20261202T000000Z.csv", "x", "0000  ss-b_0000000009_20261202T000000Z.csv\n"},
		{"ss-b_1_x.csv", "x", ""},
	} {
		if err := a.Relay(bad.name, []byte(bad.data), []byte(bad.side)); err == nil {
			t.Errorf("relayed %q", bad.name)
		}
	}
}
