package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/store"
)

var (
	key   = []byte("0123456789abcdef0123456789abcdef")
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
)

func pair(t *testing.T, dialerKey, listenerKey []byte) (*Channel, *Channel, error, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var (
		cb   *Channel
		errB error
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		b, err := ln.Accept()
		if err != nil {
			errB = err
			return
		}
		t.Cleanup(func() { b.Close() })
		cb, errB = Handshake(b, listenerKey, false)
		if errB != nil {
			b.Close()
		}
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ca, errA := Handshake(a, dialerKey, true)
	if errA != nil {
		a.Close()
	}
	wg.Wait()
	return ca, cb, errA, errB
}

// Both ends with the key talk; a frame replayed or altered does not open;
// a peer with another key is refused at the handshake.
func TestChannel(t *testing.T) {
	ca, cb, errA, errB := pair(t, key, key)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	go ca.Send([]byte("hello"))
	if got, err := cb.Recv(); err != nil || string(got) != "hello" {
		t.Fatalf("%q %v", got, err)
	}
	// A frame sealed for the other direction does not open here.
	go cb.Send([]byte("back"))
	if got, err := ca.Recv(); err != nil || string(got) != "back" {
		t.Fatalf("%q %v", got, err)
	}
	_, _, errA, errB = pair(t, key, []byte("another key of thirty-two bytes!!"))
	if errA == nil && errB == nil {
		t.Fatal("different keys agreed")
	}
	if _, err := Handshake(nil, []byte("short"), true); err == nil {
		t.Fatal("a short key taken")
	}
}

// flipper flips the last byte of each write.
type flipper struct{ net.Conn }

func (f flipper) Write(p []byte) (int, error) {
	q := append([]byte(nil), p...)
	q[len(q)-1] ^= 1
	return f.Conn.Write(q)
}

// A frame altered on the way fails to open; so does one repeated.
func TestChannelTampered(t *testing.T) {
	ca, cb, errA, errB := pair(t, key, key)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	ca.conn = flipper{ca.conn}
	go ca.Send([]byte("hello"))
	if _, err := cb.Recv(); err != ErrAuth {
		t.Fatalf("an altered frame: %v", err)
	}
	ca, cb, _, _ = pair(t, key, key)
	rec := &recorder{Conn: ca.conn}
	ca.conn = rec
	ca.Send([]byte("once"))
	if got, err := cb.Recv(); err != nil || string(got) != "once" {
		t.Fatal(got, err)
	}
	rec.Conn.Write(rec.last) // the same frame again
	if _, err := cb.Recv(); err != ErrAuth {
		t.Fatalf("a repeated frame: %v", err)
	}
}

// recorder keeps the last write.
type recorder struct {
	net.Conn
	last []byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.last = append([]byte(nil), p...)
	return r.Conn.Write(p)
}

type memStore struct {
	mu sync.Mutex
	m  map[string][]store.Binding
}

func (s *memStore) SaveBindings(aor string, bs []store.Binding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]store.Binding{}
	}
	s.m[aor] = bs
}
func (s *memStore) Bindings() ([]store.Binding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Binding
	for _, bs := range s.m {
		out = append(out, bs...)
	}
	return out, nil
}

type memApplier struct {
	mu sync.Mutex
	m  map[string][]store.Binding
}

