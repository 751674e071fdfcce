package sipudp

import (
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/wheel"
)

// Server transaction states (RFC 3261 §17.2).
const (
	stProceeding = iota // no final response yet
	stCompleted         // a final response sent; absorbing retransmissions (INVITE: until the ACK)
	stConfirmed         // INVITE: the ACK came; absorbing ACK copies (Timer I)
	stTerminated
)

// serverTx is one server transaction; it implements
// sip.ServerTransaction for the handlers.
type serverTx struct {
	e      *Endpoint
	key    string
	req    *sip.Request
	dst    netip.AddrPort
	invite bool
	callID string // an INVITE's, for Endpoint.invites

	mu       sync.Mutex
	state    int
	last     []byte // the last response sent, for retransmitted requests
	final    bool
	timer    *wheel.Timer // G (retransmit) in completed, or the end (H, I, J)
	end      *wheel.Timer
	interval time.Duration
	done     chan struct{}
	doneOnce sync.Once
	err      error
	onTerm   []sip.FnTxTerminate
	onCancel []sip.FnTxCancel
}

// request serves a request from src.
func (e *Endpoint) request(req *sip.Request, src netip.AddrPort, late, admitted bool) {
	switch req.Method {
	case sip.CANCEL:
		if e.cancel(req, src) {
			return
		}
	case sip.ACK:
		if key, ok := serverKey(req, sip.INVITE); ok {
			if tx, ok := e.servers.get(key); ok {
				tx.ack()
				return
			}
		}
		// The ACK of a 2xx (a new transaction of its own, RFC 3261
		// §17.1.1.3): the handler's.
		e.dispatch(req, nil)
		return
	}
	key, ok := serverKey(req, "")
	if !ok {
		e.stateless(req, src, 400, "Bad Request")
		return
	}
	if req.Method != sip.INVITE {
		if res, ok := e.absorb.get(key, time.Now().UnixNano()); ok {
			// A copy of a request answered already: its response
			// again, to where this copy came from.
			e.writeTo(res, src)
			return
		}
	}
	// Responses go back to where the request came from (RFC 3581's
	// symmetric response routing, as sipgo did): a NAT in between, or a
	// Via that names an address we cannot reach, changes nothing.
	tx := &serverTx{e: e, key: key, req: req, dst: src, invite: req.Method == sip.INVITE,
		done: make(chan struct{})}
	if old, fresh := e.servers.add(key, tx); !fresh {
		old.retransmitted()
		return
	}
	if tx.invite {
		// Until the transaction ends, a copy read is recognised unparsed.
		if cid := req.CallID(); cid != nil {
			tx.callID = cid.Value()
		}
		e.invites.add(tx.callID, 1)
	}
	if tx.invite && e.Refuse != nil && !hasToTag(req) && (late || !admitted) {
		if res := e.Refuse(req, late); res != nil {
			tx.Respond(res)
			tx.handlerDone()
			return
		}
	}
	if tx.invite {
		// RFC 3261 §17.2.1: 100 Trying if the core is slow to answer.
		tx.mu.Lock()
		tx.timer = e.wheel.After(sip.Timer_1xx, tx.trying)
		tx.mu.Unlock()
	}
	e.dispatch(req, tx)
}

// dispatch runs the handler on the worker or on a goroutine of its own;
// once it returns, a transaction it left without a final response is
// ended (as sipgo does), one with a final response lives on its timers.
func (e *Endpoint) dispatch(req *sip.Request, tx *serverTx) {
	run := func() {
		defer func() {
			if tx != nil {
				tx.handlerDone()
			}
		}()
		var stx sip.ServerTransaction
		if tx != nil {
			stx = tx
		}
		e.Handler(req, stx)
	}
	if e.Inline == nil || e.Inline(req) {
		run()
		return
	}
	safe.Go("SIP request handler", run)
}

// stateless answers req without a transaction (it could not have one).
func (e *Endpoint) stateless(req *sip.Request, src netip.AddrPort, code int, reason string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	e.writeTo(encode(res), src)
}

// cancel handles a CANCEL that matches a pending INVITE (RFC 3261 §9.2):
// 200 to the CANCEL, 487 to the INVITE, and the INVITE's handler told.
// false: it matches none (the handler answers it, 481).
func (e *Endpoint) cancel(req *sip.Request, src netip.AddrPort) bool {
	key, ok := serverKey(req, sip.INVITE)
	if !ok {
		return false
	}
	inv, ok := e.servers.get(key)
	if !ok {
		return false
	}
	e.stateless(req, src, 200, "OK")
	inv.mu.Lock()
	if inv.final || inv.state != stProceeding {
		inv.mu.Unlock()
		return true // answered already: the CANCEL has no effect
	}
	inv.err = sip.ErrTransactionCanceled
	cbs := inv.onCancel
	invReq := inv.req
	inv.mu.Unlock()
	inv.Respond(sip.NewResponseFromRequest(invReq, 487, "Request Terminated", nil))
	// The handler learns now (Done, Err: cancelled), as from sipgo; the
	// transaction itself stays to retransmit the 487 until its ACK.
	inv.closeDone()
	for _, f := range cbs {
		f(req)
	}
	return true
}

