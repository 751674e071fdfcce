package call

import (
	"strings"
	"sync/atomic"
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
	localURI  sip.Uri
	localName string
	remote    sip.Uri // the peer's address-of-record (To for B, From for A)
	remoteNam string
	target    sip.Uri // the peer's Contact
	dest      string  // where our requests for this dialog go (latched)
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
	final           int                    // final status received or made up (0 while pending)
	counted         bool                   // its outcome counts toward the caller's final response
	ack             *again                 // the ACK of its 2xx
	ackBox          *atomic.Pointer[again] // the ACK, for the transaction's retransmission hook
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

// detached is u with strings of its own, in one allocation: a URI cut
// from a parsed header shares that header's text, and a held call would
// keep every such text alive (hundreds of bytes a call) for a few words.
func detached(u sip.Uri) sip.Uri {
	parts := make([]string, 0, 4+2*(len(u.UriParams)+len(u.Headers)))
	parts = append(parts, u.Scheme, u.User, u.Password, u.Host)
	for _, kv := range u.UriParams {
		parts = append(parts, kv.K, kv.V)
	}
	for _, kv := range u.Headers {
		parts = append(parts, kv.K, kv.V)
	}
	all := strings.Join(parts, "")
	next := func() string {
		s := all[:len(parts[0])]
		all, parts = all[len(parts[0]):], parts[1:]
		return s
	}
	out := u
	out.Scheme, out.User, out.Password, out.Host = next(), next(), next(), next()
	out.UriParams, out.Headers = detachedParams(u.UriParams, next), detachedParams(u.Headers, next)
	return out
}

func detachedParams(p sip.HeaderParams, next func() string) sip.HeaderParams {
	if len(p) == 0 {
		return p
	}
	out := make(sip.HeaderParams, len(p))
	for i := range p {
		out[i].K = next()
		out[i].V = next()
	}
	return out
}

// setAck records the ACK sent for the leg's 2xx.
func (l *leg) setAck(ack *again) {
	l.ack = ack
	if l.ackBox != nil {
		l.ackBox.Store(ack)
	}
}

// newRequest builds an in-dialog request on l with a fresh CSeq (for ACK
// and CANCEL the caller sets CSeq itself).
func (l *leg) newRequest(method sip.RequestMethod, m *Manager) *sip.Request {
	return l.newRequestTag(method, m, l.localTag)
}

// newRequestTag is newRequest with an explicit local tag (toward the
// caller in the early state each fork shows its own tag).
func (l *leg) newRequestTag(method sip.RequestMethod, m *Manager, tag string) *sip.Request {
	req := sip.NewRequest(method, *l.target.Clone())
	req.AppendHeader(m.via(l.transport))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{DisplayName: l.localName, Address: l.localURI, Params: sip.NewParams()}
	from.Params.Add("tag", tag)
	req.AppendHeader(from)
	to := &sip.ToHeader{DisplayName: l.remoteNam, Address: l.remote, Params: sip.NewParams()}
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
// (and its headers) of from, the caller's ACK (nil: none), and keeps it
// for the 2xx's retransmissions. Caller holds c.mu.
func (c *Call) sendAck2xx(l *leg, from *sip.Request) {
	l.setAck(c.sendAck(l.ack2xx(c.m), from))
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
