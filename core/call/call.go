package call

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/q850"
	"github.com/softswitch/softswitch/core/safe"
)

type state uint8

const (
	early state = iota
	confirmed
	ended
)

// Call joins the caller's dialog to the callee forks. Its fields are
// guarded by mu; what it sends is queued under mu and sent by unlock
// (outbox.go), never while mu is held.
type Call struct {
	m        *Manager
	mu       sync.Mutex
	out      []outMsg
	flushing bool

	st      state
	a       *leg
	forks   []*leg
	b       *leg         // the answering fork
	aInvite *sip.Request // dropped once the call is confirmed and acknowledged (compact)
	aTx     sip.ServerTransaction
	aSeq    uint32 // the caller's INVITE: its CSeq number and top Via branch,
	aBranch string // kept when the request itself is dropped

	a100rel, aTimer bool
	finalQueued     bool          // the caller's INVITE has its final response (queued, or sent by the stack)
	finalSent       chan struct{} // closed once that response is on its way
	finalOnce       sync.Once
	cancelReason    atomic.Pointer[string]
	ringing         bool
	bestFinal       *sip.Response
	hunting         bool   // the hunter is being asked for the next gateway (outside the lock)
	huntFrom        string // the gateway the hunt moves away from, and why
	huntStatus      int
	ackedA          bool

	calling, called, account string
	trunk, route             string    // for records: the trusted peer it came from, the route used
	ringAt                   time.Time // first ringing
	calledSent, callingSent  string    // after number analysis; from the answer on, what the answering fork sent
	hunt                     Hunter    // nil: parallel forks only
	maxFwd                   uint32    // Max-Forwards for B legs
	setup, answered          time.Time
	offer                    []byte // the caller's SDP: records read it off the call path

	noAnswer *time.Timer
	grant    time.Duration // the authoriser's limit from the answer on; 0: none
	class    string        // the authoriser's Class, for accounting
	// Credit control (authorize.go): the session that grants more time,
	// when the current grant ends, and when used time was last reported.
	// deadline, validUntil: zero when none.
	authz                          AuthzSession
	grantFinal, grantFailOpen      bool
	deadline, reported, validUntil time.Time
	limit                          *time.Timer

	// Replication (replicate.go): the state changed since last reported;
	// the call was reported answered (its end must be too).
	dirty, replicated bool

	seInterval   int
	seWatchdog   *time.Timer
	seRefresh    *time.Timer
	refreshSides []*leg
}

