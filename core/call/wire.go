package call

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Wire is how the B2BUA sends: a client transaction for a request, or a
// message written outside any transaction (the ACK of a 2xx, the 2xx to
// the caller and its retransmissions). Responses inside a server
// transaction go through that transaction. The daemon uses sipgo; unit
// tests record what would be sent.
type Wire interface {
	// Request starts a client transaction. It may open a connection (a
	// TCP dial): never call it while holding a call's lock.
	Request(req *sip.Request) (sip.ClientTransaction, error)
	// Write sends msg outside any transaction.
	Write(msg sip.Message) error
}

// dialTimeout bounds how long opening a connection for a request may
// take (a TCP SYN toward a dead host is otherwise retried for minutes).
const dialTimeout = 5 * time.Second

type sipgoWire struct{ client *sipgo.Client }

// asIs tells sipgo the request is complete: add nothing.
func asIs(*sipgo.Client, *sip.Request) error { return nil }

func (w sipgoWire) Request(req *sip.Request) (sip.ClientTransaction, error) {
	if strings.EqualFold(req.Transport(), "UDP") {
		// Nothing to set up: no deadline (a timer per request) needed.
		return w.client.TransactionRequest(context.Background(), req, asIs)
	}
	// The context bounds the connection set-up only; the transaction
	// runs on its own timers.
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	return w.client.TransactionRequest(ctx, req, asIs)
}

func (w sipgoWire) Write(msg sip.Message) error {
	switch m := msg.(type) {
	case *sip.Request:
		return w.client.WriteRequest(m, asIs)
	default:
		return w.client.TransportLayer().WriteMsg(msg)
	}
}

// Packer is a Wire that can keep a message as the bytes it sends and
// send them again later. A held call keeps the ACK of its 2xx (sent again
// whenever the 2xx comes again) that way: one datagram of a few hundred
// bytes instead of a parsed request of a dozen objects.
type Packer interface {
	Pack(msg sip.Message) (send func() error, err error)
}

var errNotPacked = errors.New("call: this wire does not pack messages")

// again is a message sent outside any transaction that may have to go
// again: packed by the wire where it can, else the request itself.
type again struct {
	seq  uint32       // its CSeq number
	send func() error // the packed message; nil: req
	req  *sip.Request
}

// keep makes req (complete and addressed: nothing may change it after)
// ready to be sent, and sent again.
func (m *Manager) keep(req *sip.Request) *again {
	a := &again{seq: req.CSeq().SeqNo}
	if p, ok := m.wire.(Packer); ok {
		if send, err := p.Pack(req); err == nil {
			a.send = send
			return a
		}
	}
	a.req = req
	return a
}

// sendOn sends a through w.
func (a *again) sendOn(w Wire) error {
	if a.send != nil {
		return a.send()
	}
	return w.Write(a.req)
}

// splitWire sends UDP through one wire and the other transports through
// another.
type splitWire struct{ udp, other Wire }

func (w splitWire) Request(req *sip.Request) (sip.ClientTransaction, error) {
	if isUDP(req) {
		return w.udp.Request(req)
	}
	return w.other.Request(req)
}

func (w splitWire) Write(msg sip.Message) error {
	if isUDP(msg) {
		return w.udp.Write(msg)
	}
	return w.other.Write(msg)
}

func (w splitWire) Pack(msg sip.Message) (func() error, error) {
	if p, ok := w.udp.(Packer); ok && isUDP(msg) {
		return p.Pack(msg)
	}
	return nil, errNotPacked
}

// isUDP: the message's transport, else its top Via's.
func isUDP(msg sip.Message) bool {
	if t := msg.Transport(); t != "" {
		return strings.EqualFold(t, "UDP")
	}
	if v := msg.Via(); v != nil {
		return strings.EqualFold(v.Transport, "UDP")
	}
	return true
}
