package call

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/q850"
	"github.com/softswitch/softswitch/core/safe"
)

// Replicator hears what the standby of a pair needs to carry the
// answered calls on (core/replica's Hub, docs/ha.md): each call's record
// when it is answered and whenever its dialogs change, and nil when it
// ends. It must never block: it is called in order for each call, after
// the call's lock is released.
type Replicator interface {
	PutCall(callID, calleeCallID string, rec []byte)
}

// SetRescue makes in-dialog requests for an unknown Call-ID ask f first
// (nil: never): on the node taking over, a request of a replicated call
// can arrive before the role change is seen, and f adopts the call then.
func (m *Manager) SetRescue(f func(callID string) bool) {
	if f == nil {
		m.rescue.Store(nil)
		return
	}
	m.rescue.Store(&f)
}

// SetReleasedThere makes a BYE for an unknown Call-ID ask f (nil: never)
// whether the pair's other node released that call just before this
// node took over: the node that died may have released it (its BYE on
// the other leg, its record written) without its 200 leaving, and the
// sender's retransmission gets here. It gets the 200 it would have had,
// not a 481 that some peers count as a failed release.
func (m *Manager) SetReleasedThere(f func(callID string) bool) {
	if f == nil {
		m.releasedThere.Store(nil)
		return
	}
	m.releasedThere.Store(&f)
}

// SetReplicator makes the manager report answered calls to r (nil: none).
func (m *Manager) SetReplicator(r Replicator) {
	if r == nil {
		m.repl.Store(nil)
		return
	}
	m.repl.Store(&r)
}

// Record is what a standby needs to carry an answered call on: both
// dialogs and the call's deadlines. It is JSON on the link.
type Record struct {
	A, B                             LegRecord
	Calling, Called, Account         string
	Trunk, Route                     string
	CalledSent, CallingSent, Gateway string
	Setup, Answered, Ringing         time.Time
	Deadline                         time.Time // the granted time ends: released then; zero: no limit
	Grant                            time.Duration
	SessionExpires                   int  // RFC 4028 interval in force; 0: none
	RefreshBoth                      bool // the switch refreshes both legs itself
	// Early, for a call not answered yet: what the node taking over
	// needs to refuse it cleanly (A, B and the deadlines are empty).
	Early *EarlyRecord `json:",omitempty"`
}

// EarlyRecord is a call being set up: the caller's INVITE and the forks'
// INVITEs (without bodies), so that the node taking over answers the
// caller and cancels the forks instead of leaving them half set up.
type EarlyRecord struct {
	Invite            string // the caller's INVITE as received
	Source, Transport string // where the caller's responses go
	Forks             []ForkRecord
}

// ForkRecord is one fork of an EarlyRecord.
type ForkRecord struct {
	Invite          string // as sent
	Dest, Transport string
	ATag            string // the To tag the caller saw for it
}

// LegRecord is one dialog of a Record.
type LegRecord struct {
	CallID, LocalTag, RemoteTag string
	LocalURI, LocalName         string
	Remote, RemoteName          string
	Target                      string // the peer's Contact
	Dest, Transport             string
	LocalSeq, RemoteSeq         uint32
	InviteSeq                   uint32 // a callee leg: its INVITE's CSeq (the ACK of its 2xx carries it)
}

// touch marks the call's replicated state changed: the next unlock
// reports it. Caller holds c.mu.
func (c *Call) touch() { c.dirty = true }

// replicate queues the call's record (or its end) for the replicator,
// behind what the call queued so far. Caller holds c.mu.
func (c *Call) replicate() {
	c.dirty = false
	p := c.m.repl.Load()
	if p == nil {
		return
	}
	r := *p
	id := c.a.callID
	switch {
	case c.st == early && c.aInvite != nil && len(c.forks) > 0:
		rec := c.earlyRecord()
		c.replicated = true
		c.after(func() { r.PutCall(id, "", rec) })
	case c.st == confirmed && c.b != nil:
		rec, bid := c.record(), c.b.callID
		c.replicated = true
		c.after(func() { r.PutCall(id, bid, rec) })
	case c.st == ended && c.replicated:
		c.replicated = false
		bid := ""
		if c.b != nil {
			bid = c.b.callID
		}
		c.after(func() { r.PutCall(id, bid, nil) })
	}
}