// HandleInvite takes an initial INVITE (no To tag). It returns once the
// caller's INVITE transaction has its final response, as sipgo requires.
func (m *Manager) HandleInvite(req *sip.Request, tx sip.ServerTransaction) {
	callID := req.CallID().Value()
	if l := m.tab.get(callID); l != nil {
		switch {
		case !l.isA:
			m.reply(tx, req, 482, "Loop Detected")
		case l.call.isRetransmission(req):
			// A copy of the INVITE we are handling or have answered: its
			// first transaction already ended (after the ACK, or never
			// matched under load). Our own 2xx retransmission covers it.
			tx.Terminate()
		default:
			m.reply(tx, req, 482, "Merged Request")
		}
		return
	}
	if m.closing.Load() {
		res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "5"))
		tx.Respond(res)
		return
	}

	caller := Caller{}
	if name, ok := m.auth.TrustedPeer(req.Source()); ok {
		caller.Trunk = name
		caller.Number = trunkCalling(req)
	} else {
		o, waited := m.authenticate(req, tx)
		if waited && tx.Err() != nil {
			return // cancelled while a server checked it: the stack answered 487
		}
		if !o.OK {
			res := sip.NewResponseFromRequest(req, o.Status, o.Reason, nil)
			m.auth.Challenge(res, o)
			tx.Respond(res)
			return
		}
		caller.Number = o.Sub.Number
		caller.Account = o.Sub.Account
	}
	if m.Hold != nil && m.Hold() {
		// Nothing could record the call: refused before it starts.
		res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "30"))
		res.AppendHeader(sip.NewHeader("Reason", q850.Reason(42, "call records cannot be written")))
		tx.Respond(res)
		return
	}
	called := req.Recipient.User
	if called == "" {
		m.refuseAttempt(tx, req, caller, called, Decision{Status: 404, Reason: "Not Found", Cause: 1})
		return
	}

	mf := uint32(m.cfg.MaxForwards)
	if h := req.MaxForwards(); h != nil {
		mf = h.Val()
	}
	if mf == 0 {
		m.refuseAttempt(tx, req, caller, called, Decision{Status: 483, Reason: "Too Many Hops", Cause: 25})
		return
	}

	var grant Grant
	if az := m.authz.Load(); az != nil && az.a != nil && caller.Trunk == "" {
		g, d, ok := m.authorize(req, tx, caller, called, az)
		if !ok {
			if d.Status != 0 {
				m.refuseAttempt(tx, req, caller, called, d)
			}
			return
		}
		grant = g
		if s := g.Session; s != nil {
			// Until a call holds it, a refusal below must still close
			// the session (the server's reservation).
			defer func() {
				if grant.Session != nil {
					safe.Go("call credit end", func() { s.End(0) })
				}
			}()
		}
	}

	dec := m.router.Route(called, caller)
	if dec.Redirect != "" {
		m.attemptEnded(req, caller, called, dec, 302, 23, "redirected")
		m.redirect(tx, req, dec.Redirect)
		return
	}
	var first Target
	if dec.Hunt != nil {
		// May resolve the gateway's name: no call (and no lock) exists yet.
		t, ok := dec.Hunt.Next()
		if !ok {
			// Every gateway is down, locked or at its limits.
			d := dec
			d.Status, d.Reason, d.Cause = 503, "Service Unavailable", 34
			m.refuseAttempt(tx, req, caller, called, d)
			return
		}
		first = t
	} else if len(dec.Targets) == 0 {
		if dec.Status == 0 {
			dec.Status, dec.Reason = 404, "Not Found"
		}
		m.refuseAttempt(tx, req, caller, called, dec)
		return
	}

	c := &Call{m: m, aInvite: req, aTx: tx, finalSent: make(chan struct{}),
		calling: caller.Number, called: called, account: caller.Account, setup: time.Now(),
		calledSent: dec.Called, callingSent: dec.Calling, hunt: dec.Hunt, maxFwd: mf - 1,
		trunk: caller.Trunk, route: dec.Route, grant: grant.Duration, class: grant.Class,
		authz: grant.Session, grantFinal: grant.Final, grantFailOpen: grant.FailOpen}
	grant.Session = nil // the call holds it now
	if grant.Validity > 0 {
		c.validUntil = time.Now().Add(grant.Validity)
	}
	if c.callingSent == "" {
		c.callingSent = c.calling
	}
	c.a100rel = hasOption(req, "Supported", "100rel") || hasOption(req, "Require", "100rel")
	c.aTimer = hasOption(req, "Supported", "timer") || hasOption(req, "Require", "timer")
	c.a = callerLeg(c, req)
	c.aSeq = req.CSeq().SeqNo
	if v := req.Via(); v != nil {
		c.aBranch, _ = v.Params.Get("branch")
	}
	c.offer = req.Body()
	if !m.tab.add(callID, c.a) {
		if first.Release != nil {
			first.Release()
		}
		c.endGrant() // c is not shared yet: no lock needed
		m.reply(tx, req, 482, "Merged Request")
		return
	}
	m.track()
	// The attempt is published before anything can end the call: its
	// release must never come first.
	m.bus.Publish(&events.Event{Kind: events.CallAttempt, CallID: callID, Calling: c.calling,
		Called: called, Account: c.account, Setup: c.setup, CalledSent: dec.Called, CallingSent: dec.Calling,
		Trunk: c.trunk, Route: c.route, AAAClass: c.class})
	cancelled := !tx.OnCancel(func(cancel *sip.Request) {
		// Runs under the transaction's own lock: record, then act on a
		// goroutine of our own (sending on tx from here would deadlock).
		reason := headerValue(cancel, "Reason")
		c.cancelReason.Store(&reason)
		go c.cancelByCaller()
	})

	var buf [4]*leg
	started := buf[:0]
	func() {
		c.lock()
		defer c.unlock()
		if dec.Hunt != nil {
			started = append(started, c.startFork(first))
		}
		for _, t := range dec.Targets {
			started = append(started, c.startFork(t))
		}
		c.noAnswer = time.AfterFunc(m.cfg.NoAnswerTimeout, c.noAnswerTimeout)
	}()
	// Sent with the lock released (a TCP dial may wait): the first fork
	// from here, the others each from a goroutine of its own.
	for i := len(started) - 1; i >= 0; i-- {
		if b := started[i]; b != nil && i > 0 {
			go c.launch(b)
		} else if b != nil {
			c.launch(b)
		}
	}
	if cancelled {
		c.cancelByCaller() // the CANCEL came before we could listen for it
	}

	select {
	case <-c.finalSent:
	case <-tx.Done():
		if errors.Is(tx.Err(), sip.ErrTransactionCanceled) {
			c.cancelByCaller()
			return
		}
		// The transaction died under us (transport error): end the call.
		c.terminate("caller transaction ended", events.SideSwitch, 500, 41)
	}
}

