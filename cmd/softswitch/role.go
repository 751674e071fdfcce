package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/appliance/ha"
	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/call"
	"github.com/softswitch/softswitch/core/digest"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/failpoint"
	"github.com/softswitch/softswitch/core/replica"
	"github.com/softswitch/softswitch/core/running"
	"github.com/softswitch/softswitch/core/store"
	"github.com/softswitch/softswitch/interwork/gateway"
	"github.com/softswitch/softswitch/interwork/trunkreg"
	"github.com/softswitch/softswitch/oam/control"
)

// Outward is what only the active node of a pair does, because it speaks
// to the outside under the pair's name (docs/ha.md): gateway probing,
// trunk registrations, the CDR push and accounting. A standby sends none
// of it, so that no peer sees two switches; a node alone is active.
type outward struct {
	prober *gateway.Prober
	regs   *regGate
	push   *pushGate
	aaa    *aaaGate
	// The pair's own link (nil without replication): the active node
	// streams its state, the standby follows it.
	repl *replication
}

// setActive turns the outward parts on (the node became the active one)
// or off.
func (o outward) setActive(on bool) {
	o.prober.SetEnabled(on)
	o.regs.SetActive(on)
	if o.push != nil {
		o.push.SetActive(on)
	}
	o.aaa.SetActive(on)
	if o.repl != nil {
		o.repl.setActive(on)
	}
}

// replication is the pair's link (core/replica): its two ends on this
// node, and the running configuration that follows the role.
type replication struct {
	hub       *replica.Hub
	follower  *replica.Follower
	running   *running.Running // refuses commits while this node follows
	calls     *call.Manager
	bill      *billing.Billing // nil: no CDRs
	log       *slog.Logger
	wasActive bool       // the last setActive's (role changes come from one goroutine)
	adopting  sync.Mutex // one adoption at a time (promotion, rescue)
	// adopt runs: a request for an unknown Call-ID waits for it (rescue).
	inAdoption atomic.Bool
	rescued    int          // calls rescue took on since the last promotion (guarded by adopting)
	promoted   atomic.Int64 // when this node last became active (unix nanoseconds)
	active     atomic.Bool  // this node is the active one (attempted)
	// Calls ended here because the other node had released them before
	// it stopped (ended; guarded by adopting).
	endedThere map[string]bool
	vip        netip.Addr // the pair's virtual address
	// The calls the active node ended most recently (removed, the last
	// endsKept of them, both legs' Call-IDs): when it dies, one of them
	// may have been released there without its BYE's 200 leaving.
	endsMu   sync.Mutex
	ends     map[string]int64 // Call-ID -> when its end came (unix nanoseconds)
	endOrder []string         // ends' keys, oldest first from endHead
	endHead  int
	// holdsAddress's cache.
	vipChecked atomic.Int64
	vipHere    atomic.Bool
}

// Kinds of keyed records on the replication link: the answered calls
// (core/call's Record) and their open CDRs (billing's record), each by
// the caller leg's Call-ID.
const (
	recordCall    = "call"
	recordCallee  = "callee" // a call's callee leg Call-ID -> its caller leg's
	recordCDR     = "cdr"
	recordAdopted = "adopted" // Call-IDs of calls this node took on from the other (value: adoptedTaken or adoptedRefused)
	recordRecent  = "recent"  // Call-IDs of calls set up here soon after this node became active
	// What the active node has not delivered (billing/escrow.go): its
	// released records not yet in a file, by record id, and its
	// accounting outbox entries, by "OUTBOX/SEQ".
	recordReleased = "released"
	recordAcct     = "acct"
	recordFile     = "cdrfile" // closed files not yet pushed, in parts ("NAME/PART/PARTS")
)

