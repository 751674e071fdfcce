package call

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// leg is one dialog of a call: the caller's (A) or one fork toward a
// callee (B). Fields are guarded by the call's mutex.
type leg struct {
	call *Call
	isA  bool

	callID    string
	localTag  string // for A: set to the winning fork's aTag at answer
	remoteTag string
	localURI  dialogURI
	localName string
	remote    dialogURI // the peer's address-of-record (To for B, From for A)
	remoteNam string
	target    dialogURI // the peer's Contact
	dest      string    // where our requests for this dialog go (latched)
	transport string
	localSeq  uint32
	remoteSeq uint32

	// B forks only (fork.go describes their life).
	invite          *sip.Request          // dropped once the call is compacted
	inviteSeq       uint32                // the INVITE's CSeq number
	inviteTx        sip.ClientTransaction // nil until the INVITE is sent
	aTag            string                // the To tag the caller sees for this fork
	provisional     bool
	abandoned       bool // the switch gave it up
	cancelled       bool // its CANCEL is sent
	cancelReason    string
	final           int    // final status received or made up (0 while pending)
	counted         bool   // its outcome counts toward the caller's final response
	ackSent         bool   // the ACK of its 2xx went out
	ack             *again // that ACK when it carries a body (sent again as it was); nil: built again when needed
	gateway         string
	responded       bool        // anything came back (even 100)
	lastProvisional time.Time   // Timer C runs from here
	timerC          *time.Timer // RFC 3261 §16.6 Timer C
	silence         *time.Timer // the hunt's invite timeout
	reap            *time.Timer // ends an abandoned fork 64*T1 after it was given up
	release         func()      // gives back the gateway channel
	outcome         func(int)   // told the final answer once (gateway statistics)
	oc              Feedback    // the target's overload control (nil: not offered)

	// A 2xx we sent on this leg, retransmitted until its ACK (timers.go).
	retrans    *time.Timer
	retransSeq uint32 // the CSeq the ACK carries

	// An INVITE relayed from this leg awaiting its ACK:
	// the peer leg and the CSeq we used there.
	pendingAckIn  uint32
	pendingAckOut uint32
	pendingAckTo  *leg
	pendingAckReq *again // ACK we sent to this leg, resent on 2xx retransmission
}

// dialogURI is one of a leg's URIs. While the call is set up it is a
// parsed sip.Uri; once the call is held only its text is kept (pack): a
// sip.Uri is 144 bytes of fields besides its strings and shares the text
// of the message it came from, and a held call has six of them. A packed
// URI is parsed again for each request the dialog sends (BYE, re-INVITE:
// seldom).
type dialogURI struct {
	p *sip.Uri // nil once packed
	s string   // the text, once packed
}

func uriOf(u sip.Uri) dialogURI { return dialogURI{p: &u} }

// get is the URI (a copy: its params are shared, not to be changed).
func (d dialogURI) get() sip.Uri {
	if d.p != nil {
		return *d.p
	}
	var u sip.Uri
	if d.s != "" {
		// Its own rendering (pack), or a replicated record checked at
		// adoption: it parses.
		_ = sip.ParseUri(d.s, &u)
	}
	return u
}

// set replaces the URI (a target refresh), in the form the leg is in.
func (d *dialogURI) set(u sip.Uri) {
	if d.p == nil && d.s != "" {
		d.s = u.String()
		return
	}
	d.p = &u
}

func (d dialogURI) String() string {
	if d.p != nil {
		return d.p.String()
	}
	return d.s
}

// pack keeps the URI as its text only. Not one with headers ("?..."):
// sipgo's parser does not give such a text back as it was.
func (d *dialogURI) pack() {
	if d.p != nil && len(d.p.Headers) == 0 {
		d.s, d.p = d.p.String(), nil
	}
}

// pack keeps the leg's URIs as text (a held call).
func (l *leg) pack() {
	l.localURI.pack()
	l.remote.pack()
	l.target.pack()
}

// newRequest builds an in-dialog request on l with a fresh CSeq (for ACK
// and CANCEL the caller sets CSeq itself).
func (l *leg) newRequest(method sip.RequestMethod, m *Manager) *sip.Request {
	return l.newRequestTag(method, m, l.localTag)
}

// newRequestTag is newRequest with an explicit local tag (toward the
// caller in the early state each fork shows its own tag).
func (l *leg) newRequestTag(method sip.RequestMethod, m *Manager, tag string) *sip.Request {
	target := l.target.get()
	req := sip.NewRequest(method, *target.Clone())
	req.AppendHeader(m.via(l.transport))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{DisplayName: l.localName, Address: l.localURI.get(), Params: sip.NewParams()}
	from.Params.Add("tag", tag)
	req.AppendHeader(from)
	to := &sip.ToHeader{DisplayName: l.remoteNam, Address: l.remote.get(), Params: sip.NewParams()}
	if l.remoteTag != "" {
		to.Params.Add("tag", l.remoteTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	seq := l.localSeq
	if method != sip.ACK && method != sip.CANCEL {
		l.localSeq++
		seq = l.localSeq
		l.call.touch()
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	if method != sip.BYE && method != sip.CANCEL && method != sip.ACK {
		req.AppendHeader(m.contact())
	}
	m.prepare(req, l.dest, l.transport)
	return req
}

// sendAck2xx sends the ACK for the 2xx of this fork's INVITE with the body
// (and its headers) of from, the caller's ACK (nil: none). One with a
// body is kept for the 2xx's retransmissions; one without is built again
// if the 2xx comes again (seldom: a held call keeps no datagram for it).
// Caller holds c.mu.
func (c *Call) sendAck2xx(l *leg, from *sip.Request) {
	a := c.sendAck(l.ack2xx(c.m), from)
	l.ackSent = true
	if from != nil && len(from.Body()) > 0 {
		l.ack = a
	}
}

// ackAgain sends the ACK of l's 2xx again: the 2xx came again, so our ACK
// was lost. Caller holds c.mu.
func (c *Call) ackAgain(l *leg) {
	if l.ack != nil {
		c.writeAgain(l.ack)
		return
	}
	ack := l.ack2xx(c.m)
	ack.SetBody(nil)
	c.write(ack)
}

// sendAck gives ack the body (and its headers) of from (nil: no body),
// queues it and returns it kept, to be sent again when its 2xx comes
// again. Caller holds c.mu.
func (c *Call) sendAck(ack, from *sip.Request) *again {
	if from != nil {
		copyHeaders(bodyHeaders, from, ack)
		ack.SetBody(from.Body())
	} else {
		ack.SetBody(nil)
	}
	a := c.m.keep(ack)
	c.writeAgain(a)
	return a
}

// ack2xx builds the ACK for the 2xx of this fork's INVITE (its CSeq
// number, method ACK); the caller sets the body.
func (l *leg) ack2xx(m *Manager) *sip.Request {
	ack := l.newRequest(sip.ACK, m)
	ack.CSeq().SeqNo = l.inviteSeq
	return ack
}