// callerLeg is the caller's dialog of c from its INVITE req (as received,
// or as the other node of the pair received it).
func callerLeg(c *Call, req *sip.Request) *leg {
	from := req.From()
	// Held for the call's life: nothing of the request's parsed text is
	// kept once the call is held (strings.Clone; the URIs are packed).
	a := &leg{call: c, isA: true, callID: req.CallID().Value(), remoteTag: strings.Clone(tagOf(from.Params)),
		localURI: uriOf(req.To().Address), localName: strings.Clone(req.To().DisplayName),
		remote: uriOf(from.Address), remoteNam: strings.Clone(from.DisplayName),
		dest: req.Source(), transport: strings.ToLower(req.Transport()), remoteSeq: req.CSeq().SeqNo}
	a.target = uriOf(from.Address)
	if ct := req.Contact(); ct != nil {
		a.target = uriOf(ct.Address)
	}
	return a
}

// abortFn releases a call whose goroutine failed: both legs are released
// with cause 41 and the release event says why.
func (c *Call) abortFn() { c.terminate("internal error", events.SideSwitch, 500, 41) }

// guard is deferred first thing by every goroutine and timer callback of
// a call: a panic there is logged and counted (core/safe) and releases the
// call. (Every lock of the call is released by a deferred unlock, so the
// release can take it.) Deferred directly, it costs no allocation.
func (c *Call) guard(where string) {
	if r := recover(); r != nil {
		safe.Report(where, r)
		c.abortFn()
	}
}

// isRetransmission tells whether req is a copy of the call's initial
// INVITE (same From tag, CSeq and top Via branch).
func (c *Call) isRetransmission(req *sip.Request) bool {
	c.lock()
	defer c.unlock()
	if req.CSeq().SeqNo != c.aSeq || tagOf(req.From().Params) != c.a.remoteTag {
		return false
	}
	v := req.Via()
	if v == nil {
		return false
	}
	b, _ := v.Params.Get("branch")
	return b == c.aBranch
}

// compact drops what a confirmed call no longer needs once the caller has
// acknowledged the 2xx: the parsed INVITEs, the caller's transaction and
// the failures seen while hunting. A held call keeps only its dialogs'
// state (R21: memory per held call). Caller holds c.mu.
func (c *Call) compact() {
	if c.st != confirmed {
		return
	}
	// The offer went to the records with the answer; the hunt is over.
	c.aInvite, c.aTx, c.bestFinal, c.offer, c.hunt = nil, nil, nil, nil, nil
	c.a.pack()
	if c.b != nil {
		c.b.pack()
		// Its transaction keeps what it needs for Timer M by itself.
		c.b.invite, c.b.inviteTx = nil, nil
	}
}