// PutCall implements call.Replicator.
func (r *replication) PutCall(callID, calleeCallID string, rec []byte) {
	if rec == nil {
		if failpoint.Enabled && r.bill != nil && failpoint.Armed(r.bill.Dir(), "call-end-unstreamed") {
			// A crash with the call released (recorded, its BYEs and the
			// 200 sent) and its end never streamed: the standby takes a
			// ghost on.
			time.AfterFunc(300*time.Millisecond, func() { failpoint.Kill("call-end-unstreamed") })
			return
		}
		r.hub.Put(recordCallee, calleeCallID, nil)
		r.hub.Put(recordCall, callID, nil)
		if failpoint.Enabled && r.bill != nil && failpoint.Armed(r.bill.Dir(), "bye-answer-unsent") {
			// A crash with the call released (recorded, its end streamed,
			// the BYE on the other leg sent) before the 200 to the BYE
			// that released it: this runs before HandleBye answers it.
			// "Streamed" is made sure of (Flush: in the kernel's hands):
			// a CI run under load once killed the node before the end
			// left it, and the standby took the call on.
			r.hub.Flush(5 * time.Second)
			time.Sleep(300 * time.Millisecond)
			failpoint.Kill("bye-answer-unsent")
		}
		return
	}
	r.hub.Put(recordCallee, calleeCallID, []byte(callID))
	r.hub.Put(recordCall, callID, rec)
}

// PutRecord implements billing.Replicator.
func (r *replication) PutRecord(callID string, rec []byte) { r.hub.Put(recordCDR, callID, rec) }

// PutReleased implements billing.Replicator.
func (r *replication) PutReleased(id string, rec []byte) { r.hub.Put(recordReleased, id, rec) }

// PutAccounting implements billing.Replicator.
func (r *replication) PutAccounting(key string, e []byte) { r.hub.Put(recordAcct, key, e) }

// PutFile implements billing.Replicator.
func (r *replication) PutFile(key string, part []byte) { r.hub.Put(recordFile, key, part) }

// Flush implements billing.Replicator: a file's records leave the
// standby's copy before the file exists (a standby slower than this is
// dropped, and takes a new snapshot).
func (r *replication) Flush() { r.hub.Flush(2 * time.Second) }

// peerBack: the pair's other node follows this one, or this one follows
// it: it has its own undelivered records, so this node's copy of them
// (the escrow) goes.
func (r *replication) peerBack(node string) {
	if r.bill != nil {
		r.bill.DiscardEscrow(node)
	}
}

// How a call was taken on (recordAdopted's value).
const (
	adoptedTaken   = "taken"   // an answered call, carried on
	adoptedRefused = "refused" // a call being set up, refused
)

// handOverWithin: a node demoted while a standby followed it this
// recently hands its calls over (the standby took them on); one nobody
// followed keeps them (nobody else has them).
const handOverWithin = 10 * time.Second

// setActive streams this node's state (it became the active one) or
// follows the other node's. Becoming active it takes on the calls the
// active node had answered; no longer active, it lets its own go to the
// node that took them on.
func (r *replication) setActive(on bool) {
	followed := r.hub.FollowedWithin(handOverWithin)
	// The link first: once no longer active, what this node does with
	// its calls below must not reach the node taking over (a deletion
	// there would lose the call). Becoming active, the link opens last:
	// a standby's snapshot then has every call taken on (and its
	// questions wait for nothing).
	if !on {
		r.hub.SetActive(false)
	}
	switch {
	case on || !r.wasActive:
	case followed:
		if n := r.calls.HandOver(); n > 0 {
			r.log.Info("replication: calls in progress handed over to the node that took over", "calls", n)
		}
	default:
		// Nobody followed this node (the pair was split): the other node
		// has none of its calls, and their requests now go there. They
		// are released here, each with its record (handed to the active
		// node once this one follows it).
		if n := r.calls.ReleaseAll("pair split: address lost"); n > 0 {
			r.log.Warn("replication: no standby followed this node: its calls in progress are released", "calls", n)
		}
	}
	if !on && r.wasActive {
		// Who took what on from the other node concerns only the node
		// that follows this one; kept, it could wrongly settle a later
		// restart of the other node.
		r.hub.Clear(recordAdopted)
		r.hub.Clear(recordRecent)
		r.adopting.Lock()
		r.endedThere = nil
		r.adopting.Unlock()
	}
	r.wasActive = on
	r.active.Store(on)
	if r.bill != nil {
		r.bill.SetEscrowRelease(on)
	}
	r.follower.SetFollowing(!on)
	r.running.SetStandby(!on)
	if on {
		r.adopt()
		r.hub.Clear(recordRecent)
		r.promoted.Store(time.Now().UnixNano())
		r.hub.SetActive(true)
	}
}