func (a *memApplier) ReplaceAll(m map[string][]store.Binding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m = map[string][]store.Binding{}
	for k, v := range m {
		a.m[k] = v
	}
}
func (a *memApplier) Replace(aor string, bs []store.Binding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(bs) == 0 {
		delete(a.m, aor)
		return
	}
	a.m[aor] = bs
}
func (a *memApplier) get(aor string) []store.Binding {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[aor]
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A standby takes the active's snapshot (what was there before it
// connected, a removed AOR dropped), then each change; a hub that stops
// being active drops it; one with another key gets nothing.
func TestHubToFollower(t *testing.T) {
	inner := &memStore{m: map[string][]store.Binding{"1001": {{AOR: "1001", Contact: "sip:a"}}}}
	hub := &Hub{Inner: inner, Key: key, Node: "ss-a", Log: quiet}
	if _, err := hub.Bindings(); err != nil {
		t.Fatal(err)
	}
	ctx, addr := serve(t, hub)
	hub.SetState("config", []byte(`{"revision":1}`))
	var cfgMu sync.Mutex
	var configs []string

	app := &memApplier{m: map[string][]store.Binding{"9999": {{AOR: "9999"}}}}
	f := &Follower{Peer: addr, Key: key, Node: "ss-b", Apply: app, Log: quiet, State: func(name string, b []byte) error {
		cfgMu.Lock()
		defer cfgMu.Unlock()
		configs = append(configs, string(b))
		return nil
	}}
	lastConfig := func() string {
		cfgMu.Lock()
		defer cfgMu.Unlock()
		if len(configs) == 0 {
			return ""
		}
		return configs[len(configs)-1]
	}
	f.SetFollowing(true)
	go f.Run(ctx)
	waitUntil(t, "the snapshot", func() bool { in, _, _ := f.Status(); return in })
	if len(app.get("1001")) != 1 || app.get("9999") != nil {
		t.Fatalf("after the snapshot: %v", app.m)
	}
	hub.SaveBindings("1002", []store.Binding{{AOR: "1002", Contact: "sip:b"}})
	hub.SaveBindings("1001", nil)
	waitUntil(t, "the changes", func() bool { return len(app.get("1002")) == 1 && app.get("1001") == nil })
	if len(inner.m["1002"]) != 1 {
		t.Fatal("the hub did not store the change")
	}
	if got := lastConfig(); got != `{"revision":1}` {
		t.Fatalf("the snapshot's configuration: %q", got)
	}
	hub.SetState("config", []byte(`{"revision":2}`))
	waitUntil(t, "the configuration's change", func() bool { return lastConfig() == `{"revision":2}` })

	hub.SetActive(false)
	waitUntil(t, "the standby dropped", func() bool { in, _, _ := f.Status(); return !in && hub.Standbys() == 0 })
	hub.SaveBindings("1003", []store.Binding{{AOR: "1003"}})
	time.Sleep(300 * time.Millisecond)
	if app.get("1003") != nil {
		t.Fatal("a change reached the standby from a hub that is not active")
	}

	hub.SetActive(true)
	other := &memApplier{}
	g := &Follower{Peer: addr, Key: []byte("another key of thirty-two bytes!!"), Node: "ss-c", Apply: other, Log: quiet}
	g.SetFollowing(true)
	go g.Run(ctx)
	waitUntil(t, "the first standby back, with 1003", func() bool { return len(app.get("1003")) == 1 })
	// One named as the active node is refused too.
	same := &memApplier{}
	h := &Follower{Peer: addr, Key: key, Node: "ss-a", Apply: same, Log: quiet}
	h.SetFollowing(true)
	go h.Run(ctx)
	time.Sleep(500 * time.Millisecond)
	if in, _, _ := g.Status(); in || other.m != nil {
		t.Fatal("a standby with another key was given the state")
	}
	if in, _, _ := h.Status(); in || same.m != nil {
		t.Fatal("a standby with the active node's name was given the state")
	}
}

// Keyed records (the calls in progress): in the snapshot, then each
// change; a record removed is gone; Records hands them over once.
func TestRecordsFollow(t *testing.T) {
	hub := &Hub{Inner: &memStore{m: map[string][]store.Binding{}}, Key: key, Node: "ss-a", Log: quiet}
	ctx, addr := serve(t, hub)
	hub.Put("call", "c1", []byte("one"))
	hub.Put("call", "c2", []byte("two"))
	hub.Put("call", "c2", nil)
	if hub.FollowedWithin(time.Minute) {
		t.Fatal("followed before any standby came")
	}
	var notedMu sync.Mutex
	var noted []string
	f := &Follower{Peer: addr, Key: key, Node: "ss-b", Apply: &memApplier{}, Log: quiet, Noted: func(kind, key string) {
		notedMu.Lock()
		defer notedMu.Unlock()
		noted = append(noted, kind+"/"+key)
	}}
	f.SetFollowing(true)
	go f.Run(ctx)
	waitUntil(t, "the snapshot", func() bool { in, _, _ := f.Status(); return in })
	hub.Put("call", "c3", []byte("three"))
	hub.Put("cdr", "c3", []byte("rec"))
	hub.Put("call", "c1", nil)
	waitUntil(t, "the changes", func() bool { _, n, _ := f.Status(); return n >= 3 })
	if !hub.FollowedWithin(time.Minute) {
		t.Fatal("a standby in step does not count as following")
	}
	f.SetFollowing(false)
	calls := f.Records("call")
	if len(calls) != 1 || string(calls["c3"]) != "three" {
		t.Fatalf("calls %q", calls)
	}
	if cdrs := f.Records("cdr"); string(cdrs["c3"]) != "rec" {
		t.Fatalf("cdrs %q", cdrs)
	}
	if again := f.Records("call"); len(again) != 0 {
		t.Fatalf("records handed over twice: %q", again)
	}
	// Each record reported is noted (in the snapshot, then changes), a
	// removal is not.
	notedMu.Lock()
	defer notedMu.Unlock()
	if got := strings.Join(noted, " "); got != "call/c1 call/c3 cdr/c3" {
		t.Fatalf("noted %q", got)
	}
}

// memFiles is a standby's closed files, handed over in order.
type memFiles struct {
	mu    sync.Mutex
	files []File
	done  []string
}

func (m *memFiles) Next() (File, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.done) == len(m.files) {
		return File{}, false, nil
	}
	return m.files[len(m.done)], true, nil
}

