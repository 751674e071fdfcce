package sipudp

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/wheel"
)

// Client transaction states (RFC 3261 §17.1).
const (
	ctCalling    = iota // sent, nothing back yet
	ctProceeding        // a provisional came
	ctAccepted          // INVITE: a 2xx came; its retransmissions go to OnRetransmission (Timer M)
	ctCompleted         // a final non-2xx came; absorbing its retransmissions (Timer D, K)
	ctTerminated
)

// clientTx is one client transaction; it implements sip.ClientTransaction.
type clientTx struct {
	e      *Endpoint
	key    string
	req    *sip.Request
	data   []byte
	dst    netip.AddrPort
	invite bool

	mu        sync.Mutex
	state     int
	timer     *wheel.Timer // A or E (retransmission)
	end       *wheel.Timer // B or F (timeout), then D, K or M
	interval  time.Duration
	ack       []byte // the ACK of a non-2xx final, sent again for its copies
	responses chan *sip.Response
	done      chan struct{}
	err       error
	onTerm    []sip.FnTxTerminate
	onRetrans []sip.FnTxResponse
}

// Request sends req (complete, with its Via and branch) in a new client
// transaction. It does not block.
func (e *Endpoint) Request(req *sip.Request) (sip.ClientTransaction, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	e.init()
	v := req.Via()
	if v == nil {
		return nil, errors.New("sipudp: request without Via")
	}
	branch, _ := v.Params.Get("branch")
	if branch == "" {
		return nil, errors.New("sipudp: request without branch")
	}
	dst, err := requestDest(req)
	if err != nil {
		return nil, err
	}
	data := encode(req)
	tx := &clientTx{e: e, key: clientKey(branch, req.Method), req: req, data: data, dst: dst,
		invite: req.Method == sip.INVITE, responses: make(chan *sip.Response, 8), done: make(chan struct{})}
	if _, fresh := e.clients.add(tx.key, tx); !fresh {
		return nil, errors.New("sipudp: a transaction with this branch is running")
	}
	tx.mu.Lock()
	tx.interval = sip.T1
	tx.timer = e.wheel.After(tx.interval, tx.retransmit) // Timer A / E
	tx.end = e.wheel.After(64*sip.T1, tx.timeout)        // Timer B / F
	tx.mu.Unlock()
	// A full send queue loses the datagram as a full network would: the
	// retransmission timer sends it again. Only a closed endpoint fails.
	if err := e.writeTo(data, dst); errors.Is(err, ErrClosed) {
		tx.terminate(errors.Join(err, sip.ErrTransactionTransport))
		return nil, err
	}
	return tx, nil
}

// retransmit: Timer A (INVITE: doubling) or E (non-INVITE: doubling up to
// T2, at T2 once a provisional came).
func (tx *clientTx) retransmit() {
	tx.mu.Lock()
	if tx.state != ctCalling && (tx.invite || tx.state != ctProceeding) {
		tx.mu.Unlock()
		return
	}
	if tx.invite {
		tx.interval *= 2
	} else if tx.state == ctProceeding {
		tx.interval = sip.T2
	} else {
		tx.interval = min(2*tx.interval, sip.T2)
	}
	tx.timer = tx.e.wheel.After(tx.interval, tx.retransmit)
	data := tx.data
	tx.mu.Unlock()
	tx.e.writeTo(data, tx.dst)
}

// timeout: Timer B or F, nothing final came.
func (tx *clientTx) timeout() {
	tx.mu.Lock()
	pending := tx.state == ctCalling || tx.state == ctProceeding && !tx.invite
	tx.mu.Unlock()
	if pending {
		tx.terminate(sip.ErrTransactionTimeout)
	}
}

// response: a response that matched the transaction.
func (e *Endpoint) response(res *sip.Response) {
	v := res.Via()
	cseq := res.CSeq()
	if v != nil && cseq != nil {
		branch, _ := v.Params.Get("branch")
		if tx, ok := e.clients.get(clientKey(branch, cseq.MethodName)); ok {
			tx.receive(res)
			return
		}
	}
	if e.Stray != nil {
		e.Stray(res)
	}
}

