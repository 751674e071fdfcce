package call

import (
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/q850"
	"github.com/softswitch/softswitch/core/safe"
)

// find locates the leg a request belongs to and checks its tags. On
// success the call is returned locked (the caller unlocks it). For the
// caller's dialog in the early state, the To tag names the fork.
func (m *Manager) find(req *sip.Request) (*Call, *leg, *leg) {
	id := req.CallID().Value()
	l := m.tab.get(id)
	if l == nil {
		// A call this node holds for its pair, reached before the role
		// change is seen: taken on now (replicate.go). Looked up again
		// whatever the answer: the takeover's own adoption may have
		// taken it on since the first look.
		p := m.rescue.Load()
		if p == nil {
			return nil, nil, nil
		}
		(*p)(id)
		if l = m.tab.get(id); l == nil {
			return nil, nil, nil
		}
	}
	c := l.call
	fromTag := tagOf(req.From().Params)
	toTag := tagOf(req.To().Params)
	c.lock()
	if fromTag == l.remoteTag {
		if l.isA {
			for _, f := range c.forks {
				if f.aTag == toTag {
					return c, l, f
				}
			}
		} else if toTag == l.localTag {
			return c, l, c.a
		}
	}
	c.unlock()
	return nil, nil, nil
}

// reinviteWait bounds a relayed re-INVITE once its peer answered with a
// provisional (sipgo stops its Timer B then): 64*T1, as for any
// transaction the switch would otherwise wait on for ever.
func reinviteWait() time.Duration { return abandonWait() }

