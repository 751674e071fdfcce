package billing

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// mirror is a standby's copy of what a node has not delivered.
type mirror struct {
	mu       sync.Mutex
	released map[string][]byte
	acct     map[string][]byte
	files    map[string][]byte
	flushes  int
}

func newMirror() *mirror {
	return &mirror{released: map[string][]byte{}, acct: map[string][]byte{}, files: map[string][]byte{}}
}

func (m *mirror) PutRecord(string, []byte) {}

func (m *mirror) PutReleased(id string, rec []byte) { m.put(m.released, id, rec) }

func (m *mirror) PutAccounting(key string, e []byte) { m.put(m.acct, key, e) }

func (m *mirror) PutFile(key string, part []byte) { m.put(m.files, key, part) }

func (m *mirror) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushes++
}

func (m *mirror) put(to map[string][]byte, k string, v []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v == nil {
		delete(to, k)
	} else {
		to[k] = v
	}
}

func (m *mirror) copies() (released, acct map[string][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.released), maps.Clone(m.acct)
}

// The active node's standby holds every released record not yet in a
// file and every accounting entry not yet delivered, and loses the
// records (flushed) before their file is closed. A node that takes over
// keeps them in escrow (durable across its restart), drops them when the
// old node returns, and writes them itself (the old node's ids, marked
// written for it, their accounting queued here) once the wait is over.
func TestEscrowOfThePeersRecords(t *testing.T) {
	cfg := cfgFor(t.TempDir())
	cfg.RotateRecords, cfg.Outboxes = 100, []string{"acct"}
	a := mustOpen(t, cfg)
	m := newMirror()
	a.SetReplicator(m)
	for _, id := range []string{"c1", "c2"} {
		a.Handle(attempt(id, t0))
		a.Handle(answer(id, t0.Add(time.Second)))
		a.Handle(release(id, t0.Add(5*time.Second), "BYE", 200, true))
	}
	a.step(t0.Add(6*time.Second), false)
	rel, acct := m.copies()
	if len(rel) != 2 || rel["ss1-0"] == nil || len(acct) != 4 {
		t.Fatalf("the standby holds %d records, %d accounting entries; want 2, 4 (%v)", len(rel), len(acct), acct)
	}
	es := entries(t, a)
	a.Delivered("acct", es[1].Seq) // c1's Start and Stop
	a.step(t0.Add(7*time.Second), false)
	if _, acct = m.copies(); len(acct) != 2 {
		t.Fatalf("after delivery the standby holds %d accounting entries, want 2", len(acct))
	}
	// A restart gives a new replicator everything again.
	crash(a)
	a = mustOpen(t, cfg)
	m2 := newMirror()
	a.SetReplicator(m2)
	a.step(t0.Add(8*time.Second), false)
	rel, acct = m2.copies()
	if len(rel) != 2 || len(acct) != 2 {
		t.Fatalf("after a restart the standby is given %d records, %d entries; want 2, 2", len(rel), len(acct))
	}

	// The standby takes over: escrow, kept across its restart, written
	// not before the wait.
	bcfg := cfgFor(t.TempDir())
	bcfg.Node, bcfg.RotateRecords, bcfg.Outboxes = "ss2", 2, []string{"acct"}
	b := mustOpen(t, bcfg)
	b.SetEscrowRelease(true)
	if err := b.Escrow("ss1", rel, acct, nil); err != nil {
		t.Fatal(err)
	}
	b.step(time.Now(), false)
	crash(b)
	b = mustOpen(t, bcfg)
	b.SetEscrowRelease(true)
	b.step(time.Now().Add(30*time.Minute), false)
	if _, rows := readCSV(t, bcfg.Dir); len(rows) != 0 || len(entries(t, b)) != 0 {
		t.Fatalf("escrow written before its wait: %d rows", len(rows))
	}
	// The old node back: dropped here.
	b.DiscardEscrow("ss1")
	b.step(time.Now().Add(2*time.Hour), false)
	if _, rows := readCSV(t, bcfg.Dir); len(rows) != 0 || b.WroteForPeer("c1") {
		t.Fatalf("escrow written after its node came back: %d rows", len(rows))
	}
	// Not back: written here after the wait, once.
	if err := b.Escrow("ss1", rel, acct, nil); err != nil {
		t.Fatal(err)
	}
	b.SetEscrowRelease(false) // a standby writes none
	b.step(time.Now().Add(2*time.Hour), false)
	if _, rows := readCSV(t, bcfg.Dir); len(rows) != 0 {
		t.Fatal("a standby wrote the escrow")
	}
	b.SetEscrowRelease(true)
	b.step(time.Now().Add(2*time.Hour), false)
	b.step(time.Now().Add(3*time.Hour), false)
	_, rows := readCSV(t, bcfg.Dir)
	if len(rows) != 2 || col(rows[0], "record_id") != "ss1-0" || col(rows[1], "record_id") != "ss1-1" {
		t.Fatalf("records written from the escrow: %v", rows)
	}
	if !b.WroteForPeer("c1") || !b.WroteForPeer("c2") || b.WroteForPeer("c3") {
		t.Fatal("the records written for the other node are not marked")
	}
	if got := kinds(entries(t, b)); got != "start c2;stop c2;" {
		t.Fatalf("accounting queued from the escrow: %s", got)
	}
	b.step(time.Now().Add(4*time.Hour), false)
	if _, rows := readCSV(t, bcfg.Dir); len(rows) != 2 {
		t.Fatalf("escrow written twice: %d rows", len(rows))
	}
	for k := range acct {
		if !b.WroteForPeer(AccountKey("ss1", k)) {
			t.Fatalf("accounting entry %s sent from the escrow is not marked", k)
		}
	}

	// The old node returns (a pair: it holds what its stop cut) and asks:
	// it drops the accounting entries the other node sent.
	crash(a)
	cfg.HoldCut = true
	a = mustOpen(t, cfg)
	keys := a.PendingAccounting()
	if len(keys) != 2 || !IsAccountKey(keys[0]) {
		t.Fatalf("accounting entries to settle: %v", keys)
	}
	var sent []string
	for _, k := range keys {
		if b.WroteForPeer(k) {
			sent = append(sent, k)
		}
	}
	a.DropAccounting(sent)
	a.SettleReleased()
	a.step(t0.Add(9*time.Second), false)
	if es := entries(t, a); len(es) != 0 || a.PendingAccounting() != nil {
		t.Fatalf("after the settling the old node still holds %s", kinds(es))
	}

	// The old node closes its file: the records leave the standby's copy
	// (flushed) first.
	m3 := newMirror()
	a.SetReplicator(m3)
	a.step(t0.Add(10*time.Second), false)
	if rel, _ := m3.copies(); len(rel) != 2 {
		t.Fatalf("the standby holds %d records before the file closes", len(rel))
	}
	a.closeFile()
	if rel, _ := m3.copies(); len(rel) != 0 || m3.flushes == 0 {
		t.Fatalf("after the file closed the standby holds %d records (flushes %d)", len(rel), m3.flushes)
	}
}

