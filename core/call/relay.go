package call

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/q850"
)

// find locates the leg a request belongs to and checks its tags.
// For the caller's dialog in the early state, the To tag names the fork.
func (m *Manager) find(req *sip.Request) (*Call, *leg, *leg) {
	l := m.tab.get(req.CallID().Value())
	if l == nil {
		return nil, nil, nil
	}
	c := l.call
	fromTag := tagOf(req.From().Params)
	toTag := tagOf(req.To().Params)
	if fromTag != l.remoteTag {
		return nil, nil, nil
	}
	if l.isA {
		for _, f := range c.forks {
			if f.aTag == toTag {
				return c, l, f
			}
		}
		return nil, nil, nil
	}
	if toTag != l.localTag {
		return nil, nil, nil
	}
	return c, l, c.a
}

// HandleInDialog relays a request inside an existing dialog (re-INVITE,
// UPDATE, PRACK, INFO, MESSAGE, NOTIFY, OPTIONS, REFER) to the other leg,
// and its responses back. It returns when the final response is sent.
func (m *Manager) HandleInDialog(req *sip.Request, tx sip.ServerTransaction) {
	c, from, to := m.find(req)
	if c == nil {
		m.reply(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.mu.Lock()
	if c.st == ended {
		c.mu.Unlock()
		m.reply(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	seq := req.CSeq().SeqNo
	if seq <= from.remoteSeq && from.remoteSeq != 0 {
		c.mu.Unlock()
		m.reply(tx, req, 500, "CSeq Out of Order")
		return
	}
	from.remoteSeq = seq
	if req.Method == sip.INVITE && from.pendingAckTo != nil {
		c.mu.Unlock()
		m.reply(tx, req, 491, "Request Pending")
		return
	}
	if ct := req.Contact(); ct != nil && (req.Method == sip.INVITE || req.Method == sip.UPDATE) {
		from.target = ct.Address // target refresh (RFC 3261 §12.2.2)
	}
	out := c.requestOn(to, from, req.Method)
	copyHeaders(requestCopy, req, out)
	if req.Method == sip.PRACK && !to.isA {
		// RAck names the callee's own INVITE CSeq on its leg.
		if f := strings.Fields(headerValue(req, "RAck")); len(f) == 3 {
			out.AppendHeader(sip.NewHeader("RAck", f[0]+" "+strconv.FormatUint(uint64(to.invite.CSeq().SeqNo), 10)+" INVITE"))
		}
	}
	out.SetBody(req.Body())
	if req.Method == sip.INVITE {
		from.pendingAckIn = seq
		from.pendingAckOut = out.CSeq().SeqNo
		from.pendingAckTo = to
	}
	c.mu.Unlock()

	ctx, err := m.send(out)
	if err != nil {
		m.reply(tx, req, 503, "Service Unavailable")
		c.clearPending(from)
		return
	}
	if req.Method == sip.INVITE {
		ctx.OnRetransmission(func(r *sip.Response) {
			c.mu.Lock()
			ack := to.pendingAckReq
			c.mu.Unlock()
			if ack != nil && r.IsSuccess() {
				m.write(ack)
			}
		})
	}
	for {
		select {
		case r := <-ctx.Responses():
			if r == nil || r.StatusCode == 100 {
				continue
			}
			res := sip.NewResponseFromRequest(req, r.StatusCode, r.Reason, nil)
			copyHeaders(responseCopy, r, res)
			if r.StatusCode < 300 && (req.Method == sip.INVITE || req.Method == sip.UPDATE) {
				res.AppendHeader(m.contact())
			}
			if b := r.Body(); len(b) > 0 {
				res.SetBody(b)
			}
			if r.IsSuccess() {
				c.mu.Lock()
				if ct := r.Contact(); ct != nil && (req.Method == sip.INVITE || req.Method == sip.UPDATE) {
					to.target = ct.Address
				}
				if req.Method == sip.INVITE || req.Method == sip.UPDATE {
					c.refreshed(r)
				}
				c.mu.Unlock()
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
			if req.Method == sip.INVITE || req.Method == sip.UPDATE {
				// A peer that no longer answers inside its dialog is gone.
				c.terminate("peer not responding", events.SideSwitch, 408)
			}
			return
		}
	}
}

func (c *Call) clearPending(l *leg) {
	c.mu.Lock()
	l.pendingAckTo = nil
	c.mu.Unlock()
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
	c.mu.Lock()
	defer c.mu.Unlock()
	seq := req.CSeq().SeqNo
	if from.isA && seq == c.aInvite.CSeq().SeqNo {
		if c.ackedA {
			if c.b != nil && c.b.ack != nil {
				m.write(c.b.ack)
			}
			return
		}
		c.ackedA = true
		c.stopTimer(&c.retrans2x)
		b := c.b
		if b == nil || c.st != confirmed {
			return
		}
		ack := b.ack2xx(m)
		copyHeaders(bodyHeaders, req, ack)
		ack.SetBody(req.Body())
		b.setAck(ack)
		m.write(ack)
		return
	}
	if from.pendingAckTo != nil && seq == from.pendingAckIn {
		peer := from.pendingAckTo
		from.pendingAckTo = nil
		ack := c.requestOn(peer, from, sip.ACK)
		ack.CSeq().SeqNo = from.pendingAckOut
		copyHeaders(bodyHeaders, req, ack)
		ack.SetBody(req.Body())
		peer.pendingAckReq = ack
		m.write(ack)
	}
}

// HandleBye ends a call on a BYE from either side: 200 to the sender,
// BYE to the other side.
func (m *Manager) HandleBye(req *sip.Request, tx sip.ServerTransaction) {
	c, from, _ := m.find(req)
	if c == nil {
		m.reply(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	// Not kept for Timer J (32 s): a retransmitted BYE finds no call and
	// gets 481, which ends the dialog for its sender all the same; the
	// call's memory is free 32 s sooner.
	defer tx.Terminate()
	c.mu.Lock()
	defer c.mu.Unlock()
	side := events.SideCallee
	if from.isA {
		side = events.SideCaller
	}
	switch c.st {
	case confirmed:
		if !from.isA && from != c.b {
			return
		}
		c.byeBoth(from, headerValue(req, "Reason")) // the cause travels on (RFC 3326)
		c.end("BYE", side, 200)
	case early:
		if from.isA {
			// BYE before the answer works as a CANCEL (RFC 3261 §15).
			reason := headerValue(req, "Reason")
			if reason == "" {
				reason = q850.Reason(16, "")
			}
			for _, f := range c.forks {
				if f.final == 0 {
					c.cancelFork(f, reason)
				}
			}
			c.aTx.Respond(sip.NewResponseFromRequest(c.aInvite, 487, "Request Terminated", nil))
			c.end("cancelled", side, 487)
		}
	}
}

// HandleStrayResponse takes responses that match no client transaction.
// A 2xx to one of our INVITEs that arrives after its transaction ended
// means the callee did not get our ACK: send it again. The transaction
// layer keeps answered INVITE transactions only briefly (StrayWindow), so
// this is where late retransmissions land. Anything else is dropped.
func (m *Manager) HandleStrayResponse(res *sip.Response) {
	cseq := res.CSeq()
	if cseq == nil || cseq.MethodName != sip.INVITE || !res.IsSuccess() || res.CallID() == nil {
		return
	}
	l := m.tab.get(res.CallID().Value())
	if l == nil || l.isA {
		return
	}
	c := l.call
	c.mu.Lock()
	ack := l.ack
	c.mu.Unlock()
	if ack != nil {
		m.write(ack)
	}
}