// record encodes the call for the standby. Caller holds c.mu.
func (c *Call) record() []byte {
	rec := Record{A: c.a.record(), B: c.b.record(), Calling: c.calling, Called: c.called, Account: c.account,
		Trunk: c.trunk, Route: c.route, CalledSent: c.calledSent, CallingSent: c.callingSent, Gateway: c.b.gateway,
		Setup: c.setup, Answered: c.answered, Ringing: c.ringAt, Deadline: c.deadline, Grant: c.grant,
		SessionExpires: c.seInterval, RefreshBoth: len(c.refreshSides) > 0}
	b, err := json.Marshal(&rec)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}

// earlyRecord encodes a call being set up. Caller holds c.mu.
func (c *Call) earlyRecord() []byte {
	e := &EarlyRecord{Invite: withoutBody(c.aInvite), Source: c.a.dest, Transport: c.a.transport}
	for _, f := range c.forks {
		if f.invite == nil {
			continue
		}
		e.Forks = append(e.Forks, ForkRecord{Invite: withoutBody(f.invite), Dest: f.dest, Transport: f.transport,
			ATag: f.aTag})
	}
	b, err := json.Marshal(&Record{Calling: c.calling, Called: c.called, Account: c.account, Trunk: c.trunk,
		Route: c.route, CalledSent: c.calledSent, CallingSent: c.callingSent, Setup: c.setup, Early: e})
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}