// recentFor is how long after becoming active this node reports the
// Call-ID of each new call (recordRecent): as long as a caller may
// retransmit an INVITE (64*T1) the old node had when it stopped, with a
// margin for that node's restart.
const recentFor = 40 * time.Second

// attempted hears each new call (its CallAttempt event): in the first
// moments after a takeover its Call-ID goes to the standby, which drops
// an unanswered call of that Call-ID its own stop cut (the caller's
// retransmission set it up here; this node records it).
func (r *replication) attempted(callID string) {
	p := r.promoted.Load()
	if p == 0 || time.Since(time.Unix(0, p)) > recentFor || !r.active.Load() {
		return
	}
	r.hub.Put(recordRecent, callID, []byte{'1'})
}

// adopt takes on the answered calls the active node last reported, with
// their open CDRs.
func (r *replication) adopt() {
	r.adopting.Lock()
	defer r.adopting.Unlock()
	r.inAdoption.Store(true)
	defer r.inAdoption.Store(false)
	recs := r.follower.Records(recordCDR)
	calls := r.follower.Records(recordCall)
	r.follower.Records(recordCallee)
	// What the old node had not delivered: kept (durable) until it
	// returns or its wait passes (billing/escrow.go). A call whose
	// record is among them was released there (its end never streamed):
	// not taken on, and a copy rescue took on is ended without a record.
	released := r.follower.Records(recordReleased)
	releasedCalls := map[string]bool{}
	for _, data := range released {
		var rec cdr.Record
		if rec.UnmarshalBinary(data) == nil && rec.CallID != "" {
			releasedCalls[rec.CallID] = true
		}
	}
	for id := range releasedCalls {
		if _, ok := calls[id]; ok {
			delete(calls, id)
			r.log.Info("replication: a call the old node had released (its record came, its end did not) is not taken on: no ghost", "call", id)
		}
		if r.calls.Known(id) && r.calls.EndedElsewhere(id) {
			r.log.Info("replication: a call taken on had been released by the old node (its record came, its end did not): ended here without a record", "call", id)
		}
	}
	if r.bill != nil {
		files := billing.JoinFileParts(r.follower.Records(recordFile))
		if err := r.bill.Escrow(r.follower.PeerNode(), released, r.follower.Records(recordAcct), files); err != nil {
			r.log.Error("replication: the old node's undelivered CDRs cannot be kept here: they wait on its disk", "err", err)
		}
	}
	var own map[string]bool // calls this node released (with their records) before its last stop
	if r.bill != nil {
		for _, id := range r.bill.ReleasedPending() {
			if own == nil {
				own = map[string]bool{}
			}
			own[id] = true
		}
	}
	n := 0
	for id, data := range calls {
		if !r.adoptOne(id, data, recs[id]) {
			continue
		}
		n++
		if own[id] && r.calls.EndedElsewhere(id) {
			// Released here before this node's last stop, its end lost:
			// the other node carried a ghost of it. Its record here
			// stands; the copy taken back ends without one.
			r.log.Info("replication: a call taken back had been released here before the last stop: ended, its record is this node's", "call", id)
		}
	}
	if len(calls) > 0 || r.rescued > 0 {
		r.log.Info("replication: took on the old active node's calls in progress", "calls", n+r.rescued,
			"at_their_first_request", r.rescued, "refused", len(calls)-n)
	}
	r.rescued = 0
	// Calls this node's own last stop cut, not settled by a snapshot:
	// nobody else has them now.
	if r.bill != nil {
		r.bill.Settle(func(string, string, bool) bool { return false }, r.calls.Known)
		r.bill.SettleReleased()
	}
}

// ended answers the restarted standby about a call it released (and
// recorded) just before it stopped, which this node took on: ended here
// now without a record (true: the standby's record stands), or already
// ended here with one (false). The same answer when asked again (the
// standby may stop before it has kept the first).
func (r *replication) ended(callID string) bool {
	// Held across the ending, so that a second ask (a connection that
	// broke and one that replaced it) cannot see the call gone and
	// answer "mine". The BYEs it sends never wait under it: UDP writes
	// do not block, TCP ones go on their own goroutine (call.fireAndForget).
	if billing.IsAccountKey(callID) { // an accounting entry: sent here from the escrow, or not
		return r.bill == nil || !r.bill.WroteForPeer(callID)
	}
	r.adopting.Lock()
	defer r.adopting.Unlock()
	if r.bill != nil && r.bill.WroteForPeer(callID) {
		return false // its record, kept here for the standby, written here when it did not return in time
	}
	if r.endedThere[callID] || !r.hub.Has(recordAdopted, callID) {
		return true // not taken on here: none but the standby recorded it
	}
	if !r.calls.EndedElsewhere(callID) {
		return false
	}
	if r.endedThere == nil {
		r.endedThere = map[string]bool{}
	}
	r.endedThere[callID] = true
	r.log.Info("replication: a call taken on had been released by the other node before it stopped: ended here, its record is the other node's", "call", callID)
	return true
}