// A restart names the calls released in the last moments before the
// stop (both legs), whose BYE may still be unanswered; not those the stop
// cut, nor those released long before.
func TestEndedBeforeStart(t *testing.T) {
	cfg := cfgFor(t.TempDir())
	cfg.RotateRecords = 100
	b := mustOpen(t, cfg)
	b.Handle(attempt("old", t0))
	b.Handle(answer("old", t0.Add(time.Second)))
	b.Handle(release("old", t0.Add(2*time.Second), "BYE", 200, true))
	b.step(t0.Add(2*time.Second), false)
	b.Handle(attempt("cut", t0))
	b.Handle(answer("cut", t0.Add(time.Second)))
	b.Handle(attempt("last", t0.Add(20*time.Second)))
	b.Handle(answer("last", t0.Add(21*time.Second)))
	b.step(t0.Add(25*time.Second), false)
	b.Handle(release("last", t0.Add(30*time.Second), "BYE", 200, true)) // journalled, then the crash
	crash(b)
	b = mustOpen(t, cfg)
	got := b.EndedBeforeStart()
	if !got["last"] || !got["b-last"] || got["old"] || got["cut"] || len(got) != 2 {
		t.Fatalf("ended before the start: %v", got)
	}
}

// A closed file not yet pushed goes to the standby whole (in parts), and
// out of its copy once delivered; the node that took over pushes it from
// its escrow under its own name, and acknowledges it without a second
// push when the old node, back, hands it over.
func TestEscrowOfThePeersFiles(t *testing.T) {
	cfg := cfgFor(t.TempDir())
	cfg.KeepUntilDelivered = true
	a := mustOpen(t, cfg)
	m := newMirror()
	a.SetReplicator(m)
	for _, id := range []string{"c1", "c2", "c3"} {
		a.Handle(attempt(id, t0))
		a.Handle(release(id, t0.Add(time.Second), "CANCEL", 487, false))
	}
	a.step(t0.Add(2*time.Second), false)
	a.step(t0.Add(3*time.Second), false)
	names, _ := readCSV(t, cfg.Dir)
	m.mu.Lock()
	files := JoinFileParts(maps.Clone(m.files))
	m.mu.Unlock()
	if len(names) != 1 || len(files) != 1 || files[names[0]] == nil {
		t.Fatalf("closed %v, the standby holds %v", names, files)
	}
	data, _ := os.ReadFile(filepath.Join(cfg.Dir, names[0]))
	if !bytes.Equal(files[names[0]], data) {
		t.Fatal("the standby's copy differs from the file")
	}

	bcfg := cfgFor(t.TempDir())
	bcfg.Node = "ss2"
	b := mustOpen(t, bcfg)
	b.SetPeerWait(time.Millisecond)
	b.SetEscrowRelease(true)
	if err := b.Escrow("ss1", nil, nil, files); err != nil {
		t.Fatal(err)
	}
	b.step(time.Now().Add(time.Second), false)
	relayed := filepath.Join(bcfg.Dir, relayDir, names[0])
	if got, err := os.ReadFile(relayed); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the old node's file is not kept for the push: %v", err)
	}
	os.Remove(relayed) // pushed
	os.Remove(relayed + ".sha256")
	if err := b.Relay(names[0], data, sidecarOf(names[0], data)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(relayed); err == nil {
		t.Fatal("a file pushed from the escrow, handed over by its node, is pushed again")
	}

	// Delivered at the old node: out of the standby's copy.
	seq, name, ok, _ := a.nextUndelivered()
	if !ok || name != names[0] {
		t.Fatalf("undelivered %q", name)
	}
	if err := a.HandedOver(Handover{Name: name, seq: seq}); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.files) != 0 {
		t.Fatalf("a delivered file stays in the standby's copy: %d parts", len(m.files))
	}
}

// Parts join into whole files only.
func TestJoinFileParts(t *testing.T) {
	got := JoinFileParts(map[string][]byte{
		"f1/0/3": []byte("ab"), "f1/2/3": []byte("ef"), "f1/1/3": []byte("cd"),
		"f2/0/2": []byte("x"), // its second part missing
		"bad":    []byte("?"), "f3/5/2": []byte("?"),
	})
	if len(got) != 1 || string(got["f1"]) != "abcdef" {
		t.Fatalf("joined %q", got)
	}
}
