package call

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/q850"
)

// A fork is one B leg's INVITE. Its life:
//
//	pending   INVITE sent (Timer C running; for a gateway hunt, the invite
//	          timeout too) until a final response.
//	answered  the first 2xx: the call is confirmed with it.
//	failed    a 3xx-6xx: counted toward the caller's final response.
//	abandoned the switch gave it up (CANCEL from the caller, no answer,
//	          answered elsewhere, Timer C, invite timeout, call end). A
//	          CANCEL goes as soon as it has sent a provisional; a 2xx it
//	          still sends is ACKed and BYEd at once (no ghost calls); 64*T1
//	          after it was given up its transaction is ended whatever the
//	          callee does, and it is forgotten.

// startFork builds the INVITE of one B leg and registers it; the caller
// sends it with launch once it has released the lock. Caller holds c.mu.
func (c *Call) startFork(t Target) *leg {
	m := c.m
	a := c.aInvite
	calling := t.Calling
	if calling == "" {
		calling = c.callingSent
	}
	b := &leg{call: c, callID: randomID(), localTag: randomID(), aTag: randomID(),
		localURI:  uriOf(sip.Uri{Scheme: "sip", User: calling, Host: m.cfg.Host}),
		localName: strings.Clone(a.From().DisplayName),
		remote:    uriOf(sip.Uri{Scheme: "sip", User: t.URI.User, Host: t.URI.Host}),
		target:    uriOf(t.URI), dest: t.Dest, transport: strings.ToLower(t.Transport), gateway: t.Gateway,
		release: t.Release, outcome: t.Outcome, oc: t.OC}
	if b.transport == "" {
		b.transport = "udp"
	}
	req := b.newRequest(sip.INVITE, m)
	if t.OC != nil {
		req.Via().Params.Add("oc", "") // RFC 7339 §5.1: we honour overload control
	}
	mf := sip.MaxForwardsHeader(c.maxFwd)
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
	b.invite, b.inviteSeq = req, req.CSeq().SeqNo
	c.touch() // the pair's standby learns the fork (replicate.go)
	if !m.tab.add(b.callID, b) {
		c.releaseLeg(b)
		return nil // a collision of 120 random bits: not reached
	}
	c.forks = append(c.forks, b)
	return b
}

// launch sends the fork's INVITE and starts the goroutine that relays its
// responses. It runs without the call's lock (opening a connection can
// take seconds), on the goroutine that started the fork: the request
// handler of the caller's INVITE, or the fork the hunt moves on from.
func (c *Call) launch(b *leg) {
	defer c.guard("call fork")
	gone := func() bool {
		c.lock()
		defer c.unlock()
		if b.abandoned { // given up before it could even be sent
			b.final = 487
			c.releaseLeg(b)
		}
		return b.abandoned
	}()
	if gone {
		return
	}
	tx, err := c.m.send(b.invite)
	if err != nil {
		c.m.log.Debug("fork send failed", "dest", b.dest, "err", err)
		c.forkResponse(b, synthetic(b, 503, "Service Unavailable"))
		return
	}
	// A retransmitted 2xx means our ACK was lost: it goes again, as for
	// one that comes after the transaction (HandleStrayResponse). The
	// transaction outlives the call by up to Timer M: its hook holds the
	// manager, not the call, so that an ended call is garbage at once.
	tx.OnRetransmission(c.m.HandleStrayResponse)
	func() {
		c.lock()
		defer c.unlock()
		b.inviteTx = tx
		if b.final == 0 && !b.abandoned {
			c.armTimerC(b)
			if c.hunt != nil {
				if d := c.hunt.InviteTimeout(); d > 0 {
					b.silence = time.AfterFunc(d, func() { c.forkSilent(b) })
				}
			}
		}
	}()
	go c.readFork(b, tx)
}

// readFork relays the responses of one fork's INVITE transaction until
// its final response, or the transaction's end. It runs on a goroutine of
// its own.
func (c *Call) readFork(b *leg, tx sip.ClientTransaction) {
	defer c.guard("call fork")
	for {
		select {
		case r := <-tx.Responses():
			if r == nil {
				continue
			}
			if !c.m.validResponse(r, "callee") {
				continue // dropped and counted: what we rely on is missing
			}
			if b.oc != nil {
				readOC(r, b.oc)
			}
			c.forkResponse(b, r)
			if !r.IsProvisional() {
				// Retransmitted 2xx reach OnRetransmission, not this
				// channel: nothing more to read, free the goroutine.
				return
			}
		case <-tx.Done():
			c.forkResponse(b, txFailure(b, tx.Err()))
			return
		}
	}
}

// txFailure turns the end of a transaction without a final response into
// one: a transport error 503, a timeout (or our own ending of it) 408.
func txFailure(b *leg, err error) *sip.Response {
	code, reason := 408, "Request Timeout"
	if errors.Is(err, sip.ErrTransactionTransport) {
		code, reason = 503, "Service Unavailable"
	}
	var ne net.Error
	if errors.As(err, &ne) && !ne.Timeout() {
		code, reason = 503, "Service Unavailable"
	}
	return synthetic(b, code, reason)
}

