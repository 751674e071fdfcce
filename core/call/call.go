package call

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/q850"
	"github.com/softswitch/softswitch/core/sdpinfo"
)

type state uint8

const (
	early state = iota
	confirmed
	ended
)

// Call joins the caller's dialog to the callee forks.
type Call struct {
	m  *Manager
	mu sync.Mutex

	st      state
	a       *leg
	forks   []*leg
	b       *leg // the answering fork
	aInvite *sip.Request
	aTx     sip.ServerTransaction

	a100rel, aTimer bool
	finalOnce       sync.Once
	finalSent       chan struct{}
	ringing         bool
	bestFinal       *sip.Response

	calling, called, account string
	calledSent, callingSent  string // after number analysis
	hunt                     Hunter // nil: parallel forks only
	maxFwd                   uint32 // Max-Forwards for B legs
	setup, answered          time.Time
	offer                    []byte
	media                    []string // media types and codecs (R5), from the SDP

	noAnswer  *time.Timer
	retrans2x *time.Timer // 2xx retransmission to the caller until ACK
	ackedA    bool

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
		o := m.auth.Authenticate(req, true)
		if !o.OK {
			res := sip.NewResponseFromRequest(req, o.Status, o.Reason, nil)
			m.auth.Challenge(res, o)
			tx.Respond(res)
			return
		}
		caller.Number = o.Sub.Number
		caller.Account = o.Sub.Account
	}
	called := req.Recipient.User
	if called == "" {
		m.refuse(tx, req, Decision{Status: 404, Reason: "Not Found", Cause: 1})
		return
	}

	mf := uint32(m.cfg.MaxForwards)
	if h := req.MaxForwards(); h != nil {
		mf = h.Val()
	}
	if mf == 0 {
		m.reply(tx, req, 483, "Too Many Hops")
		return
	}

	dec := m.router.Route(called, caller)
	if dec.Redirect != "" {
		m.redirect(tx, req, dec.Redirect)
		return
	}
	var first Target
	if dec.Hunt != nil {
		t, ok := dec.Hunt.Next()
		if !ok {
			// Every gateway is down, locked or at its limits.
			m.refuse(tx, req, Decision{Status: 503, Reason: "Service Unavailable", Cause: 34})
			return
		}
		first = t
	} else if len(dec.Targets) == 0 {
		if dec.Status == 0 {
			dec.Status, dec.Reason = 404, "Not Found"
		}
		m.refuse(tx, req, dec)
		return
	}

	c := &Call{m: m, aInvite: req, aTx: tx, finalSent: make(chan struct{}),
		calling: caller.Number, called: called, account: caller.Account, setup: time.Now(),
		calledSent: dec.Called, callingSent: dec.Calling, hunt: dec.Hunt, maxFwd: mf - 1}
	if c.callingSent == "" {
		c.callingSent = c.calling
	}
	c.a100rel = hasOption(req, "Supported", "100rel") || hasOption(req, "Require", "100rel")
	c.aTimer = hasOption(req, "Supported", "timer") || hasOption(req, "Require", "timer")
	from := req.From()
	c.a = &leg{call: c, isA: true, callID: callID, remoteTag: tagOf(from.Params),
		localURI: req.To().Address, localName: req.To().DisplayName,
		remote: from.Address, remoteNam: from.DisplayName,
		dest: req.Source(), transport: strings.ToLower(req.Transport()),
		remoteSeq: req.CSeq().SeqNo, localSeq: 0}
	if ct := req.Contact(); ct != nil {
		c.a.target = ct.Address
	} else {
		c.a.target = from.Address
	}
	c.offer = req.Body() // parsed once: the answer's SDP, or this offer if never answered
	if !m.tab.add(callID, c.a) {
		if first.Release != nil {
			first.Release()
		}
		m.reply(tx, req, 482, "Merged Request")
		return
	}
	m.track()
	tx.OnCancel(func(cancel *sip.Request) {
		reason := headerValue(cancel, "Reason")
		go c.cancelByCaller(reason)
	})
	m.bus.Publish(&events.Event{Kind: events.CallAttempt, CallID: callID, Calling: c.calling,
		Called: called, Account: c.account, Setup: c.setup, CalledSent: dec.Called, CallingSent: dec.Calling})

	c.mu.Lock()
	if dec.Hunt != nil {
		c.startFork(first, c.maxFwd)
	}
	for _, t := range dec.Targets {
		c.startFork(t, c.maxFwd)
	}
	c.noAnswer = time.AfterFunc(m.cfg.NoAnswerTimeout, c.noAnswerTimeout)
	c.mu.Unlock()

	select {
	case <-c.finalSent:
	case <-tx.Done():
		// The transaction died under us (transport error): end the call.
		c.terminate("caller transaction ended", events.SideCaller, 500)
	}
}