func (m *memFiles) Done(f File) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = append(m.done, f.Name)
	return nil
}

func (m *memFiles) handed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.done)
}

// A standby hands its closed files to the active node, each counted done
// only once the active node kept it; one the active node refuses stays.
func TestFilesHandedOver(t *testing.T) {
	var mu sync.Mutex
	kept := map[string][]byte{}
	refuse := "bad_0000000003_20261202T000000Z.csv"
	hub := &Hub{Inner: &memStore{m: map[string][]store.Binding{}}, Key: key, Node: "ss-a", Log: quiet,
		Relay: func(name string, data, side []byte) error {
			if name == refuse {
				return errors.New("refused")
			}
			mu.Lock()
			defer mu.Unlock()
			kept[name] = append(append([]byte(nil), data...), side...)
			return nil
		}}
	ctx, addr := serve(t, hub)
	big := bytes.Repeat([]byte("0123456789abcdef"), (3*filePart)/16+7) // four parts
	files := &memFiles{files: []File{
		{Name: "ss-b_0000000001_20261202T000000Z.csv", Data: []byte("one\n"), Sidecar: []byte("s1")},
		{Name: "ss-b_0000000002_20261202T000000Z.csv", Data: big, Sidecar: []byte("s2")},
		{Name: refuse, Data: []byte("x"), Sidecar: []byte("s3")},
	}}
	f := &Follower{Peer: addr, Key: key, Node: "ss-b", Apply: &memApplier{}, Log: quiet, Files: files}
	f.SetFollowing(true)
	go f.Run(ctx)
	waitUntil(t, "two files handed over", func() bool { return files.handed() == 2 })
	time.Sleep(500 * time.Millisecond)
	if files.handed() != 2 {
		t.Fatalf("handed over %v: a file the active node refused counted done", files.done)
	}
	mu.Lock()
	defer mu.Unlock()
	if string(kept["ss-b_0000000001_20261202T000000Z.csv"]) != "one\ns1" || !bytes.Equal(kept["ss-b_0000000002_20261202T000000Z.csv"], append(big, "s2"...)) {
		t.Fatalf("kept %d files, not as sent", len(kept))
	}
}

type memReleases struct {
	mu      sync.Mutex
	pending []string
	answers []map[string]bool
	last    []bool
}

func (m *memReleases) Pending() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending
}

func (m *memReleases) Answer(ours map[string]bool, last bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.answers = append(m.answers, ours)
	m.last = append(m.last, last)
	if last {
		m.pending = nil
	}
}

func (m *memReleases) got() ([]map[string]bool, []bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.answers, m.last
}

