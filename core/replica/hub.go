package replica

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/registrar"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/store"
)

// Hub is the active node's side. It stands between the registrar and the
// store (it is the registrar's BindingStore): every change is stored and
// also queued for the standby connected, after a snapshot of what it
// keeps (a copy of every AOR's bindings, so that a snapshot and the
// changes after it are cut at one point, under one lock).
type Hub struct {
	Inner registrar.BindingStore // where the bindings are kept on this node (core/store)
	Key   []byte
	Node  string // this node's name (CDR node): the peer's must differ
	Log   *slog.Logger
	// Counts, when set, gives the nonce counts for a snapshot (JSON, sent
	// as the state CountsState).
	Counts func() []byte
	// Relay, when set, keeps a closed CDR file the standby hands over
	// (files.go): durable when it returns nil.
	Relay func(name string, data, sidecar []byte) error
	// Joined, when set, hears the name of each standby that connected
	// (its key proven, before its snapshot): a node of the pair back.
	Joined func(node string)
	// Ended, when set, answers a restarted standby that released the
	// call of a Call-ID (and wrote its record) just before it stopped:
	// true when the standby's record stands (this node did not take the
	// call on, or had it in progress and has now ended it without a
	// record of its own); false when this node ended it itself, with
	// its record. Unset: true.
	Ended func(callID string) bool

	mu       sync.Mutex
	states   map[string][]byte            // named states, whole (SetState)
	records  map[string]map[string][]byte // keyed records by kind (Put)
	bindings map[string][]store.Binding
	sessions map[*session]struct{}
	active   bool
	// followed is len(sessions), read without h.mu: with no standby
	// connected a change is not encoded at all.
	followed atomic.Int32
	// lastSent is when a standby last took a frame (unix nanoseconds):
	// a node demoted soon after knows its standby has its calls.
	lastSent atomic.Int64

	slotsOnce sync.Once
	conns     chan struct{} // one per connection served (maxConns)
}

// CountsState names the nonce counts in a snapshot.
const CountsState = "nonce-counts"

// queueLen bounds the changes waiting for one standby: beyond it the
// standby is dropped and takes a new snapshot when it reconnects (memory
// stays bounded whatever the link does).
const queueLen = 1 << 16

type session struct {
	q      chan []byte
	broken chan struct{} // closed when the queue overflowed or the role changed
	once   sync.Once
	queued atomic.Uint64 // frames queued on q, ever
	sent   atomic.Uint64 // of them, those written to the connection
}

func (s *session) drop() { s.once.Do(func() { close(s.broken) }) }

// SaveBindings implements the registrar's BindingStore: stored, and
// queued for the standby. Called under the registrar's lock of aor, so
// the changes of one AOR are queued in order; it never blocks.
func (h *Hub) SaveBindings(aor string, bs []store.Binding) {
	h.Inner.SaveBindings(aor, bs)
	cp := append([]store.Binding(nil), bs...)
	// Encoded before the lock (the registrar's path waits on it); a
	// standby that connects meanwhile has the change in its snapshot.
	m := &message{Kind: kindBindings, AOR: aor, Bindings: cp}
	b := h.encodeIfFollowed(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bindings == nil {
		h.bindings = map[string][]store.Binding{}
	}
	if len(cp) == 0 {
		delete(h.bindings, aor)
	} else {
		h.bindings[aor] = cp
	}
	h.queueLocked(b, m)
}

// encodeIfFollowed is m encoded, or nil when no standby follows.
func (h *Hub) encodeIfFollowed(m *message) []byte {
	if h.followed.Load() == 0 {
		return nil
	}
	return encode(m)
}

// queueLocked queues m (encoded as b, or nil when no standby followed a
// moment ago) for every standby connected; one whose queue is full is
// dropped (it resynchronises). h.mu is held.
func (h *Hub) queueLocked(b []byte, m *message) {
	if len(h.sessions) == 0 {
		return
	}
	if b == nil { // a standby connected since: its snapshot was cut before this change
		b = encode(m)
	}
	for s := range h.sessions {
		s.queued.Add(1) // before it can be sent (Flush)
		select {
		case s.q <- b:
		default:
			s.drop()
		}
	}
}

// Flush waits until every change queued so far has been written to each
// standby's connection (in the kernel's hands: a crash of this process
// no longer loses it), at most d; a standby that takes longer is dropped
// (it takes a new snapshot when it reconnects). For an ordering that
// must hold across a crash: CDR records leaving the standby's copy
// before this node puts them in a file.
func (h *Hub) Flush(d time.Duration) {
	h.mu.Lock()
	type mark struct {
		s    *session
		upto uint64
	}
	var marks []mark
	for s := range h.sessions {
		marks = append(marks, mark{s, s.queued.Load()})
	}
	h.mu.Unlock()
	deadline := time.Now().Add(d)
	for _, m := range marks {
		for m.s.sent.Load() < m.upto {
			select {
			case <-m.s.broken:
			default:
				if time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
					continue
				}
				h.Log.Warn("replication: the standby did not take the changes in time: dropped (it takes a new snapshot)", "within", d)
				m.s.drop()
			}
			break
		}
	}
}