// isRetransmission tells whether req is a copy of the call's initial
// INVITE (same From tag, CSeq and top Via branch).
func (c *Call) isRetransmission(req *sip.Request) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.aInvite
	if req.CSeq().SeqNo != a.CSeq().SeqNo || tagOf(req.From().Params) != c.a.remoteTag {
		return false
	}
	v1, v2 := req.Via(), a.Via()
	if v1 == nil || v2 == nil {
		return false
	}
	b1, _ := v1.Params.Get("branch")
	b2, _ := v2.Params.Get("branch")
	return b1 == b2
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
	if v := headerValue(req, "P-Asserted-Identity"); v != "" {
		var u sip.Uri
		if l, r := strings.IndexByte(v, '<'), strings.IndexByte(v, '>'); l >= 0 && r > l {
			v = v[l+1 : r]
		}
		if sip.ParseUri(strings.TrimSpace(v), &u) == nil && u.User != "" {
			return u.User
		}
	}
	return req.From().Address.User
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

// startFork sends the INVITE of one B leg. Caller holds c.mu.
func (c *Call) startFork(t Target, maxFwd uint32) {
	m := c.m
	a := c.aInvite
	calling := t.Calling
	if calling == "" {
		calling = c.callingSent
	}
	b := &leg{call: c, callID: randomID(), localTag: randomID(), aTag: randomID(),
		localURI:  sip.Uri{Scheme: "sip", User: calling, Host: m.cfg.Host},
		localName: a.From().DisplayName,
		remote:    sip.Uri{Scheme: "sip", User: t.URI.User, Host: t.URI.Host},
		target:    t.URI, dest: t.Dest, transport: strings.ToLower(t.Transport), gateway: t.Gateway,
		release: t.Release}
	if b.transport == "" {
		b.transport = "udp"
	}
	req := b.newRequest(sip.INVITE, m)
	mf := sip.MaxForwardsHeader(maxFwd)
	req.ReplaceHeader(&mf)
	copyHeaders(requestCopy, a, req)
	if t.Trusted {
		// The identity we vouch for toward gateways (RFC 3325): the
		// authenticated or trunk-asserted number after manipulation.
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+calling+"@"+m.cfg.Host+">"))
	}
	if m.cfg.SessionExpires > 0 && a.GetHeader("Session-Expires") == nil {
		// We keep calls honest even when the caller does not ask for
		// session timers (RFC 4028 §8: a proxy may insert the header).
		req.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(m.cfg.SessionExpires)))
		if !hasOption(req, "Supported", "timer") {
			req.AppendHeader(sip.NewHeader("Supported", "timer"))
		}
	}
	if body := a.Body(); len(body) > 0 {
		req.SetBody(body)
	} else {
		req.SetBody(nil)
	}
	b.invite = req
	if !m.tab.add(b.callID, b) {
		return // a collision of 120 random bits: not reached
	}
	c.forks = append(c.forks, b)
	tx, err := m.send(req)
	if err != nil {
		m.log.Debug("fork send failed", "dest", t.Dest, "err", err)
		b.final = 503
		go c.forkFailed(b, err)
		return
	}
	b.inviteTx = tx
	// The transaction outlives the call by up to 32 s (RFC 6026 Timer M):
	// its hook holds only the ACK, not the call, so that an ended call's
	// messages are garbage at once. A heap that keeps 32 s of calls alive
	// makes each collection mark gigabytes at high call rates.
	box := &atomic.Pointer[sip.Request]{}
	b.ackBox = box
	tx.OnRetransmission(func(r *sip.Response) {
		// A retransmitted 2xx means our ACK was lost: send it again.
		if ack := box.Load(); ack != nil && r.IsSuccess() {
			m.write(ack)
		}
	})
	if c.hunt != nil {
		if d := c.hunt.InviteTimeout(); d > 0 {
			b.silence = time.AfterFunc(d, func() { c.forkSilent(b) })
		}
	}
	go c.readFork(b, tx)
}