// Pending implements replica.Releases: the calls this node released
// (and recorded) before its last stop whose records are not yet in a
// file. The active node answers for each (it knows what it took on,
// its adoption done before it lets a standby in).
func (r *replication) Pending() []string {
	// And its accounting entries: the active node may have sent them
	// from its copy (billing/escrow.go).
	return append(r.bill.ReleasedPending(), r.bill.PendingAccounting()...)
}

// Answer implements replica.Releases.
func (r *replication) Answer(ours map[string]bool, last bool) {
	var theirs, sent []string
	for id, mine := range ours {
		switch {
		case mine:
		case billing.IsAccountKey(id):
			sent = append(sent, id)
		default:
			theirs = append(theirs, id)
		}
	}
	r.bill.DropReleased(theirs)
	r.bill.DropAccounting(sent)
	if last {
		r.bill.SettleReleased()
	}
}

// adoptOne takes on one call (billing first, so that a release at once
// finds its record) and reports whether it did.
func (r *replication) adoptOne(id string, data, rec []byte) bool {
	if r.bill != nil {
		r.bill.Adopt(id, rec)
	}
	if _, err := r.calls.Adopt(data); err != nil {
		if r.calls.Known(id) {
			return false // already taken on (by rescue)
		}
		// Not taken on: the old node keeps its record of the call (it is
		// not marked adopted), so none is lost.
		r.log.Error("replication: a call of the old active node cannot be taken on", "call", id, "err", err)
		if r.bill != nil {
			r.bill.Handle(&events.Event{Kind: events.CallHandover, CallID: id})
		}
		return false
	}
	// The old node, when it returns, lets its own copy of the record go
	// instead of ending it "by restart" (settleHeld): all of it when this
	// node carries the answered call on; only an unanswered one when it
	// refused a call it knew as being set up (the old node may have seen
	// it answered in its last moment: its answered record stands).
	how := adoptedTaken
	if call.BeingSetUp(data) {
		how = adoptedRefused
	}
	r.hub.Put(recordAdopted, id, []byte(how))
	return true
}

// rescue takes on the call of a Call-ID (either leg) this node holds for
// its pair, when one of its requests comes before the role change is
// seen: the address is here, so the other node no longer serves it.
func (r *replication) rescue(callID string) bool {
	if !r.inAdoption.Load() && !r.follower.Has(recordCall, callID) && !r.follower.Has(recordCallee, callID) {
		return false // not a call of the pair: no system call for a flood of strangers
	}
	if !r.holdsAddress() {
		return false // the other node serves the address: not ours to take
	}
	r.adopting.Lock()
	defer r.adopting.Unlock()
	if r.calls.Known(callID) {
		// Taken on by the adoption this request waited for (before, it
		// got 481 and its call stayed here a ghost, without a record).
		return true
	}
	if a := r.follower.Take(recordCallee, callID); a != nil {
		callID = string(a)
	}
	data := r.follower.Take(recordCall, callID)
	if data == nil {
		return false
	}
	if !r.adoptOne(callID, data, r.follower.Take(recordCDR, callID)) {
		return r.calls.Known(callID)
	}
	r.rescued++
	r.log.Debug("replication: a call taken on at its first request, before the role change", "call", callID)
	return true
}