// SetState takes a named state now, whole, as JSON (the running
// configuration, the digest key), for the standby connected and the
// next snapshot. It never blocks.
func (h *Hub) SetState(name string, data []byte) {
	m := &message{Kind: kindState, Name: name, Data: data}
	b := h.encodeIfFollowed(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.states == nil {
		h.states = map[string][]byte{}
	}
	h.states[name] = append([]byte(nil), data...)
	h.queueLocked(b, m)
}

// Put takes one record of a kind now (the calls in progress, their open
// CDRs): data replaces the record under key, nil removes it. It never
// blocks; the data is the caller's to give away (not changed after).
func (h *Hub) Put(kind, key string, data []byte) {
	m := &message{Kind: kindRecord, Name: kind, Key: key, Rec: data}
	b := h.encodeIfFollowed(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.records == nil {
		h.records = map[string]map[string][]byte{}
	}
	recs := h.records[kind]
	if recs == nil {
		recs = map[string][]byte{}
		h.records[kind] = recs
	}
	if data == nil {
		delete(recs, key)
	} else {
		recs[key] = data
	}
	h.queueLocked(b, m)
}

// Clear forgets every record of kind here, without telling a standby
// (for a node no longer active: none follows it).
func (h *Hub) Clear(kind string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.records, kind)
}

// Has reports whether the hub keeps a record of kind under key.
func (h *Hub) Has(kind, key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.records[kind][key]
	return ok
}

// Records is how many records of kind the hub keeps.
func (h *Hub) Records(kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.records[kind])
}

// CountKeys is how many records of kind the hub keeps whose key match
// says yes to.
func (h *Hub) CountKeys(kind string, match func(key string) bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return countKeys(h.records[kind], match)
}

func countKeys(recs map[string][]byte, match func(string) bool) int {
	n := 0
	for k := range recs {
		if match(k) {
			n++
		}
	}
	return n
}

// Count takes a nonce count accepted (core/digest's OnCount). It never
// blocks.
//
// With no standby following it returns at once: one that connects now
// takes the counts, this one included, after its cut.
func (h *Hub) Count(nonce string, nc uint64, expires int64) {
	m := &message{Kind: kindCount, Nonce: nonce, NC: nc, Expires: expires}
	b := h.encodeIfFollowed(m)
	if b == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.queueLocked(b, m)
}

// Bindings implements the registrar's BindingStore (at start): the
// stored bindings, which the hub keeps a copy of.
func (h *Hub) Bindings() ([]store.Binding, error) {
	all, err := h.Inner.Bindings()
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bindings = map[string][]store.Binding{}
	for _, b := range all {
		h.bindings[b.AOR] = append(h.bindings[b.AOR], b)
	}
	return all, nil
}

// SetActive lets standbys connect (this node became the active one) or
// drops them.
func (h *Hub) SetActive(on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.active = on
	if !on {
		// Gone at once, not when their goroutines notice: nothing queued
		// from now on (a handover's deletions above all) reaches the
		// node taking over.
		for s := range h.sessions {
			s.drop()
			delete(h.sessions, s)
		}
		h.followed.Store(0)
	}
}

// maxConns bounds the connections served at once.
const maxConns = 4

func (h *Hub) slots() chan struct{} {
	h.slotsOnce.Do(func() { h.conns = make(chan struct{}, maxConns) })
	return h.conns
}

// FollowedWithin reports whether a standby, in step, took a change or a
// ping from this node within d.
func (h *Hub) FollowedWithin(d time.Duration) bool {
	ns := h.lastSent.Load()
	return ns > 0 && time.Since(time.Unix(0, ns)) < d
}

// Standbys is how many standbys are connected now.
func (h *Hub) Standbys() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// Serve accepts standbys on ln until ctx ends.
func (h *Hub) Serve(ctx context.Context, ln net.Listener) {
	safe.Go("replication listener stop", func() { <-ctx.Done(); ln.Close() })
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		// A few connections at a time: a pair has one standby, and a
		// stranger's connections must not pile up.
		select {
		case h.slots() <- struct{}{}:
		default:
			conn.Close()
			continue
		}
		safe.Go("replication session", func() {
			defer func() { <-h.slots() }()
			h.serveConn(ctx, conn)
		}, func() { conn.Close() })
	}
}

