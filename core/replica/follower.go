package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/store"
)

// Applier takes the active node's state on the standby (core/registrar's
// Location).
type Applier interface {
	// ReplaceAll makes the bindings those of m (a snapshot): AORs not in
	// it are removed.
	ReplaceAll(m map[string][]store.Binding)
	// Replace sets one AOR's bindings (none: removed).
	Replace(aor string, bs []store.Binding)
}

// Follower is the standby's side: while following, it connects to the
// active node (Peer), takes its snapshot, then applies each change as it
// comes. A link silent for 5 s (the active pings each second) is dropped
// and dialled again every second.
type Follower struct {
	Peer  string // the other node's replication address, IP:port
	Key   []byte
	Node  string // this node's name (CDR node): the peer's must differ
	Apply Applier
	// State takes a named state of the active node (as its Hub.SetState
	// was given it); one refused here is logged and the link goes on.
	State func(name string, data []byte) error
	// Count takes a nonce count the active node accepted.
	Count func(nonce string, nc uint64, expires int64)
	// InStep, when set, runs each time a snapshot has been applied (on
	// the follower's goroutine; it must not block long).
	InStep func()
	// Noted, when set, hears the kind and key of each record the active
	// node reports (a change, or in a snapshot) once it is kept; on the
	// follower's goroutine, so it must be quick.
	Noted func(kind, key string)
	// Removed, when set, hears the kind and key of each record the
	// active node removes (a change, never a snapshot); on the
	// follower's goroutine, so it must be quick.
	Removed func(kind, key string)
	// Files, when set, are the closed CDR files this node hands to the
	// active node once in step (files.go).
	Files Files
	// Releases, when set, is settled with the active node once in step,
	// before the files (files.go).
	Releases Releases
	Log      *slog.Logger

	mu        sync.Mutex
	records   map[string]map[string][]byte // the active node's keyed records (Hub.Put), by kind
	following bool
	cancel    context.CancelFunc // the connection in progress
	wake      chan struct{}

	inStep  atomic.Bool  // a snapshot was applied on the connection in progress
	applied atomic.Int64 // changes applied since the start
	last    atomic.Int64 // when the last frame came (unix nanoseconds)
	// peerNode is the name of the node last followed (nil: none yet).
	peerNode atomic.Pointer[string]
}

// PeerNode is the name of the active node last followed ("" if none).
func (f *Follower) PeerNode() string {
	if p := f.peerNode.Load(); p != nil {
		return *p
	}
	return ""
}

// SetFollowing starts following (this node is a standby) or stops (it
// became the active one: what it has is what it serves).
func (f *Follower) SetFollowing(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.following = on
	if !on && f.cancel != nil {
		f.cancel()
	}
	if f.wake == nil {
		f.wake = make(chan struct{}, 1)
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Status says whether the standby is in step with the active node, how
// many changes it applied, and when it last heard from it.
func (f *Follower) Status() (inStep bool, applied int64, last time.Time) {
	if ns := f.last.Load(); ns > 0 {
		last = time.Unix(0, ns)
	}
	return f.inStep.Load(), f.applied.Load(), last
}

// Records takes the keyed records of kind the active node last sent
// (Hub.Put) and forgets them: at a takeover, what this node carries on.
func (f *Follower) Records(kind string) map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	recs := f.records[kind]
	delete(f.records, kind)
	return recs
}

// Take takes one record of kind (nil: none) and forgets it.
func (f *Follower) Take(kind, key string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	data := f.records[kind][key]
	delete(f.records[kind], key)
	return data
}

// Has reports whether the active node's records of kind include key.
func (f *Follower) Has(kind, key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.records[kind][key]
	return ok
}

// Get is the record of kind under key (nil: none), kept.
func (f *Follower) Get(kind, key string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.records[kind][key]
}

// Held is how many records of kind the follower keeps.
func (f *Follower) Held(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.records[kind])
}

// CountKeys is how many records of kind the follower keeps whose key
// match says yes to.
func (f *Follower) CountKeys(kind string, match func(key string) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return countKeys(f.records[kind], match)
}

// putRecord keeps one record (nil data: removed).
func (f *Follower) putRecord(kind, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.records == nil {
		f.records = map[string]map[string][]byte{}
	}
	recs := f.records[kind]
	if recs == nil {
		recs = map[string][]byte{}
		f.records[kind] = recs
	}
	if data == nil {
		delete(recs, key)
	} else {
		recs[key] = data
	}
}