// holdsAddress reports whether the pair's virtual address is on this
// node now. Asked only for the Call-IDs of the pair's calls; looked up
// again after 100 ms when it was here, after 5 ms when it was not: an
// answer "not here" older than the address's arrival would refuse the
// first requests that come with it (a BYE answered 481, its call left
// a ghost here).
func (r *replication) holdsAddress() bool {
	now := time.Now().UnixNano()
	here, age := r.vipHere.Load(), now-r.vipChecked.Load()
	if here && age < int64(100*time.Millisecond) || !here && age < int64(5*time.Millisecond) {
		return here
	}
	r.vipChecked.Store(now)
	here = false
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(p.IP); ok && ip.Unmap() == r.vip {
					here = true
				}
			}
		}
	}
	r.vipHere.Store(here)
	return here
}

// cdrFiles gives the replication link billing's closed files to hand
// over (replica.Files).
type cdrFiles struct{ b *billing.Billing }

func (c cdrFiles) Next() (replica.File, bool, error) {
	h, ok, err := c.b.NextHandover()
	return replica.File{Name: h.Name, Data: h.Data, Sidecar: h.Sidecar, Ref: h}, ok, err
}

func (c cdrFiles) Done(f replica.File) error { return c.b.HandedOver(f.Ref.(billing.Handover)) }

// settleHeld runs when this node is in step with the active one: the
// answered calls its own last stop cut are dropped when the active node
// carries them (it has them in progress, or adopted them), and recorded
// "ended by restart" otherwise.
func (r *replication) settleHeld() {
	if r.bill == nil {
		return
	}
	r.bill.Settle(func(callID, recordID string, answered bool) bool {
		how := r.follower.Get(recordAdopted, callID)
		return r.follower.Has(recordCDR, callID) || how != nil && (!answered || string(how) != adoptedRefused)
	}, nil)
}

// noted hears each record the active node reports: a call there whose
// Call-ID this node's last stop cut unanswered was set up there by its
// caller's retransmitted INVITE, so its record is written there.
func (r *replication) noted(kind, key string) {
	if (kind == recordCall || kind == recordRecent) && r.bill != nil {
		r.bill.TakenElsewhere(key)
	}
}

// How long, and how many, of the active node's call ends the standby
// keeps (removed), and for how long after the link went quiet a BYE for
// one of them gets 200 (releasedThere): its sender retransmits for
// 64*T1 = 32 s.
const (
	endsKept       = 5 * time.Second
	endsMax        = 100000
	endsAnsweredIn = 40 * time.Second
)

// removed notes a call the active node ended (either leg's Call-ID).
func (r *replication) removed(kind, key string) {
	if kind != recordCall && kind != recordCallee {
		return
	}
	now := time.Now().UnixNano()
	r.endsMu.Lock()
	defer r.endsMu.Unlock()
	if r.ends == nil {
		r.ends = map[string]int64{}
	}
	if _, ok := r.ends[key]; !ok {
		r.endOrder = append(r.endOrder, key)
	}
	r.ends[key] = now
	for r.endHead < len(r.endOrder) && (len(r.endOrder)-r.endHead > endsMax || r.ends[r.endOrder[r.endHead]] < now-int64(endsKept)) {
		delete(r.ends, r.endOrder[r.endHead])
		r.endOrder[r.endHead] = ""
		r.endHead++
	}
	if r.endHead > len(r.endOrder)/2 { // copied once per half: amortised constant
		r.endOrder = append(r.endOrder[:0], r.endOrder[r.endHead:]...)
		r.endHead = 0
	}
}

// releasedThere implements the call manager's question (a BYE for a
// Call-ID it does not know): the other node ended that call in its last
// seconds before its link went quiet, and this node now holds the
// pair's address.
func (r *replication) releasedThere(callID string) bool {
	_, _, last := r.follower.Status()
	if last.IsZero() || time.Since(last) > endsAnsweredIn {
		return false
	}
	r.endsMu.Lock()
	at, ok := r.ends[callID]
	r.endsMu.Unlock()
	return ok && at >= last.Add(-3*time.Second).UnixNano() && r.holdsAddress()
}

// firstPart tells a closed file's first part (recordFile's keys,
// "NAME/PART/PARTS"): one per file.
func firstPart(key string) bool {
	_, rest, _ := strings.Cut(key, "/")
	return strings.HasPrefix(rest, "0/")
}