// withoutBody is req as text, its body left out.
func withoutBody(req *sip.Request) string {
	var b strings.Builder
	b.WriteString(req.StartLine())
	b.WriteString("\r\n")
	for _, h := range req.Headers() {
		if strings.EqualFold(h.Name(), "Content-Length") {
			continue
		}
		b.WriteString(h.Name())
		b.WriteString(": ")
		b.WriteString(h.Value())
		b.WriteString("\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

func (l *leg) record() LegRecord {
	return LegRecord{CallID: l.callID, LocalTag: l.localTag, RemoteTag: l.remoteTag,
		LocalURI: l.localURI.String(), LocalName: l.localName, Remote: l.remote.String(), RemoteName: l.remoteNam,
		Target: l.target.String(), Dest: l.dest, Transport: l.transport, LocalSeq: l.localSeq, RemoteSeq: l.remoteSeq,
		InviteSeq: l.inviteSeq}
}

// maxAdoptSeqStep is added to each leg's local CSeq at adoption: requests
// the old active sent in its last moments (not yet replicated) took some
// numbers, and a peer refuses a CSeq lower than one it has seen.
const maxAdoptSeqStep = 100

// BeingSetUp reports whether data is the record of a call being set up
// (one Adopt refuses), not of an answered one.
func BeingSetUp(data []byte) bool {
	var rec struct{ Early json.RawMessage }
	return json.Unmarshal(data, &rec) == nil && len(rec.Early) > 0 && string(rec.Early) != "null"
}

// Adopt takes on a call another node answered (this node took over from
// it): the call is confirmed, serves in-dialog requests and BYE from
// either side, and its granted time and session timer run on from the
// record. A deadline already past releases the call at once. A call whose
// legs used TCP gets new connections: requests go to the peer's Contact,
// not to a connection that was the old node's.
func (m *Manager) Adopt(data []byte) (callID string, err error) {
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return "", fmt.Errorf("call record: %w", err)
	}
	if rec.Early != nil {
		return m.refuseEarly(&rec)
	}
	c := &Call{m: m, st: confirmed, finalQueued: true, finalSent: make(chan struct{}), ackedA: true,
		calling: rec.Calling, called: rec.Called, account: rec.Account, trunk: rec.Trunk, route: rec.Route,
		calledSent: rec.CalledSent, callingSent: rec.CallingSent, setup: rec.Setup, answered: rec.Answered,
		ringAt: rec.Ringing, grant: rec.Grant, deadline: rec.Deadline, grantFinal: true, seInterval: rec.SessionExpires}
	c.finish()
	a, err := rec.A.leg(c, true)
	if err != nil {
		return "", err
	}
	c.a = a
	b, err := rec.B.leg(c, false)
	if err != nil {
		return "", err
	}
	b.gateway = rec.Gateway
	b.final = 200
	// The 2xx was acknowledged by the old node: a retransmission of it
	// gets the ACK again, and byeBoth owes none.
	b.ackSent = true
	c.b, c.forks = b, []*leg{b}
	if !m.tab.add(a.callID, a) {
		return "", fmt.Errorf("call %q is already here", a.callID)
	}
	if !m.tab.add(b.callID, b) {
		m.tab.del(a.callID)
		return "", fmt.Errorf("call %q (callee leg) is already here", b.callID)
	}
	m.track()
	c.lock()
	defer c.unlock()
	if rec.RefreshBoth {
		c.refreshSides = []*leg{a, b}
		c.seRefresh = time.AfterFunc(time.Duration(c.seInterval)*time.Second/2, c.refreshNow)
	}
	c.armWatchdog()
	if !c.deadline.IsZero() {
		if time.Until(c.deadline) <= 0 {
			c.m.log.Info("adopted call's granted time is used up: released", "call", a.callID)
			c.release("time limit", `Q.850;cause=16;text="granted time used up"`)
			return a.callID, nil
		}
		c.limit = time.AfterFunc(time.Until(c.deadline), c.timeLimit)
	}
	c.touch() // this node's own standby carries it on in turn
	return a.callID, nil
}

func (r LegRecord) leg(c *Call, isA bool) (*leg, error) {
	l := &leg{call: c, isA: isA, callID: r.CallID, localTag: r.LocalTag, remoteTag: r.RemoteTag, localName: r.LocalName,
		remoteNam: r.RemoteName, dest: r.Dest, transport: r.Transport, localSeq: r.LocalSeq + maxAdoptSeqStep, remoteSeq: r.RemoteSeq,
		inviteSeq: r.InviteSeq}
	if !isA {
		l.aTag = c.a.localTag
	}
	// An adopted call is held: its URIs are kept as text, checked here.
	var parsed [3]sip.Uri
	for i, u := range []struct {
		s   string
		dst *dialogURI
	}{{r.LocalURI, &l.localURI}, {r.Remote, &l.remote}, {r.Target, &l.target}} {
		if err := sip.ParseUri(u.s, &parsed[i]); err != nil {
			return nil, fmt.Errorf("call record: uri %q: %w", u.s, err)
		}
		u.dst.s = u.s
	}
	target := parsed[2]
	if l.callID == "" || l.transport == "" {
		return nil, fmt.Errorf("call record: a leg without Call-ID or transport")
	}
	if l.transport != "udp" {
		// The old node's connection is gone with it: dial the peer's
		// Contact (for a callee, where its INVITE went).
		if isA {
			port := target.Port
			if port == 0 {
				port = 5060
			}
			l.dest = net.JoinHostPort(target.Host, strconv.Itoa(port))
		}
	}
	return l, nil
}

// HandOver forgets every call (answered or being set up) without a word
// to its peers: this node
// stopped being the active one and the node that took over carries them
// on (it adopted them). Their records are not written here: a
// CallHandover event tells billing to let the open records go.
func (m *Manager) HandOver() int {
	n := 0
	for _, c := range m.tab.calls() {
		c.lock()
		if c.st != ended {
			c.handOver()
			n++
		}
		c.unlock()
	}
	return n
}

// ReleaseAll releases every call (BYE or CANCEL on both legs, a record
// each) with cause: this node lost the pair's address and nobody carries
// its calls on (the other node did not follow it: a split of the pair).
// New calls are still taken.
func (m *Manager) ReleaseAll(cause string) int {
	calls := m.tab.calls()
	for _, c := range calls {
		c.terminate(cause, events.SideSwitch, 503, 41)
	}
	return len(calls)
}

// EndedElsewhere ends the answered call of callID (its caller leg's)
// here without a record of its own: the other node of the pair released
// it, and wrote its record, in the moment before it stopped, so the copy
// this node took on is a ghost (or its callee never heard the BYE). Both
// legs get a BYE (one that has ended already answers 481). It reports
// whether it did; false: no such call is in progress here any more, so
// it ended here, with its record.
func (m *Manager) EndedElsewhere(callID string) bool {
	l := m.tab.get(callID)
	if l == nil || !l.isA {
		return false
	}
	c := l.call
	c.lock()
	defer c.unlock()
	if c.st != confirmed {
		return false // ended, or being refused (its release writes the record)
	}
	c.byeBoth(nil, q850.Reason(16, "released by the other node of the pair"))
	c.handOver()
	return true
}

// handOver ends the call here only. Caller holds c.mu.
func (c *Call) handOver() {
	// Its grant reports what was used (the new active node holds the
	// deadline), its record goes from this node's hub too, and a call
	// being set up lets its INVITE's handler return (the node taking over
	// answers the caller).
	c.stop()
	m := c.m
	m.tab.del(c.a.callID)
	for _, f := range c.forks {
		c.stopTimer(&f.retrans)
		c.stopForkTimers(f)
		m.tab.del(f.callID)
		c.releaseLeg(f)
	}
	m.untrack()
	m.bus.Publish(&events.Event{Kind: events.CallHandover, CallID: c.a.callID, Cause: "handed over"})
}

// refuseEarly takes on a call the other node was setting up, only to end
// it cleanly: the caller gets 503 (it may try again, now through this
// node) and each fork a CANCEL; a fork that answered anyway
// is acknowledged and hung up when its 2xx comes (the reap keeps it known
// for 64*T1). Its release is published like any other.
func (m *Manager) refuseEarly(rec *Record) (string, error) {
	e := rec.Early
	inv, err := parseRequest(e.Invite)
	if err != nil {
		return "", fmt.Errorf("call record: the caller's INVITE: %w", err)
	}
	inv.SetSource(e.Source)
	inv.SetTransport(strings.ToUpper(e.Transport))
	callID := inv.CallID().Value()
	c := &Call{m: m, st: early, aInvite: inv, finalSent: make(chan struct{}), calling: rec.Calling, called: rec.Called,
		account: rec.Account, trunk: rec.Trunk, route: rec.Route, calledSent: rec.CalledSent, callingSent: rec.CallingSent,
		setup: rec.Setup}
	c.a = callerLeg(c, inv)
	for _, f := range e.Forks {
		fi, err := parseRequest(f.Invite)
		if err != nil {
			return "", fmt.Errorf("call record: a fork's INVITE: %w", err)
		}
		b := &leg{call: c, callID: fi.CallID().Value(), localTag: tagOf(fi.From().Params), aTag: f.ATag,
			localURI: uriOf(fi.From().Address), remote: uriOf(fi.To().Address), target: uriOf(fi.Recipient), dest: f.Dest, transport: f.Transport,
			invite: fi, inviteSeq: fi.CSeq().SeqNo, localSeq: fi.CSeq().SeqNo,
			// Whether it answered provisionally is not known here: it is
			// cancelled all the same (a callee without the transaction
			// answers 481, which costs nothing).
			provisional: true}
		c.forks = append(c.forks, b)
	}
	if !m.tab.add(callID, c.a) {
		return "", fmt.Errorf("call %q is already here", callID)
	}
	for _, b := range c.forks {
		m.tab.add(b.callID, b)
	}
	m.track()
	m.log.Info("a call the other node was setting up is refused (503): it was not answered before the takeover", "call", callID)
	// Off the caller's goroutine: it may hold the adoption's lock, and a
	// response over TCP can wait on the network.
	safe.Go("call refused at takeover", func() { c.terminate("lost at takeover", events.SideSwitch, 503, 41) })
	return callID, nil
}

func parseRequest(s string) (*sip.Request, error) {
	msg, err := sip.ParseMessage([]byte(s))
	if err != nil {
		return nil, err
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil {
		return nil, fmt.Errorf("not a request with From, To, Call-ID, CSeq and Via")
	}
	return req, nil
}