// forkResponse handles one response of fork b, then asks the hunter for
// the next gateway if the response calls for it (outside the lock: that
// may resolve a name).
func (c *Call) forkResponse(b *leg, r *sip.Response) {
	next := func() bool {
		c.lock()
		defer c.unlock()
		return c.onForkResponse(b, r)
	}()
	if next {
		c.huntNext()
	}
}

// onForkResponse reports whether the hunt must move to the next gateway.
// Caller holds c.mu.
func (c *Call) onForkResponse(b *leg, r *sip.Response) bool {
	code := r.StatusCode
	b.responded = true
	c.stopTimer(&b.silence)
	switch {
	case code < 200:
		if b.final != 0 {
			return false
		}
		b.provisional = true
		if b.abandoned {
			if !b.cancelled {
				c.sendCancel(b) // the CANCEL it could not get before (RFC 3261 §9.1)
			}
			return false
		}
		b.lastProvisional = time.Now() // restarts Timer C (RFC 3261 §16.7 step 2)
		if code == 100 || c.st != early {
			return false
		}
		c.learnDialog(b, r)
		c.relayProvisional(b, r)
		return false
	case code < 300:
		first := b.final == 0
		c.learnDialog(b, r)
		b.final = code
		c.stopForkTimers(b)
		if b.abandoned || c.st != early {
			// An answer the switch no longer wants (given up, cancelled,
			// answered elsewhere, call ended): take it and hang up at
			// once, or the callee bills a call nobody is in.
			if first {
				c.ackAndBye(b)
			}
			return false
		}
		c.tellOutcome(b, code)
		c.answer(b, r)
		return false
	}
	if b.final != 0 {
		return false
	}
	b.final = code
	c.stopForkTimers(b)
	c.releaseLeg(b)
	if b.abandoned {
		// Its outcome was settled when it was given up; its table entry
		// stays until the reap, for a 2xx that might still come late.
		return false
	}
	c.m.tab.del(b.callID)
	return c.forkOutcome(b, r)
}

// forkOutcome counts the final answer (real, or made up when the switch
// gave the fork up) of a fork the call was waiting for. It reports
// whether the hunt must move on. Caller holds c.mu.
func (c *Call) forkOutcome(b *leg, r *sip.Response) bool {
	b.counted = true
	c.tellOutcome(b, r.StatusCode)
	if c.st != early {
		return false
	}
	if c.bestFinal == nil || better(r, c.bestFinal) {
		c.bestFinal = r
	}
	code := r.StatusCode
	if c.hunt != nil {
		if !c.hunt.Failover(code) {
			c.failCall(r) // busy, unknown number...: the answer, not the gateway's fault
			return false
		}
		if c.hunting {
			return false
		}
		c.hunting = true
		c.huntFrom, c.huntStatus = b.gateway, code
		return true
	}
	if code >= 600 {
		for _, f := range c.forks {
			if f != b {
				c.abandon(f, q850.Reason(q850.CauseForStatus(code), ""))
			}
		}
		c.failCall(r)
		return false
	}
	for _, f := range c.forks {
		if !f.counted {
			return false
		}
	}
	c.failCall(c.bestFinal)
	return false
}

// huntNext asks the hunter for the next gateway and starts its fork, or
// fails the call when there is none. The hunter may resolve names (up to
// seconds): the call's lock is not held meanwhile, so a CANCEL or a timer
// of this call is handled at once; if the call ended meanwhile the
// gateway's channel is given back.
func (c *Call) huntNext() {
	t, ok := c.hunt.Next()
	b := func() *leg {
		c.lock()
		defer c.unlock()
		c.hunting = false
		if c.st != early {
			if ok && t.Release != nil {
				t.Release()
			}
			return nil
		}
		if !ok {
			c.failCall(c.bestFinal)
			return nil
		}
		c.m.log.Debug("gateway failover", "call", c.a.callID, "from", c.huntFrom, "status", c.huntStatus, "to", t.Gateway)
		return c.startFork(t)
	}()
	if b != nil {
		c.launch(b)
	}
}

// abandon gives fork b up (reason is the Reason header of its CANCEL).
// Caller holds c.mu.
func (c *Call) abandon(b *leg, reason string) {
	if b.abandoned || b.final != 0 {
		return
	}
	b.abandoned = true
	if b.cancelReason == "" {
		b.cancelReason = reason
	}
	c.stopTimer(&b.timerC)
	c.stopTimer(&b.silence)
	if b.provisional && !b.cancelled {
		c.sendCancel(b)
	}
	c.armReap(b)
}

// giveUp abandons a fork that is still pending because of one of the
// switch's own timers and counts it as 408. It reports whether the hunt
// must move on. Caller holds c.mu.
func (c *Call) giveUp(b *leg, reason string) bool {
	c.abandon(b, reason)
	c.releaseLeg(b)
	return c.forkOutcome(b, synthetic(b, 408, "Request Timeout"))
}