// readFork relays the responses of one fork's INVITE transaction.
func (c *Call) readFork(b *leg, tx sip.ClientTransaction) {
	for {
		select {
		case r := <-tx.Responses():
			if r == nil {
				continue
			}
			c.onForkResponse(b, r)
			if !r.IsProvisional() {
				// Retransmitted 2xx reach OnRetransmission, not this
				// channel: nothing more to read, free the goroutine.
				return
			}
		case <-tx.Done():
			if err := tx.Err(); err != nil && !errors.Is(err, sip.ErrTransactionTerminated) {
				c.forkFailed(b, err)
			}
			return
		}
	}
}

// forkFailed turns a transport error or timeout into a final status.
func (c *Call) forkFailed(b *leg, err error) {
	code, reason := 408, "Request Timeout"
	if errors.Is(err, sip.ErrTransactionTransport) {
		code, reason = 503, "Service Unavailable"
	}
	var ne net.Error
	if errors.As(err, &ne) && !ne.Timeout() {
		code, reason = 503, "Service Unavailable"
	}
	res := sip.NewResponseFromRequest(b.invite, code, reason, nil)
	c.onForkResponse(b, res)
}

func (c *Call) onForkResponse(b *leg, r *sip.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	code := r.StatusCode
	b.responded = true
	c.stopTimer(&b.silence)
	switch {
	case code < 200:
		b.provisional = true
		if b.cancelWanted && !b.cancelled {
			c.sendCancel(b)
		}
		if code == 100 || c.st != early || b.cancelWanted {
			return
		}
		c.learnDialog(b, r)
		c.relayProvisional(b, r)
	case code < 300:
		c.learnDialog(b, r)
		if c.st != early || b.cancelWanted {
			// Late answer on a fork we no longer want: take it and hang up.
			c.ackAndBye(b, r)
			return
		}
		c.answer(b, r)
	default:
		if b.done {
			return
		}
		b.done = true
		b.final = code
		c.releaseLeg(b)
		if c.st != early {
			return
		}
		if c.bestFinal == nil || better(r, c.bestFinal) {
			c.bestFinal = r
		}
		if c.hunt != nil {
			if !c.hunt.Failover(code) {
				c.failCall(r) // busy, unknown number...: the answer, not the gateway's fault
				return
			}
			if next, ok := c.hunt.Next(); ok {
				c.m.log.Debug("gateway failover", "call", c.a.callID, "from", b.gateway, "status", code, "to", next.Gateway)
				c.startFork(next, c.maxFwd)
				return
			}
		}
		if code >= 600 {
			for _, f := range c.forks {
				if f != b && f.final == 0 {
					c.cancelFork(f, q850.Reason(q850.CauseForStatus(code), ""))
				}
			}
			c.failCall(r)
			return
		}
		for _, f := range c.forks {
			if f.final == 0 {
				return
			}
		}
		c.failCall(c.bestFinal)
	}
}

// forkSilent: the gateway sent nothing at all (not even 100 Trying)
// within the hunt's invite timeout. Its transaction is dropped (no CANCEL
// is possible before a provisional) and the hunt moves on.
func (c *Call) forkSilent(b *leg) {
	c.mu.Lock()
	quiet := !b.responded && !b.done
	tx := b.inviteTx
	c.mu.Unlock()
	if !quiet {
		return
	}
	if tx != nil {
		tx.Terminate()
	}
	c.onForkResponse(b, sip.NewResponseFromRequest(b.invite, 408, "Request Timeout", nil))
}

// releaseLeg gives back what the leg held on its gateway. Caller holds c.mu.
func (c *Call) releaseLeg(b *leg) {
	if b.release != nil {
		b.release()
		b.release = nil
	}
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
		b.remoteTag = t
	}
	if ct := r.Contact(); ct != nil {
		b.target = ct.Address
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
	if err := c.aTx.Respond(res); err != nil {
		c.m.log.Debug("relay provisional failed", "err", err)
	}
	if !c.ringing && r.StatusCode >= 180 {
		c.ringing = true
		c.m.bus.Publish(&events.Event{Kind: events.CallRinging, CallID: c.a.callID, Calling: c.calling, Called: c.called})
	}
}