// A restarted standby asks the active node about each call it released
// just before its stop, before it hands over any file, in batches, each
// answered as it comes.
func TestReleasesAsked(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	hub := &Hub{Inner: &memStore{m: map[string][]store.Binding{}}, Key: key, Node: "ss-a", Log: quiet,
		Ended: func(id string) bool {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, id)
			return id != "c2"
		},
		Relay: func(string, []byte, []byte) error { return nil }}
	ctx, addr := serve(t, hub)
	pending := []string{"c1", "c2"}
	for i := range endedBatch {
		pending = append(pending, fmt.Sprint("x", i))
	}
	rel := &memReleases{pending: pending}
	files := &memFiles{files: []File{{Name: "ss-b_0000000001_20261202T000000Z.csv", Data: []byte("one\n"), Sidecar: []byte("s1")}}}
	f := &Follower{Peer: addr, Key: key, Node: "ss-b", Apply: &memApplier{}, Log: quiet, Files: files, Releases: rel}
	f.SetFollowing(true)
	go f.Run(ctx)
	waitUntil(t, "the file handed over", func() bool { return files.handed() == 1 })
	got, last := rel.got()
	if len(got) != 2 || len(got[0]) != endedBatch || len(got[1]) != 2 || !got[0]["c1"] || got[0]["c2"] ||
		!got[1][fmt.Sprint("x", endedBatch-1)] || last[0] || !last[1] {
		t.Fatalf("%d answers (last %v)", len(got), last)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != len(pending) || asked[0] != "c1" || asked[1] != "c2" {
		t.Fatalf("asked %d: %v...", len(asked), asked[:min(len(asked), 3)])
	}
}

// serve runs hub, active, on a free loopback port until the test ends,
// and returns the test's context and that address.
func serve(t *testing.T, hub *Hub) (context.Context, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hub.Serve(ctx, ln)
	hub.SetActive(true)
	return ctx, ln.Addr().String()
}

// Flush returns once every change queued has been written to the
// standby's connection; with no standby at once. Joined hears the
// standby's name, PeerNode the active node's.
func TestFlushAndNames(t *testing.T) {
	hub := &Hub{Inner: &memStore{m: map[string][]store.Binding{}}, Key: key, Node: "ss-a", Log: quiet}
	var joinedMu sync.Mutex
	var joined []string
	hub.Joined = func(node string) {
		joinedMu.Lock()
		defer joinedMu.Unlock()
		joined = append(joined, node)
	}
	ctx, addr := serve(t, hub)
	start := time.Now()
	hub.Flush(time.Minute)
	if time.Since(start) > 5*time.Second {
		t.Fatal("a flush with no standby waited")
	}
	f := &Follower{Peer: addr, Key: key, Node: "ss-b", Apply: &memApplier{}, Log: quiet}
	f.SetFollowing(true)
	go f.Run(ctx)
	waitUntil(t, "the snapshot", func() bool { in, _, _ := f.Status(); return in })
	for i := range 2000 {
		hub.Put("released", fmt.Sprint(i), []byte("a record of some length, as a CDR would be"))
	}
	hub.Flush(time.Minute)
	var sent, queued uint64
	hub.mu.Lock()
	for s := range hub.sessions {
		sent, queued = s.sent.Load(), s.queued.Load()
	}
	hub.mu.Unlock()
	if queued < 2000 || sent < queued {
		t.Fatalf("after the flush %d of %d changes sent", sent, queued)
	}
	waitUntil(t, "the records at the standby", func() bool { return f.Held("released") == 2000 })
	joinedMu.Lock()
	defer joinedMu.Unlock()
	if len(joined) != 1 || joined[0] != "ss-b" || f.PeerNode() != "ss-a" {
		t.Fatalf("joined %v, the standby follows %q", joined, f.PeerNode())
	}
}

// Large records (a CDR file's 4 MB parts) reach a standby in the
// snapshot and as changes: a snapshot frame never goes over the bound.
func TestLargeRecordsFollow(t *testing.T) {
	hub := &Hub{Inner: &memStore{m: map[string][]store.Binding{}}, Key: key, Node: "ss-a", Log: quiet}
	ctx, addr := serve(t, hub)
	part := bytes.Repeat([]byte("x"), 4<<20)
	for i := range 3 {
		hub.Put("cdrfile", fmt.Sprintf("f/%d/4", i), part)
	}
	f := &Follower{Peer: addr, Key: key, Node: "ss-b", Apply: &memApplier{}, Log: quiet}
	f.SetFollowing(true)
	go f.Run(ctx)
	waitUntil(t, "the snapshot", func() bool { in, _, _ := f.Status(); return in })
	hub.Put("cdrfile", "f/3/4", part)
	waitUntil(t, "every part", func() bool { return f.Held("cdrfile") == 4 })
}