// refuseAttempt refuses an authenticated call attempt (refuse) and
// publishes it: every attempt that passed authentication has a record.
func (m *Manager) refuseAttempt(tx sip.ServerTransaction, req *sip.Request, caller Caller, called string, d Decision) {
	q := d.Cause
	if q == 0 {
		q = q850.CauseForStatus(d.Status)
	}
	m.attemptEnded(req, caller, called, d, d.Status, q, "rejected")
	m.refuse(tx, req, d)
}

// attemptEnded publishes an attempt the switch answered at once: its
// attempt and its release.
func (m *Manager) attemptEnded(req *sip.Request, caller Caller, called string, d Decision, status, q int, cause string) {
	now := time.Now()
	callID := req.CallID().Value()
	calledSent, callingSent := d.Called, d.Calling
	if callingSent == "" {
		callingSent = caller.Number
	}
	m.bus.Publish(&events.Event{Kind: events.CallAttempt, Time: now, CallID: callID, Calling: caller.Number,
		Called: called, Account: caller.Account, Setup: now, CalledSent: calledSent, CallingSent: callingSent,
		Trunk: caller.Trunk, Route: d.Route})
	ev := &events.Event{Kind: events.CallRelease, Time: now, CallID: callID, Calling: caller.Number, Called: called,
		Account: caller.Account, Status: status, Q850: q, Cause: cause, Side: events.SideSwitch,
		Setup: now, Trunk: caller.Trunk, Route: d.Route, CalledSent: calledSent, CallingSent: callingSent,
		Offer: req.Body()}
	m.bus.Publish(ev)
}

func (m *Manager) reply(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
}

// refuse answers a call the router refused, with the Q.850 cause in a
// Reason header (RFC 3326).
func (m *Manager) refuse(tx sip.ServerTransaction, req *sip.Request, d Decision) {
	reason := d.Reason
	if reason == "" {
		reason = reasonPhrase(d.Status)
	}
	res := sip.NewResponseFromRequest(req, d.Status, reason, nil)
	cause := d.Cause
	if cause == 0 {
		cause = q850.CauseForStatus(d.Status)
	}
	res.AppendHeader(sip.NewHeader("Reason", q850.Reason(cause, d.Text)))
	tx.Respond(res)
}

// redirect answers 302 with contact (redirect-server mode).
func (m *Manager) redirect(tx sip.ServerTransaction, req *sip.Request, contact string) {
	var u sip.Uri
	if err := sip.ParseUri(contact, &u); err != nil {
		m.log.Warn("redirect contact does not parse", "contact", contact, "err", err)
		m.refuse(tx, req, Decision{Status: 500, Reason: "Server Internal Error", Cause: 127})
		return
	}
	res := sip.NewResponseFromRequest(req, 302, "Moved Temporarily", nil)
	res.AppendHeader(&sip.ContactHeader{Address: u})
	tx.Respond(res)
}

// trunkCalling is the calling number a trusted peer sends: its
// P-Asserted-Identity user, else its From user.
func trunkCalling(req *sip.Request) string {
	if u, ok := assertedUser(headerValue(req, "P-Asserted-Identity")); ok {
		return u
	}
	return req.From().Address.User
}

// assertedUser reads the user part of a P-Asserted-Identity value
// (name-addr or addr-spec).
func assertedUser(v string) (string, bool) {
	if v == "" {
		return "", false
	}
	if l, r := strings.IndexByte(v, '<'), strings.IndexByte(v, '>'); l >= 0 && r > l {
		v = v[l+1 : r]
	}
	var u sip.Uri
	if sip.ParseUri(strings.TrimSpace(v), &u) == nil && u.User != "" {
		return u.User, true
	}
	return "", false
}