// errClass groups errors that differ only in the local port (a peer that
// is no active node resets every try): each kind is logged once in a row.
func errClass(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "the peer closed the connection (it is not the active node, or is restarting)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	}
	return err.Error()
}

// Run follows until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	f.mu.Lock()
	if f.wake == nil {
		f.wake = make(chan struct{}, 1)
	}
	wake := f.wake
	f.mu.Unlock()
	var lastErr string
	for ctx.Err() == nil {
		f.mu.Lock()
		following := f.following
		var cctx context.Context
		var cancel context.CancelFunc
		if following {
			cctx, cancel = context.WithCancel(ctx)
			f.cancel = cancel
		}
		f.mu.Unlock()
		if following {
			err := f.follow(cctx)
			cancel() // each try's context ends with it (a peer down for days makes many)
			f.inStep.Store(false)
			if err != nil && errClass(err) != lastErr && ctx.Err() == nil {
				f.Log.Warn("replication: not following the active node", "peer", f.Peer, "err", err)
				lastErr = errClass(err)
			}
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (f *Follower) follow(ctx context.Context) error {
	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", f.Peer)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	ch, err := Handshake(conn, f.Key, true)
	if err != nil {
		return err
	}
	peer, err := ch.Hello(f.Node)
	if err != nil {
		return err
	}
	f.peerNode.Store(&peer)
	var snap map[string][]store.Binding
	var snapRecs map[string]map[string][]byte
	acks := make(chan message, 1)
	handing, answers := false, false
	hctx, stopHanding := context.WithCancel(ctx)
	defer stopHanding()
	for {
		ch.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := ch.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		f.last.Store(time.Now().UnixNano())
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("a message that does not decode: %w", err)
		}
		switch m.Kind {
		case kindSnapBegin:
			snap = map[string][]store.Binding{}
			snapRecs = map[string]map[string][]byte{}
		case kindRecords:
			if snapRecs == nil {
				return fmt.Errorf("snapshot records out of a snapshot")
			}
			if snapRecs[m.Name] == nil {
				snapRecs[m.Name] = map[string][]byte{}
			}
			for k, v := range m.Recs {
				snapRecs[m.Name][k] = v
			}
		case kindRecord:
			f.putRecord(m.Name, m.Key, m.Rec)
			f.applied.Add(1)
			if f.Noted != nil && m.Rec != nil {
				f.Noted(m.Name, m.Key)
			}
			if f.Removed != nil && m.Rec == nil {
				f.Removed(m.Name, m.Key)
			}
		case kindSnapPart:
			if snap == nil {
				return fmt.Errorf("a snapshot part out of a snapshot")
			}
			for aor, bs := range m.Part {
				snap[aor] = bs
			}
		case kindSnapEnd:
			if snap == nil {
				return fmt.Errorf("a snapshot end out of a snapshot")
			}
			f.Apply.ReplaceAll(snap)
			f.mu.Lock()
			f.records = snapRecs // whole: what the snapshot lacks is gone
			f.mu.Unlock()
			f.Log.Info("replication: in step with the active node", "peer", f.Peer, "aors", len(snap))
			if f.Noted != nil {
				for kind, recs := range snapRecs {
					for key := range recs {
						f.Noted(kind, key)
					}
				}
			}
			snap = nil
			f.inStep.Store(true)
			if f.InStep != nil {
				f.InStep()
			}
			if (f.Files != nil || f.Releases != nil) && !handing {
				handing = true
				safe.Go("replication file handover", func() { f.handOver(hctx, ch, acks, answers, func() { conn.Close() }) })
			}
		case kindBindings:
			f.Apply.Replace(m.AOR, m.Bindings)
			f.applied.Add(1)
		case kindState:
			if f.State != nil {
				if err := f.State(m.Name, m.Data); err != nil {
					f.Log.Error("replication: the active node's state is refused here; this node keeps its own", "state", m.Name, "err", err)
				}
			}
			f.applied.Add(1)
		case kindCount:
			if f.Count != nil {
				f.Count(m.Nonce, m.NC, m.Expires)
			}
		case kindFileOK, kindEndedOK:
			select {
			case acks <- m:
			default:
			}
		case kindFeatures:
			answers = slices.Contains(m.Keys, featureEnded)
		case kindPing:
		default:
			// A newer active's kind: skipped, so that a pair can be
			// upgraded one node at a time.
		}
	}
}