// prackSelf sends PRACK for a reliable provisional of fork b.
func (c *Call) prackSelf(b *leg, r *sip.Response) {
	rseq := headerValue(r, "RSeq")
	if rseq == "" {
		return
	}
	req := b.newRequest(sip.PRACK, c.m)
	req.AppendHeader(sip.NewHeader("RAck", strings.TrimSpace(rseq)+" "+strconv.FormatUint(uint64(b.invite.CSeq().SeqNo), 10)+" INVITE"))
	req.SetBody(nil)
	go c.m.fireAndForget(req)
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

// fireAndForget sends a request and drains its transaction.
func (m *Manager) fireAndForget(req *sip.Request) {
	tx, err := m.send(req)
	if err != nil {
		m.log.Debug("send failed", "method", req.Method, "err", err)
		return
	}
	drain(tx)
}

func drain(tx sip.ClientTransaction) *sip.Response {
	var last *sip.Response
	for {
		select {
		case r := <-tx.Responses():
			if r != nil && !r.IsProvisional() {
				last = r
				tx.Terminate()
				return last
			}
		case <-tx.Done():
			return last
		}
	}
}

// answer: fork b answered first. Caller holds c.mu.
func (c *Call) answer(b *leg, r *sip.Response) {
	c.st = confirmed
	c.b = b
	c.answered = time.Now()
	c.stopTimer(&c.noAnswer)
	for _, f := range c.forks {
		if f != b && f.final == 0 {
			c.cancelFork(f, `SIP;cause=200;text="Call completed elsewhere"`) // RFC 3326
		}
	}
	c.a.localTag = b.aTag
	if ms, err := sdpinfo.Parse(r.Body()); err == nil && len(ms) > 0 {
		c.media = sdpinfo.Strings(ms)
	}
	res := c.responseToA(b, r, c.aInvite)
	c.negotiateTimer(r, res)
	// The 2xx goes out directly, not through the INVITE transaction: the
	// transaction then ends as soon as HandleInvite returns instead of
	// keeping the call's messages for Timer L (32 s; sipgo does not stop
	// that timer on Terminate). 2xx retransmission is ours anyway
	// (retransmit2xx), INVITE copies are recognised in HandleInvite, and
	// the ACK comes to HandleAck whatever the transaction's state.
	if err := c.m.client.TransportLayer().WriteMsg(res); err != nil {
		c.m.log.Debug("relay 2xx failed", "err", err)
	}
	c.retransmit2xx(res)
	c.finish()
	c.m.bus.Publish(&events.Event{Kind: events.CallAnswer, CallID: c.a.callID, Calling: c.calling,
		Called: c.called, Account: c.account, Setup: c.setup, Answer: c.answered, Media: c.media,
		Gateway: b.gateway, CalledSent: b.remote.User, CallingSent: b.localURI.User})
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

// finish marks the caller's INVITE as answered finally.
func (c *Call) finish() {
	c.finalOnce.Do(func() { close(c.finalSent) })
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
	if _, ok := q850.Parse(headerValue(r, "Reason")); !ok {
		// The callee gave no cause: the RFC 3398 one for what it said.
		res.RemoveHeader("Reason")
		res.AppendHeader(sip.NewHeader("Reason", q850.Reason(q850.CauseForStatus(r.StatusCode), "")))
	}
	c.aTx.Respond(res)
	c.end("rejected", events.SideCallee, code)
}

// cancelFork stops one pending fork; reason goes in the CANCEL's Reason
// header (RFC 3326). Caller holds c.mu.
func (c *Call) cancelFork(b *leg, reason string) {
	b.cancelWanted = true
	if b.cancelReason == "" {
		b.cancelReason = reason
	}
	if b.provisional && !b.cancelled {
		c.sendCancel(b)
	}
}

func (c *Call) sendCancel(b *leg) {
	b.cancelled = true
	inv := b.invite
	req := sip.NewRequest(sip.CANCEL, inv.Recipient)
	req.AppendHeader(sip.HeaderClone(inv.Via()))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	if b.cancelReason != "" {
		req.AppendHeader(sip.NewHeader("Reason", b.cancelReason))
	}
	req.SetBody(nil)
	c.m.prepare(req, b.dest, b.transport)
	go c.m.fireAndForget(req)
}

// ackAndBye accepts an unwanted 2xx and hangs it up at once.
func (c *Call) ackAndBye(b *leg, r *sip.Response) {
	if b.ack != nil {
		c.m.write(b.ack)
		return
	}
	ack := b.ack2xx(c.m)
	ack.SetBody(nil)
	b.setAck(ack)
	c.m.write(ack)
	bye := b.newRequest(sip.BYE, c.m)
	bye.SetBody(nil)
	go c.m.fireAndForget(bye)
	c.m.tab.del(b.callID)
}

// cancelByCaller runs when the caller CANCELs; sipgo has already answered
// 200 to the CANCEL and 487 to the INVITE. The caller's Reason is passed
// on; without one the callee learns Q.850 cause 16 (normal clearing).
func (c *Call) cancelByCaller(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != early {
		return
	}
	if reason == "" {
		reason = q850.Reason(16, "")
	}
	for _, f := range c.forks {
		if f.final == 0 {
			c.cancelFork(f, reason)
		}
	}
	c.end("cancelled", events.SideCaller, 487)
}

// noAnswerTimeout ends a call that rang too long.
func (c *Call) noAnswerTimeout() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != early {
		return
	}
	for _, f := range c.forks {
		if f.final == 0 {
			c.cancelFork(f, q850.Reason(19, ""))
		}
	}
	res := sip.NewResponseFromRequest(c.aInvite, 480, "No Answer", nil)
	if to := res.To(); to != nil {
		tag := randomID()
		if len(c.forks) > 0 {
			tag = c.forks[0].aTag
		}
		setTag(to, tag)
	}
	res.AppendHeader(sip.NewHeader("Reason", q850.Reason(19, "")))
	c.aTx.Respond(res)
	c.end("no answer", events.SideSwitch, 480)
}

// end releases everything of the call. Caller holds c.mu.
func (c *Call) end(cause string, side events.Side, status int) {
	if c.st == ended {
		return
	}
	wasAnswered := c.st == confirmed
	c.st = ended
	if c.media == nil && len(c.offer) > 0 {
		if ms, err := sdpinfo.Parse(c.offer); err == nil {
			c.media = sdpinfo.Strings(ms)
		}
	}
	c.stopTimer(&c.noAnswer)
	c.stopTimer(&c.retrans2x)
	c.stopTimer(&c.seWatchdog)
	c.stopTimer(&c.seRefresh)
	c.finish()
	m := c.m
	m.tab.del(c.a.callID)
	for _, f := range c.forks {
		m.tab.del(f.callID)
		c.stopTimer(&f.silence)
		c.releaseLeg(f)
	}
	m.untrack()
	ev := &events.Event{Kind: events.CallRelease, CallID: c.a.callID, Calling: c.calling, Called: c.called,
		Account: c.account, Status: status, Cause: cause, Side: side, Answered: wasAnswered,
		Setup: c.setup, Answer: c.answered, Media: c.media}
	if l := c.lastFork(); l != nil {
		ev.Gateway, ev.CalledSent, ev.CallingSent = l.gateway, l.remote.User, l.localURI.User
	}
	m.bus.Publish(ev)
}

func (c *Call) stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// terminate ends the call from the switch's side whatever its state:
// CANCEL/final response while early, BYE on both legs when confirmed.
func (c *Call) terminate(cause string, side events.Side, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.st {
	case early:
		for _, f := range c.forks {
			if f.final == 0 {
				c.cancelFork(f, q850.Reason(q850.CauseForStatus(status), cause))
			}
		}
		res := sip.NewResponseFromRequest(c.aInvite, status, "Service Unavailable", nil)
		c.aTx.Respond(res)
		c.end(cause, side, status)
	case confirmed:
		c.byeBoth(nil, switchReason(cause))
		c.end(cause, side, status)
	}
}

// switchReason is the Reason of a BYE the switch sends on its own.
func switchReason(text string) string {
	return `SIP;cause=200;text="` + text + `"`
}

// byeBoth sends BYE to both legs except skip, with reason (a Reason header
// value, RFC 3326) when not empty. Caller holds c.mu.
func (c *Call) byeBoth(skip *leg, reason string) {
	for _, l := range []*leg{c.a, c.b} {
		if l == nil || l == skip {
			continue
		}
		if !l.isA && l.ack == nil {
			// Never acknowledged: ACK first so the callee's dialog is confirmed.
			ack := l.ack2xx(c.m)
			ack.SetBody(nil)
			l.setAck(ack)
			c.m.write(ack)
		}
		bye := l.newRequest(sip.BYE, c.m)
		if reason != "" {
			bye.AppendHeader(sip.NewHeader("Reason", reason))
		}
		bye.SetBody(nil)
		go c.m.fireAndForget(bye)
	}
}