// setTag replaces the To tag (sipgo invents one for responses).
func setTag(to *sip.ToHeader, tag string) {
	to.Params.Remove("tag")
	to.Params.Add("tag", tag)
}

func tagOf(p sip.HeaderParams) string {
	t, _ := p.Get("tag")
	return t
}

// synthetic is a final response the switch makes up for fork b (its
// transaction timed out or failed, or the switch gave it up).
func synthetic(b *leg, code int, reason string) *sip.Response {
	return sip.NewResponseFromRequest(b.invite, code, reason, nil)
}

// better ranks final responses for the caller (RFC 3261 §16.7, simplified):
// 6xx first, then the lowest class, preferring anything to 408/503.
func better(x, y *sip.Response) bool {
	cx, cy := x.StatusCode/100, y.StatusCode/100
	if cx == 6 || cy == 6 {
		return cx == 6 && cy != 6
	}
	weak := func(s int) bool { return s == 408 || s == 503 || s == 480 }
	if weak(x.StatusCode) != weak(y.StatusCode) {
		return !weak(x.StatusCode)
	}
	return cx < cy
}

// learnDialog records the callee's tag and Contact from a response.
func (c *Call) learnDialog(b *leg, r *sip.Response) {
	if t := tagOf(r.To().Params); t != "" {
		b.remoteTag = strings.Clone(t)
	}
	if ct := r.Contact(); ct != nil {
		b.target.set(ct.Address)
	}
}

// responseToA builds the caller's copy of a callee response.
func (c *Call) responseToA(b *leg, r *sip.Response, req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, r.StatusCode, r.Reason, nil)
	if to := res.To(); to != nil && b != nil {
		setTag(to, b.aTag)
	}
	copyHeaders(responseCopy, r, res)
	if r.StatusCode < 300 {
		res.AppendHeader(c.m.contact())
	}
	if body := r.Body(); len(body) > 0 {
		res.SetBody(body)
	}
	return res
}

func (c *Call) relayProvisional(b *leg, r *sip.Response) {
	reliable := hasOption(r, "Require", "100rel")
	res := c.responseToA(b, r, c.aInvite)
	if reliable && !c.a100rel {
		// The caller cannot PRACK: we acknowledge the callee ourselves and
		// give the caller an ordinary provisional.
		res.RemoveHeader("RSeq")
		stripOption(res, "Require", "100rel")
		c.prackSelf(b, r)
	}
	c.respond(c.aTx, res)
	if !c.ringing && r.StatusCode >= 180 {
		c.ringing = true
		c.ringAt = time.Now()
		c.m.bus.Publish(&events.Event{Kind: events.CallRinging, CallID: c.a.callID, Calling: c.calling, Called: c.called})
	}
}

// prackSelf sends PRACK for a reliable provisional of fork b.
func (c *Call) prackSelf(b *leg, r *sip.Response) {
	rseq, ok := parseRSeq(headerValue(r, "RSeq"))
	if !ok {
		return
	}
	req := b.newRequest(sip.PRACK, c.m)
	req.AppendHeader(sip.NewHeader("RAck", rack(rseq, b.inviteSeq)))
	req.SetBody(nil)
	c.fireAndForget("call prack", req)
}

func stripOption(m *sip.Response, name, tag string) {
	hs := m.GetHeaders(name)
	if len(hs) == 0 {
		return
	}
	var keep []string
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			t = strings.TrimSpace(t)
			if t != "" && !strings.EqualFold(t, tag) {
				keep = append(keep, t)
			}
		}
	}
	for m.RemoveHeader(name) {
	}
	if len(keep) > 0 {
		m.AppendHeader(sip.NewHeader(name, strings.Join(keep, ", ")))
	}
}