// armReap ends fork b's transaction and forgets the leg 64*T1 from now:
// the longest any callee may take to answer our CANCEL or retransmit its
// 2xx. Caller holds c.mu.
func (c *Call) armReap(b *leg) {
	if b.reap != nil {
		return
	}
	b.reap = time.AfterFunc(abandonWait(), func() { c.reapFork(b) })
}

func (c *Call) reapFork(b *leg) {
	defer c.guard("call fork reap")
	c.lock()
	defer c.unlock()
	c.m.tab.del(b.callID)
	if b.final == 0 && b.inviteTx != nil {
		// The callee never answered the CANCEL: end the transaction
		// (readFork then sees it end and the fork gets its 408).
		c.m.log.Debug("abandoned fork ended unanswered", "call", c.a.callID, "leg", b.callID, "gateway", b.gateway)
		c.after(b.inviteTx.Terminate)
	}
}

// stopForkTimers stops the timers that wait for fork b's final response.
// Caller holds c.mu.
func (c *Call) stopForkTimers(b *leg) {
	c.stopTimer(&b.timerC)
	c.stopTimer(&b.silence)
}

// armTimerC starts Timer C for fork b (RFC 3261 §16.6 step 11): it fires
// when the fork has been silent for TimerC since its INVITE or its last
// provisional. Caller holds c.mu.
func (c *Call) armTimerC(b *leg) {
	b.lastProvisional = time.Now()
	b.timerC = time.AfterFunc(c.m.cfg.TimerC, func() { c.timerCFired(b) })
}

func (c *Call) timerCFired(b *leg) {
	defer c.guard("call timer C")
	next := func() bool {
		c.lock()
		defer c.unlock()
		if b.final != 0 || b.abandoned || b.timerC == nil {
			return false
		}
		if left := c.m.cfg.TimerC - time.Since(b.lastProvisional); left > 0 {
			// A provisional came since the timer was set: wait the rest.
			b.timerC = time.AfterFunc(left, func() { c.timerCFired(b) })
			return false
		}
		b.timerC = nil
		c.m.log.Info("timer C expired: fork given up", "call", c.a.callID, "gateway", b.gateway, "provisional", b.provisional)
		return c.giveUp(b, q850.Reason(102, "Timer C"))
	}()
	if next {
		c.huntNext()
	}
}

// forkSilent: the gateway sent nothing at all (not even 100 Trying)
// within the hunt's invite timeout. The hunt moves on; the fork's
// transaction runs on (no CANCEL is possible before a provisional), so
// that a 2xx it may still send is ACKed and BYEd.
func (c *Call) forkSilent(b *leg) {
	defer c.guard("call invite timeout")
	next := func() bool {
		c.lock()
		defer c.unlock()
		return !b.responded && b.final == 0 && !b.abandoned && c.giveUp(b, q850.Reason(102, "no response"))
	}()
	if next {
		c.huntNext()
	}
}

// tellOutcome tells the target's statistics the fork's final answer,
// once. Caller holds c.mu.
func (c *Call) tellOutcome(b *leg, status int) {
	if f := b.outcome; f != nil {
		b.outcome = nil
		f(status)
	}
}

// releaseLeg gives back what the leg held on its gateway. Caller holds c.mu.
func (c *Call) releaseLeg(b *leg) {
	if b.release != nil {
		b.release()
		b.release = nil
	}
}

// sendCancel cancels fork b's INVITE (RFC 3261 §9.1). Caller holds c.mu.
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
	c.fireAndForget("call CANCEL", req)
}

// ackAndBye accepts an unwanted 2xx and hangs it up at once. Caller holds c.mu.
func (c *Call) ackAndBye(b *leg) {
	c.sendAck2xx(b, nil)
	bye := b.newRequest(sip.BYE, c.m)
	reason := b.cancelReason
	if reason == "" {
		reason = q850.Reason(16, "")
	}
	bye.AppendHeader(sip.NewHeader("Reason", reason))
	bye.SetBody(nil)
	c.fireAndForget("call bye", bye)
	c.releaseLeg(b)
	// Kept until the reap: a retransmitted 2xx gets the ACK again.
	c.armReap(b)
}

// parseRSeq reads an RSeq value (RFC 3262: 1*DIGIT, 1..2^31-1).
func parseRSeq(v string) (uint32, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil || n == 0 || n >= 1<<31 {
		return 0, false
	}
	return uint32(n), true
}

// parseRAck reads a RAck value "rseq cseq method" (RFC 3262 §7.2).
func parseRAck(v string) (rseq, cseq uint32, method string, ok bool) {
	f := strings.Fields(v)
	if len(f) != 3 {
		return 0, 0, "", false
	}
	r, ok1 := parseRSeq(f[0])
	n, err := strconv.ParseUint(f[1], 10, 32)
	if !ok1 || err != nil || n >= 1<<31 || f[2] == "" {
		return 0, 0, "", false
	}
	return r, uint32(n), f[2], true
}