// Respond sends res in the transaction.
func (tx *serverTx) Respond(res *sip.Response) error {
	data := encode(res)
	tx.mu.Lock()
	if tx.state != stProceeding {
		tx.mu.Unlock()
		return sip.ErrTransactionTerminated
	}
	tx.last = data
	tx.timer.Stop() // Timer_1xx, if still waiting
	code := res.StatusCode
	switch {
	case code < 200:
	case !tx.invite || code < 300:
		// The final response ends the transaction. An INVITE's 2xx:
		// its retransmission and ACK are the core's (RFC 6026). A
		// non-INVITE's: for Timer J only copies of the request are
		// answered, with this response, and the absorber does that
		// without the transaction.
		tx.final = true
		tx.mu.Unlock()
		err := tx.e.writeTo(data, tx.dst)
		if !tx.invite {
			tx.e.absorb.put(tx.key, data, time.Now().UnixNano())
		}
		tx.terminate(nil)
		return err
	default: // an INVITE's non-2xx final
		tx.final, tx.state = true, stCompleted
		// From here on only the encoded response is sent again: the
		// transaction does not hold its parsed request for Timer H.
		tx.req = nil
		tx.interval = sip.T1
		tx.timer = tx.e.wheel.After(tx.interval, tx.timerG)
		tx.end = tx.e.wheel.After(64*sip.T1, tx.timeoutH)
	}
	tx.mu.Unlock()
	return tx.e.writeTo(data, tx.dst)
}

// trying sends 100 Trying when nothing was sent within Timer_1xx.
func (tx *serverTx) trying() {
	tx.mu.Lock()
	quiet := tx.state == stProceeding && tx.last == nil
	req := tx.req
	tx.mu.Unlock()
	if quiet {
		tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))
	}
}

// timerG retransmits a final non-2xx until the ACK comes.
func (tx *serverTx) timerG() {
	tx.mu.Lock()
	if tx.state != stCompleted {
		tx.mu.Unlock()
		return
	}
	data := tx.last
	tx.interval = min(2*tx.interval, sip.T2)
	tx.timer = tx.e.wheel.After(tx.interval, tx.timerG)
	tx.mu.Unlock()
	tx.e.writeTo(data, tx.dst)
}

// timeoutH: no ACK ever came.
func (tx *serverTx) timeoutH() { tx.terminate(sip.ErrTransactionTimeout) }

// ack: the ACK of our non-2xx final.
func (tx *serverTx) ack() {
	tx.mu.Lock()
	if !tx.invite || tx.state != stCompleted {
		tx.mu.Unlock()
		return // a copy, or an ACK for a transaction we ended: absorbed
	}
	tx.state = stConfirmed
	tx.timer.Stop()
	tx.end.Stop()
	tx.end = tx.e.wheel.After(sip.T4, func() { tx.terminate(nil) }) // Timer I
	tx.mu.Unlock()
}

// retransmitted: a copy of the request; it gets the last response again.
func (tx *serverTx) retransmitted() {
	tx.mu.Lock()
	data := tx.last
	send := data != nil && (tx.state == stProceeding || tx.state == stCompleted)
	tx.mu.Unlock()
	if send {
		tx.e.writeTo(data, tx.dst)
	}
}

// handlerDone: the handler returned. A transaction without a final
// response ends now (its request was not answered: nothing to absorb).
func (tx *serverTx) handlerDone() {
	tx.mu.Lock()
	open := !tx.final
	tx.mu.Unlock()
	if open {
		tx.terminate(nil)
	}
}

// terminate ends the transaction once.
func (tx *serverTx) terminate(err error) {
	tx.mu.Lock()
	if tx.state == stTerminated {
		tx.mu.Unlock()
		return
	}
	tx.state = stTerminated
	if tx.err == nil {
		tx.err = err
	}
	tx.timer.Stop()
	tx.end.Stop()
	tx.req, tx.last = nil, nil // a call that holds its transaction holds neither
	cbs := tx.onTerm
	err = tx.err
	tx.mu.Unlock()
	tx.closeDone()
	tx.e.servers.del(tx.key)
	if tx.invite {
		tx.e.invites.add(tx.callID, -1)
	}
	for _, f := range cbs {
		f(tx.key, err)
	}
}

// Terminate ends the transaction. One with a non-2xx final response waits
// for its ACK (or Timer H) first, as sipgo's graceful end does.
func (tx *serverTx) Terminate() {
	tx.mu.Lock()
	waiting := tx.state == stCompleted || tx.state == stConfirmed
	tx.mu.Unlock()
	if waiting {
		return
	}
	tx.terminate(sip.ErrTransactionTerminated)
}

func (tx *serverTx) OnTerminate(f sip.FnTxTerminate) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == stTerminated {
		return false
	}
	tx.onTerm = append(tx.onTerm, f)
	return true
}

func (tx *serverTx) OnCancel(f sip.FnTxCancel) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == stTerminated || tx.final {
		return false
	}
	tx.onCancel = append(tx.onCancel, f)
	return true
}

func (tx *serverTx) Done() <-chan struct{} { return tx.done }

func (tx *serverTx) closeDone() { tx.doneOnce.Do(func() { close(tx.done) }) }

func (tx *serverTx) Err() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.err
}

// Acks: the ACK of a non-2xx final is absorbed here; that of a 2xx goes
// to the handler of ACK. Nothing is delivered on this channel.
func (tx *serverTx) Acks() <-chan *sip.Request { return nil }

func hasToTag(req *sip.Request) bool {
	to := req.To()
	return to != nil && to.Params.Has("tag")
}