// fireAndForget sends req once the lock is released, in order with what
// the call queued before it (a BYE relayed to the other leg leaves before
// the 200 to the BYE's sender), and drains its transaction on a goroutine
// of its own; the transaction's Timer F bounds it. Over UDP starting the
// transaction only queues a datagram; another transport may dial, so
// there the whole of it runs on the goroutine. Caller holds c.mu.
func (c *Call) fireAndForget(where string, req *sip.Request) {
	c.after(func() {
		if !isUDP(req) {
			go c.m.fireAndForget(where, req)
			return
		}
		tx, err := c.m.send(req)
		if err != nil {
			c.m.log.Debug("send failed", "method", req.Method, "err", err)
			return
		}
		go func() {
			defer safe.Recover(where)
			c.m.drain(tx)
		}()
	})
}

func (m *Manager) fireAndForget(where string, req *sip.Request) {
	defer safe.Recover(where)
	tx, err := m.send(req)
	if err != nil {
		m.log.Debug("send failed", "method", req.Method, "err", err)
		return
	}
	m.drain(tx)
}

// drain waits for the final response of a client transaction (responses
// that fail validation are dropped, not taken for it).
func (m *Manager) drain(tx sip.ClientTransaction) *sip.Response {
	for {
		select {
		case r := <-tx.Responses():
			if r != nil && !r.IsProvisional() && m.validResponse(r, "callee") {
				tx.Terminate()
				return r
			}
		case <-tx.Done():
			return nil
		}
	}
}

// answer: fork b answered first. Caller holds c.mu.
func (c *Call) answer(b *leg, r *sip.Response) {
	c.st = confirmed
	c.b = b
	c.answered = time.Now()
	c.stopTimer(&c.noAnswer)
	c.startGrant()
	for _, f := range c.forks {
		if f != b {
			c.abandon(f, `SIP;cause=200;text="Call completed elsewhere"`) // RFC 3326
		}
	}
	c.a.localTag = b.aTag
	// What the answering fork sent, for the records and the standby: read
	// here, while its URIs are parsed (a held call keeps them as text).
	c.calledSent, c.callingSent = b.remote.get().User, b.localURI.get().User
	res := c.responseToA(b, r, c.aInvite)
	c.negotiateTimer(r, res)
	// The 2xx goes out directly, not through the INVITE transaction: the
	// transaction then ends as soon as HandleInvite returns instead of
	// keeping the call's messages for Timer L (32 s; sipgo does not stop
	// that timer on Terminate). 2xx retransmission is ours anyway
	// (retransmit2xx), INVITE copies are recognised in HandleInvite, and
	// the ACK comes to HandleAck whatever the transaction's state.
	c.finalQueued = true
	c.write(res)
	c.after(c.finish)
	c.retransmit2xx(c.a, res, c.aSeq)
	c.touch()
	c.m.bus.Publish(&events.Event{Kind: events.CallAnswer, CallID: c.a.callID, Calling: c.calling,
		Called: c.called, Account: c.account, Setup: c.setup, Answer: c.answered, AnswerSDP: r.Body(),
		Offer: c.offer, Gateway: b.gateway, CalledSent: c.calledSent, CallingSent: c.callingSent,
		Trunk: c.trunk, Route: c.route, Attempts: len(c.forks), Ringing: c.ringAt, CalleeCallID: b.callID})
}

// lastFork is the answering fork, else the last one tried.
func (c *Call) lastFork() *leg {
	if c.b != nil {
		return c.b
	}
	if n := len(c.forks); n > 0 {
		return c.forks[n-1]
	}
	return nil
}

// finish tells HandleInvite that the caller's final response is out.
func (c *Call) finish() { c.finalOnce.Do(func() { close(c.finalSent) }) }

// finalToA queues res as the final response to the caller's INVITE, once.
// Caller holds c.mu.
func (c *Call) finalToA(res *sip.Response) {
	if c.finalQueued {
		return
	}
	c.finalQueued = true
	if c.aTx == nil {
		// A call taken over from the other node of the pair: its
		// transaction stayed there; the response goes out directly.
		c.write(res)
	} else {
		c.respond(c.aTx, res)
	}
	c.after(c.finish)
}