func (h *Hub) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	h.mu.Lock()
	active := h.active
	h.mu.Unlock()
	if !active {
		return // a standby streams nothing: the peer tries again
	}
	ch, err := Handshake(conn, h.Key, false)
	if err != nil {
		h.Log.Warn("replication: a connection refused", "from", conn.RemoteAddr().String(), "err", err)
		return
	}
	peer, err := ch.Hello(h.Node)
	if err != nil {
		h.Log.Error("replication: a connection refused", "from", conn.RemoteAddr().String(), "err", err)
		return
	}
	if h.Joined != nil {
		h.Joined(peer)
	}
	// The cut: the copy and the queue under one lock, so the snapshot and
	// the changes after it miss nothing and repeat nothing.
	s := &session{q: make(chan []byte, queueLen), broken: make(chan struct{})}
	h.mu.Lock()
	if !h.active {
		h.mu.Unlock()
		return
	}
	snap := make(map[string][]store.Binding, len(h.bindings))
	for aor, bs := range h.bindings {
		snap[aor] = bs // never changed in place: replaced whole
	}
	if h.sessions == nil {
		h.sessions = map[*session]struct{}{}
	}
	h.sessions[s] = struct{}{}
	h.followed.Store(int32(len(h.sessions)))
	states := make(map[string][]byte, len(h.states))
	for k, v := range h.states {
		states[k] = v
	}
	records := make(map[string]map[string][]byte, len(h.records))
	for kind, recs := range h.records {
		records[kind] = maps.Clone(recs) // the values are never changed in place
	}
	h.mu.Unlock()
	// Counts are taken after the cut, out of the lock (their source locks
	// before the hub's): a count both in them and queued is applied
	// twice, which keeps the higher.
	if h.Counts != nil {
		states[CountsState] = h.Counts()
	}
	defer func() {
		h.mu.Lock()
		delete(h.sessions, s)
		h.followed.Store(int32(len(h.sessions)))
		h.mu.Unlock()
	}()
	h.Log.Info("replication: a standby connected; sending the snapshot", "from", conn.RemoteAddr().String(), "aors", len(snap))
	if err := sendSnapshot(ch, states, records, snap); err != nil {
		h.Log.Warn("replication: the standby went away during the snapshot", "err", err)
		return
	}
	safe.Go("replication file receive", func() { h.receiveFiles(ch, s) })
	ping := time.NewTicker(time.Second)
	defer ping.Stop()
	for {
		var b []byte
		queued := false
		select {
		case <-s.broken: // before anything still queued
			h.Log.Warn("replication: the standby is dropped (its queue is full, or this node is no longer active); it takes a new snapshot when it reconnects")
			return
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-s.broken:
			h.Log.Warn("replication: the standby is dropped (its queue is full, or this node is no longer active); it takes a new snapshot when it reconnects")
			return
		case b = <-s.q:
			queued = true
		case <-ping.C:
			b = encode(&message{Kind: kindPing})
		}
		ch.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ch.Send(b); err != nil {
			h.Log.Warn("replication: the standby went away", "err", err)
			return
		}
		h.lastSent.Store(time.Now().UnixNano())
		if queued {
			s.sent.Add(1)
		}
	}
}

// sendSnapshot sends snap in parts of at most partAORs AORs.
func sendSnapshot(ch *Channel, states map[string][]byte, records map[string]map[string][]byte, snap map[string][]store.Binding) error {
	const partAORs = 2000
	const partRecs = 500
	const partBytes = 3 << 20
	ch.SetWriteDeadline(time.Now().Add(time.Minute))
	if err := ch.Send(encode(&message{Kind: kindFeatures, Keys: []string{featureEnded}})); err != nil {
		return err
	}
	if err := ch.Send(encode(&message{Kind: kindSnapBegin})); err != nil {
		return err
	}
	for name, data := range states {
		if err := ch.Send(encode(&message{Kind: kindState, Name: name, Data: data})); err != nil {
			return err
		}
	}
	for kind, recs := range records {
		part := map[string][]byte{}
		size := 0
		for key, data := range recs {
			// A frame holds partRecs records, or partBytes of them (base64
			// in JSON: 4/3 of it, under MaxFrame; a CDR file's part is 4 MB).
			if len(part) > 0 && size+len(data) > partBytes {
				if err := ch.Send(encode(&message{Kind: kindRecords, Name: kind, Recs: part})); err != nil {
					return err
				}
				part, size = map[string][]byte{}, 0
			}
			part[key] = data
			size += len(key) + len(data)
			if len(part) == partRecs {
				size = 0
				if err := ch.Send(encode(&message{Kind: kindRecords, Name: kind, Recs: part})); err != nil {
					return err
				}
				part = map[string][]byte{}
			}
		}
		if len(part) > 0 {
			if err := ch.Send(encode(&message{Kind: kindRecords, Name: kind, Recs: part})); err != nil {
				return err
			}
		}
	}
	part := map[string][]store.Binding{}
	flush := func() error {
		if len(part) == 0 {
			return nil
		}
		err := ch.Send(encode(&message{Kind: kindSnapPart, Part: part}))
		part = map[string][]store.Binding{}
		return err
	}
	for aor, bs := range snap {
		part[aor] = bs
		if len(part) == partAORs {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return ch.Send(encode(&message{Kind: kindSnapEnd}))
}
