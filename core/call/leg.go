package call

import (
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
	final           int  // final status received or made up (0 while pending)
	counted         bool // its outcome counts toward the caller's final response
	ack             *sip.Request
	ackBox          *atomic.Pointer[sip.Request] // the ACK, for the transaction's retransmission hook
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
	pendingAckReq *sip.Request // ACK we sent to this leg, resent on 2xx retransmission
}

// setAck records the ACK sent for the leg's 2xx.
func (l *leg) setAck(ack *sip.Request) {
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

// ack2xx builds the ACK for the 2xx of this fork's INVITE (its CSeq
// number, method ACK); the caller sets the body.
func (l *leg) ack2xx(m *Manager) *sip.Request {
	ack := l.newRequest(sip.ACK, m)
	ack.CSeq().SeqNo = l.inviteSeq
	return ack
}