// releasedThere answers call control about a BYE for an unknown Call-ID:
// a call this node released in the last moments before its own stop (its
// record durable, the 200 perhaps never sent), for 40 s after the start,
// or one the pair's other node released so (repl, nil: none). Either is
// owed a 200, not a 481.
func releasedThere(bill *billing.Billing, repl *replication, started time.Time) func(string) bool {
	var ends map[string]bool
	if bill != nil {
		ends = bill.EndedBeforeStart()
	}
	if len(ends) == 0 && repl == nil {
		return nil
	}
	return func(callID string) bool {
		if ends[callID] && time.Since(started) < endsAnsweredIn {
			return true
		}
		return repl != nil && repl.releasedThere(callID)
	}
}

// replicationState is a snapshot of it.
type replicationState struct {
	Standbys int           // standbys following this node
	InStep   bool          // this node follows the active node and is in step
	Applied  int64         // changes applied from the active node
	Lag      time.Duration // since the active node was last heard (it pings each second); 0: never
	Revision int64         // of the running configuration
	Calls    int           // answered calls: reported to the standby (active), held for a takeover (standby)
	// Undelivered CDR records and accounting entries: reported to the
	// standby (active), held for a takeover (standby).
	Records, Accounting, Files int
}

func (r *replication) state() replicationState {
	inStep, applied, last := r.follower.Status()
	st := replicationState{Standbys: r.hub.Standbys(), InStep: inStep, Applied: applied, Revision: r.running.Current().Revision,
		Calls:   r.hub.Records(recordCall) + r.follower.Held(recordCall),
		Records: r.hub.Records(recordReleased) + r.follower.Held(recordReleased), Accounting: r.hub.Records(recordAcct) + r.follower.Held(recordAcct),
		Files: r.hub.CountKeys(recordFile, firstPart) + r.follower.CountKeys(recordFile, firstPart)}
	if !last.IsZero() {
		st.Lag = time.Since(last)
	}
	return st
}

// text is the state as `softswitch replication` and `show replication`
// print it.
func (r *replication) text() string {
	st := r.state()
	heard := "never"
	if st.Lag > 0 {
		heard = fmt.Sprintf("%.1fs ago", st.Lag.Seconds())
	}
	return fmt.Sprintf("standbys following this node  %d\nin step with the active node  %v\nchanges applied               %d\n"+
		"last heard from the active    %s\nrunning configuration         revision %d\ncalls in progress replicated  %d\n"+
		"undelivered CDRs replicated   %d\nundelivered CDR files         %d\nundelivered accounting        %d\n",
		st.Standbys, st.InStep, st.Applied, heard, st.Revision, st.Calls, st.Records, st.Files, st.Accounting)
}

// replicationCommand answers `softswitch replication` on the control
// socket.
func replicationCommand(ctl *control.Server, r *replication) {
	ctl.Handle("replication", "the state replication between the nodes of the pair", func([]string) (string, error) {
		return r.text(), nil
	})
}