// failCall relays the chosen final failure to the caller and ends the call.
func (c *Call) failCall(r *sip.Response) {
	code, reason := r.StatusCode, r.Reason
	if code == 503 {
		// A callee's overload is not ours: RFC 3261 §16.7 says send 500.
		code, reason = 500, "Server Internal Error"
	}
	if code == 401 || code == 407 {
		code, reason = 403, "Forbidden"
	}
	res := c.responseToA(nil, r, c.aInvite)
	res.StatusCode, res.Reason = code, reason
	cause, ok := q850.Parse(headerValue(r, "Reason"))
	if !ok {
		// The callee gave no cause: the RFC 3398 one for what it said.
		cause = q850.CauseForStatus(r.StatusCode)
		res.RemoveHeader("Reason")
		res.AppendHeader(sip.NewHeader("Reason", q850.Reason(cause, "")))
	}
	c.finalToA(res)
	c.end("rejected", events.SideCallee, code, cause)
}

// cancelByCaller runs when the caller CANCELs; sipgo has already answered
// 200 to the CANCEL and 487 to the INVITE. The caller's Reason is passed
// on; without one the callee learns Q.850 cause 16 (normal clearing).
func (c *Call) cancelByCaller() {
	defer c.guard("call cancel")
	c.lock()
	defer c.unlock()
	if c.st != early {
		return
	}
	reason := ""
	if p := c.cancelReason.Load(); p != nil {
		reason = *p
	}
	cause, ok := q850.Parse(reason)
	if !ok {
		reason, cause = q850.Reason(16, ""), 16
	}
	for _, f := range c.forks {
		c.abandon(f, reason)
	}
	c.finalQueued = true // the stack sent the 487
	c.end("cancelled", events.SideCaller, 487, cause)
}

// noAnswerTimeout ends a call that rang too long.
func (c *Call) noAnswerTimeout() {
	defer c.guard("call no-answer timer")
	c.lock()
	defer c.unlock()
	if c.st != early {
		return
	}
	for _, f := range c.forks {
		c.abandon(f, q850.Reason(19, ""))
	}
	res := sip.NewResponseFromRequest(c.aInvite, 480, "No Answer", nil)
	c.tagForA(res)
	res.AppendHeader(sip.NewHeader("Reason", q850.Reason(19, "")))
	c.finalToA(res)
	c.end("no answer", events.SideSwitch, 480, 19)
}

// tagForA gives a response the switch makes up for the caller a To tag.
func (c *Call) tagForA(res *sip.Response) {
	if to := res.To(); to != nil {
		tag := randomID()
		if len(c.forks) > 0 {
			tag = c.forks[0].aTag
		}
		setTag(to, tag)
	}
}

// end releases everything of the call. Caller holds c.mu.
func (c *Call) end(cause string, side events.Side, status, q int) {
	if c.st == ended {
		return
	}
	wasAnswered := c.st == confirmed
	c.stop()
	m := c.m
	m.tab.del(c.a.callID)
	for _, f := range c.forks {
		c.stopTimer(&f.retrans)
		switch {
		case f.final == 0:
			// Still ringing or silent: cancelled now, its transaction
			// ended 64*T1 later if the callee never answers the CANCEL.
			c.abandon(f, q850.Reason(q, cause))
		case f.reap == nil:
			m.tab.del(f.callID)
		}
		c.releaseLeg(f)
	}
	m.untrack()
	if m.log.Enabled(context.Background(), slog.LevelDebug) { // its arguments cost, on every call
		m.log.Debug("call released", "call", c.a.callID, "cause", cause, "q850", q, "status", status, "side", side.String())
	}
	ev := &events.Event{Kind: events.CallRelease, CallID: c.a.callID, Calling: c.calling, Called: c.called,
		Account: c.account, Status: status, Q850: q, Cause: cause, Side: side, Answered: wasAnswered,
		Setup: c.setup, Answer: c.answered, Trunk: c.trunk, Route: c.route,
		Attempts: len(c.forks), Ringing: c.ringAt, CalledSent: c.calledSent, CallingSent: c.callingSent,
		Offer: c.offer}
	if l := c.lastFork(); l != nil {
		ev.Gateway, ev.CalleeCallID = l.gateway, l.callID
		if l != c.b { // the answering fork's were taken at the answer
			ev.CalledSent, ev.CallingSent = l.remote.get().User, l.localURI.get().User
		}
	}
	m.bus.Publish(ev)
}