func (tx *clientTx) receive(res *sip.Response) {
	code := res.StatusCode
	tx.mu.Lock()
	switch tx.state {
	case ctTerminated:
		tx.mu.Unlock()
		return
	case ctAccepted:
		cbs := tx.onRetrans
		tx.mu.Unlock()
		if code >= 200 && code < 300 {
			for _, f := range cbs {
				f(res)
			}
		}
		return
	case ctCompleted:
		ack := tx.ack
		tx.mu.Unlock()
		if ack != nil && code >= 300 {
			tx.e.writeTo(ack, tx.dst) // a copy of the final: the ACK again
		}
		return
	}
	switch {
	case code < 200:
		if tx.state == ctCalling {
			tx.state = ctProceeding
			if tx.invite {
				tx.timer.Stop()
				tx.end.Stop() // after a provisional the core times the INVITE out (Timer C)
			}
		}
	case tx.invite && code < 300:
		tx.state = ctAccepted
		tx.timer.Stop()
		tx.end.Stop()
		// Nothing is sent again from here: an answered call does not
		// hold its INVITE for Timer M (32 s).
		tx.req, tx.data = nil, nil
		tx.end = tx.e.wheel.After(sip.Timer_M, func() { tx.terminate(nil) })
	case tx.invite:
		tx.state = ctCompleted
		tx.timer.Stop()
		tx.end.Stop()
		tx.ack = encode(ackFor(tx.req, res))
		tx.req, tx.data = nil, nil // Timer D keeps only the ACK
		tx.end = tx.e.wheel.After(sip.Timer_D, func() { tx.terminate(nil) })
	default:
		tx.state = ctCompleted
		tx.timer.Stop()
		tx.end.Stop()
		tx.req, tx.data = nil, nil                                      // nothing is sent again
		tx.end = tx.e.wheel.After(sip.T4, func() { tx.terminate(nil) }) // Timer K
	}
	ack := tx.ack
	tx.deliver(res)
	tx.mu.Unlock()
	if ack != nil && tx.invite && code >= 300 {
		tx.e.writeTo(ack, tx.dst)
	}
}

// deliver passes res to the reader of Responses; a full channel (a peer
// flooding provisionals, a reader gone) loses its oldest provisional, never
// blocks the worker. Caller holds tx.mu (one deliverer at a time).
func (tx *clientTx) deliver(res *sip.Response) {
	for {
		select {
		case tx.responses <- res:
			return
		default:
		}
		select {
		case <-tx.responses:
		default:
		}
	}
}

// ackFor is the ACK of a non-2xx final response (RFC 3261 §17.1.1.3):
// hop by hop, in the INVITE's transaction (same branch).
func ackFor(inv *sip.Request, res *sip.Response) *sip.Request {
	ack := sip.NewRequest(sip.ACK, inv.Recipient)
	ack.AppendHeader(sip.HeaderClone(inv.Via()))
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&mf)
	for _, h := range inv.GetHeaders("Route") {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	ack.AppendHeader(sip.HeaderClone(inv.From()))
	if to := res.To(); to != nil {
		ack.AppendHeader(sip.HeaderClone(to))
	} else {
		ack.AppendHeader(sip.HeaderClone(inv.To()))
	}
	ack.AppendHeader(sip.HeaderClone(inv.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	ack.SetBody(nil)
	return ack
}

// terminate ends the transaction once.
func (tx *clientTx) terminate(err error) {
	tx.mu.Lock()
	if tx.state == ctTerminated {
		tx.mu.Unlock()
		return
	}
	tx.state = ctTerminated
	tx.err = err
	tx.timer.Stop()
	tx.end.Stop()
	tx.req, tx.data, tx.ack = nil, nil, nil
	cbs := tx.onTerm
	close(tx.done)
	tx.mu.Unlock()
	tx.e.clients.del(tx.key)
	for _, f := range cbs {
		f(tx.key, err)
	}
}

// Terminate ends the transaction now (the core gave it up).
func (tx *clientTx) Terminate() { tx.terminate(sip.ErrTransactionTerminated) }

func (tx *clientTx) OnTerminate(f sip.FnTxTerminate) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == ctTerminated {
		return false
	}
	tx.onTerm = append(tx.onTerm, f)
	return true
}

// OnRetransmission hears the 2xx copies that come while the transaction
// is accepted (Timer M).
func (tx *clientTx) OnRetransmission(f sip.FnTxResponse) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == ctTerminated {
		return false
	}
	tx.onRetrans = append(tx.onRetrans, f)
	return true
}

func (tx *clientTx) Responses() <-chan *sip.Response { return tx.responses }
func (tx *clientTx) Done() <-chan struct{}           { return tx.done }

func (tx *clientTx) Err() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.err
}