// followRole follows the role keepalived's notify hook records (read
// five times a second): MASTER is active, any other role (none yet, BACKUP,
// FAULT, STOP) standby.
func followRole(ctx context.Context, dataDir string, o outward, bus *events.Bus, log *slog.Logger) {
	// Read often: a takeover takes on the calls only once the role is
	// seen, and their in-dialog requests meanwhile get 481.
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	last := "none"
	for {
		role := ha.ReadRole(dataDir)
		if role != last {
			active := role == ha.RoleMaster
			o.setActive(active)
			log.Info("HA role", "role", role, "active", active)
			last = role
			bus.Publish(&events.Event{Kind: events.HARole, State: role})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// regGate runs the trunk registrations on the active node only.
type regGate struct {
	ctx   context.Context
	regs  *trunkreg.Registrar
	specs func() []gateway.RegistrationSpec // the registrations in force

	mu     sync.Mutex
	active bool
}

// SetActive starts the registrations (the node became active) or stops
// them, leaving the bindings to expire: never an unregistration, which
// would remove the binding the other node of the pair, under the same
// Contact, has just made.
func (g *regGate) SetActive(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if on == g.active {
		return
	}
	g.active = on
	if on {
		g.regs.Start(g.ctx, g.specs())
	} else {
		g.regs.Stop()
	}
}

// Reload starts the registrations again with the specs in force (SIGHUP),
// on the active node.
func (g *regGate) Reload() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active {
		g.regs.Start(g.ctx, g.specs())
	}
}

// Names of states on the replication link (the digest key is
// stateDigestSecret, as in the store).
const (
	stateConfig       = "running-config"
	stateGatewaysDown = "gateways-down"       // the probed gateways the active node found down
	stateTrunkRegs    = "trunk-registrations" // the trunk registrations' dialogs (Call-ID, CSeq)
)

// gatewaysDown is the list of probed gateways down now, as the
// replication link carries it.
func gatewaysDown(gws []*gateway.Gateway) []byte {
	down := []string{}
	for _, g := range gws {
		if g.Down() {
			down = append(down, g.Name)
		}
	}
	return encodeJSON(down)
}

// adoptState takes a state the active node of the pair sent.
// What it adopts it also keeps for its own standby, should it become the
// active node (the running configuration does so through its OnSave).
func adoptState(name string, data []byte, conf *running.Running, a *digest.Authority, db *store.DB, hub *replica.Hub,
	prober *gateway.Prober, gateways func() []*gateway.Gateway, regs *trunkreg.Registrar) error {
	switch name {
	case stateConfig:
		var st running.State
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		return conf.Adopt(st)
	case stateDigestSecret:
		// The pair's nonces are good at either node: the standby takes the
		// active's key, durable before it is used.
		var s digest.Secret
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if s == a.Secret() {
			return nil
		}
		if err := db.PutState(stateDigestSecret, s); err != nil {
			return err
		}
		a.SetSecret(s)
		hub.SetState(stateDigestSecret, data)
		return nil
	case stateGatewaysDown:
		var down []string
		if err := json.Unmarshal(data, &down); err != nil {
			return err
		}
		set := map[string]bool{}
		for _, n := range down {
			set[n] = true
		}
		for _, g := range gateways() {
			if g.Spec().Probe {
				prober.Adopt(g, set[g.Name])
			}
		}
		hub.SetState(stateGatewaysDown, data)
		return nil
	case stateTrunkRegs:
		var ds map[string]trunkreg.Dialog
		if err := json.Unmarshal(data, &ds); err != nil {
			return err
		}
		regs.Resume(ds)
		hub.SetState(stateTrunkRegs, data)
		return nil
	case replica.CountsState:
		var ns digest.NonceState
		if err := json.Unmarshal(data, &ns); err != nil {
			return err
		}
		a.Restore(ns)
		return nil
	}
	return nil // a newer active's state: not known here
}

// switchover hands the service address to the standby on the operator's
// word (softswitch switchover, the command line's switchover): the active
// node fails keepalived's health check (and only it) until it is no
// longer MASTER, at most switchoverMax; keepalived then moves the address
// (nopreempt keeps it there when this node is healthy again).
type switchover struct {
	role func() string // the recorded keepalived role
	repl *replication  // nil: no replication

	mu    sync.Mutex
	until time.Time
}

// switchoverMax bounds a switchover that does not happen (the other node
// does not take the address).
const switchoverMax = 30 * time.Second

// Start begins a switchover: only on the active node, and only while a
// standby follows it (one not in step would take over without the state).
func (s *switchover) Start() error {
	if s.role() != ha.RoleMaster {
		return fmt.Errorf("this node is not the active one (role %q): run switchover on the active node", s.role())
	}
	if s.repl == nil || s.repl.hub.Standbys() == 0 {
		return errors.New("no standby follows this node: a switchover now would lose registrations and configuration; check `show replication` on both nodes")
	}
	s.mu.Lock()
	s.until = time.Now().Add(switchoverMax)
	s.mu.Unlock()
	return nil
}

// Yielding tells whether the health check must fail now.
func (s *switchover) Yielding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until.IsZero() {
		return false
	}
	if time.Now().After(s.until) || s.role() != ha.RoleMaster {
		s.until = time.Time{} // done (or given up): healthy again, and not preempting
		return false
	}
	return true
}

// switchoverCommand answers `softswitch switchover` on the control socket.
func switchoverCommand(ctl *control.Server, s *switchover) {
	ctl.Handle("switchover", "hand the service address to the standby (it must be following this node)", func([]string) (string, error) {
		if err := s.Start(); err != nil {
			return "", err
		}
		return fmt.Sprintf("switching over: keepalived's check fails here until the standby holds the address (at most %s)\n", switchoverMax), nil
	})
}