// stop marks the call ended here and stops its own timers and its grant
// (end, handOver). Caller holds c.mu.
func (c *Call) stop() {
	c.st = ended
	for _, t := range []**time.Timer{&c.noAnswer, &c.limit, &c.seWatchdog, &c.seRefresh, &c.a.retrans} {
		c.stopTimer(t)
	}
	c.endGrant()
	// HandleInvite must never wait for ever, whoever ended the call.
	c.finalQueued = true
	c.after(c.finish)
	c.touch() // a replicated call's end is reported
}

func (c *Call) stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// terminate ends the call from the switch's side whatever its state:
// CANCEL and a final response while early, BYE on both legs when
// confirmed. q is the Q.850 cause the release carries.
func (c *Call) terminate(cause string, side events.Side, status, q int) {
	c.lock()
	defer c.unlock()
	switch c.st {
	case early:
		for _, f := range c.forks {
			c.abandon(f, q850.Reason(q, cause))
		}
		res := sip.NewResponseFromRequest(c.aInvite, status, reasonPhrase(status), nil)
		c.tagForA(res)
		res.AppendHeader(sip.NewHeader("Reason", q850.Reason(q, cause)))
		c.finalToA(res)
		c.end(cause, side, status, q)
	case confirmed:
		c.byeBoth(nil, q850.Reason(q, cause))
		c.end(cause, side, status, q)
	}
}

// byeBoth sends BYE to both legs except skip, with reason (a Reason header
// value, RFC 3326) when not empty. Caller holds c.mu.
func (c *Call) byeBoth(skip *leg, reason string) {
	for _, l := range []*leg{c.a, c.b} {
		if l == nil || l == skip {
			continue
		}
		if !l.isA && !l.ackSent {
			// Never acknowledged: ACK first so the callee's dialog is confirmed.
			c.sendAck2xx(l, nil)
		}
		bye := l.newRequest(sip.BYE, c.m)
		if reason != "" {
			bye.AppendHeader(sip.NewHeader("Reason", reason))
		}
		bye.SetBody(nil)
		c.fireAndForget("call bye", bye)
	}
}

// rack is the RAck header value for a reliable provisional (RFC 3262).
func rack(rseq, cseq uint32) string {
	return strconv.FormatUint(uint64(rseq), 10) + " " + strconv.FormatUint(uint64(cseq), 10) + " INVITE"
}

// authenticate checks the caller's digest. A remote check (a RADIUS
// server) waits on the network here, on this INVITE's own goroutine and
// under no lock; a CANCEL meanwhile ends the wait (waited and tx.Err()
// tell). Retransmissions of the INVITE are the transaction's.
func (m *Manager) authenticate(req *sip.Request, tx sip.ServerTransaction) (o auth.Outcome, waited bool) {
	if !m.auth.Remote(true) {
		return m.auth.Authenticate(req, true), false
	}
	ctx, cancel := context.WithTimeout(context.Background(), remoteAuthWait)
	defer cancel()
	safe.Go("INVITE auth wait", func() {
		select {
		case <-tx.Done():
			cancel()
		case <-ctx.Done():
		}
	})
	return m.auth.AuthenticateCtx(ctx, req, true), true
}

// remoteAuthWait bounds a remote digest check (failover included).
const remoteAuthWait = 15 * time.Second