// HandleInDialog relays a request inside an existing dialog (re-INVITE,
// UPDATE, PRACK, INFO, MESSAGE, NOTIFY, OPTIONS, REFER) to the other leg,
// and its responses back. It returns when the final response is sent.
func (m *Manager) HandleInDialog(req *sip.Request, tx sip.ServerTransaction) {
	c, from, to := m.find(req)
	if c == nil {
		m.reply(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	seq := req.CSeq().SeqNo
	invite := req.Method == sip.INVITE
	out, code, reason := func() (*sip.Request, int, string) {
		defer c.unlock() // find returned the call locked
		if c.st == ended || (c.st == confirmed && (from != c.a && from != c.b || to != c.a && to != c.b)) {
			// Ended, or a fork that lost the race to answer.
			return nil, 481, "Call/Transaction Does Not Exist"
		}
		if seq <= from.remoteSeq && from.remoteSeq != 0 {
			return nil, 500, "CSeq Out of Order"
		}
		from.remoteSeq = seq
		c.touch()
		if invite && (from.pendingAckTo != nil || to.pendingAckTo != nil) {
			return nil, 491, "Request Pending"
		}
		if ct := req.Contact(); ct != nil && (invite || req.Method == sip.UPDATE) {
			from.target.set(ct.Address) // target refresh (RFC 3261 §12.2.2)
		}
		out := c.requestOn(to, from, req.Method)
		copyHeaders(requestCopy, req, out)
		if req.Method == sip.PRACK && !to.isA {
			// RAck names the callee's own INVITE CSeq on its leg.
			if rseq, _, _, ok := parseRAck(headerValue(req, "RAck")); ok {
				out.AppendHeader(sip.NewHeader("RAck", rack(rseq, to.inviteSeq)))
			}
		}
		out.SetBody(req.Body())
		if invite {
			from.pendingAckIn = seq
			from.pendingAckOut = out.CSeq().SeqNo
			from.pendingAckTo = to
		}
		return out, 0, ""
	}()
	if out == nil {
		m.reply(tx, req, code, reason)
		return
	}

	ctx, err := m.send(out)
	if err != nil {
		m.reply(tx, req, 503, "Service Unavailable")
		c.clearPending(from)
		return
	}
	var deadline <-chan time.Time
	if invite {
		ctx.OnRetransmission(func(r *sip.Response) {
			defer safe.Recover("call re-INVITE 2xx retransmission")
			if ack := c.pendingAck(to); ack != nil && r.IsSuccess() {
				ack.sendOn(m.wire)
			}
		})
		t := time.NewTimer(reinviteWait())
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case r := <-ctx.Responses():
			if r == nil || r.StatusCode == 100 || !m.validResponse(r, "in-dialog") {
				continue
			}
			res := sip.NewResponseFromRequest(req, r.StatusCode, r.Reason, nil)
			copyHeaders(responseCopy, r, res)
			if r.StatusCode < 300 && (invite || req.Method == sip.UPDATE) {
				res.AppendHeader(m.contact())
			}
			if b := r.Body(); len(b) > 0 {
				res.SetBody(b)
			}
			if r.IsSuccess() {
				c.relayedSuccess(req, r, res, from, to, seq)
			}
			tx.Respond(res)
			if !r.IsProvisional() {
				if !r.IsSuccess() {
					c.clearPending(from)
				}
				return
			}
		case <-ctx.Done():
			m.reply(tx, req, 408, "Request Timeout")
			c.clearPending(from)
			if invite || req.Method == sip.UPDATE {
				// A peer that no longer answers inside its dialog is gone
				// (RFC 3261 §14.1).
				c.terminate("peer not responding", events.SideSwitch, 408, 102)
			}
			return
		case <-deadline:
			// Provisional, then silence: give the re-INVITE up, tell its
			// sender, and release the call (RFC 3261 §14.1).
			ctx.Terminate()
			m.reply(tx, req, 408, "Request Timeout")
			c.clearPending(from)
			c.terminate("re-INVITE not answered", events.SideSwitch, 408, 102)
			return
		}
	}
}

func (c *Call) clearPending(l *leg) {
	c.lock()
	defer c.unlock()
	l.pendingAckTo = nil
}

func (c *Call) pendingAck(l *leg) *again {
	c.lock()
	defer c.unlock()
	return l.pendingAckReq
}

// relayedSuccess notes what a 2xx relayed to the sender of req changes:
// the peer's target, the session timer, and for a re-INVITE the 2xx to
// retransmit until its ACK (RFC 3261 §13.3.1.4).
func (c *Call) relayedSuccess(req *sip.Request, r, res *sip.Response, from, to *leg, seq uint32) {
	c.lock()
	defer c.unlock()
	refresh := req.Method == sip.INVITE || req.Method == sip.UPDATE
	c.touch()
	if ct := r.Contact(); ct != nil && refresh {
		to.target.set(ct.Address)
	}
	if refresh {
		c.refreshed(r)
	}
	if req.Method == sip.INVITE && c.st == confirmed {
		c.retransmit2xx(from, res, seq)
	}
}

// requestOn builds a request on leg to (coming from leg from). Caller holds c.mu.
func (c *Call) requestOn(to, from *leg, method sip.RequestMethod) *sip.Request {
	if to.isA {
		tag := to.localTag
		if c.st == early {
			tag = from.aTag
		}
		return to.newRequestTag(method, c.m, tag)
	}
	return to.newRequest(method, c.m)
}

// HandleAck takes an ACK outside a transaction: the ACK of a 2xx.
func (m *Manager) HandleAck(req *sip.Request) {
	c, from, _ := m.find(req)
	if c == nil {
		return // ACK gets no response; stray ones are dropped
	}
	defer c.unlock()
	seq := req.CSeq().SeqNo
	if from.isA && seq == c.aSeq {
		if c.ackedA {
			if c.b != nil && c.b.ackSent {
				c.ackAgain(c.b)
			}
			return
		}
		c.ackedA = true
		c.acked(from, seq)
		b := c.b
		if b == nil || c.st != confirmed {
			return
		}
		c.sendAck2xx(b, req)
		c.compact()
		return
	}
	if from.pendingAckTo != nil && seq == from.pendingAckIn {
		c.acked(from, seq)
		peer := from.pendingAckTo
		from.pendingAckTo = nil
		ack := c.requestOn(peer, from, sip.ACK)
		ack.CSeq().SeqNo = from.pendingAckOut
		peer.pendingAckReq = c.sendAck(ack, req)
	}
}

// HandleBye ends a call on a BYE from either side: 200 to the sender,
// BYE to the other side.
func (m *Manager) HandleBye(req *sip.Request, tx sip.ServerTransaction) {
	c, from, _ := m.find(req)
	if c == nil {
		if p := m.releasedThere.Load(); p != nil && (*p)(req.CallID().Value()) {
			m.reply(tx, req, 200, "OK")
			return
		}
		m.reply(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.byeLocked(req, from)
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	// Not kept for Timer J (32 s): a retransmitted BYE finds no call and
	// gets 481, which ends the dialog for its sender all the same; the
	// call's memory is free 32 s sooner.
	tx.Terminate()
}

// byeLocked ends the call on a BYE from leg from; find returned the call
// locked.
func (c *Call) byeLocked(req *sip.Request, from *leg) {
	defer c.unlock()
	side := events.SideCallee
	if from.isA {
		side = events.SideCaller
	}
	reason := headerValue(req, "Reason")
	switch c.st {
	case confirmed:
		if from.isA || from == c.b {
			c.byeBoth(from, reason) // the cause travels on (RFC 3326)
			cause, ok := q850.Parse(reason)
			if !ok {
				cause = 16
			}
			c.end("BYE", side, 200, cause)
		}
	case early:
		if from.isA {
			// BYE before the answer works as a CANCEL (RFC 3261 §15).
			cause, ok := q850.Parse(reason)
			if !ok {
				reason, cause = q850.Reason(16, ""), 16
			}
			for _, f := range c.forks {
				c.abandon(f, reason)
			}
			c.finalToA(sip.NewResponseFromRequest(c.aInvite, 487, "Request Terminated", nil))
			c.end("cancelled", side, 487, cause)
		}
	}
}

// HandleStrayResponse takes responses that match no client transaction.
// A 2xx to one of our INVITEs that arrives after its transaction ended
// either means the callee did not get our ACK (send it again), or comes
// from a fork the switch gave up (ACK it and hang up: no ghost calls).
// The transaction layer keeps answered INVITE transactions only briefly
// (Timer M), so this is where late retransmissions land. Anything else is
// dropped.
func (m *Manager) HandleStrayResponse(res *sip.Response) {
	defer safe.Recover("stray response")
	if !m.validResponse(res, "stray") {
		return
	}
	cseq := res.CSeq()
	if cseq.MethodName != sip.INVITE || !res.IsSuccess() {
		return
	}
	l := m.tab.get(res.CallID().Value())
	if l == nil || l.isA {
		return
	}
	c := l.call
	c.lock()
	defer c.unlock()
	switch {
	case l.ackSent && cseq.SeqNo == l.inviteSeq:
		c.ackAgain(l)
	case l.pendingAckReq != nil && cseq.SeqNo == l.pendingAckReq.seq:
		c.writeAgain(l.pendingAckReq)
	case cseq.SeqNo == l.inviteSeq && l != c.b && (l.abandoned || c.st != early):
		c.learnDialog(l, res)
		if l.final == 0 {
			l.final = res.StatusCode
		}
		c.stopForkTimers(l)
		c.ackAndBye(l)
	}
}
