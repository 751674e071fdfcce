// Package sipudp is the switch's own SIP over UDP: the receive path and
// the transaction layer (RFC 3261 §17) for the socket calls come in on.
// sipgo stays the SIP library (messages, parser, TCP and TLS); this
// package replaces its UDP transport and transaction layer, which start a
// goroutine for every datagram and a runtime timer for every
// transaction.
//
// The path of a datagram:
//
//	readers (a few goroutines on the socket)
//	  -> filter (core/gate: admission, overload refusal, mending)
//	  -> worker chosen by the Call-ID (one call's messages stay ordered
//	     on one long-lived goroutine; a full queue drops the datagram,
//	     and UDP's retransmission brings it back)
//	  -> parse (sipgo's parser), transaction match:
//	       request: a retransmission gets the last response again; ACK of
//	       a non-2xx and CANCEL of a pending INVITE are handled here;
//	       a new request creates a server transaction and goes to the
//	       handler (on the worker, or on a goroutine of its own for the
//	       methods whose handlers wait: Inline decides)
//	       response: to its client transaction, else to Stray
//
// Transaction timers (retransmissions, timeouts) run on one timer wheel
// (core/wheel). Responses go to the address the request came from (RFC
// 3581), as the top Via says after core/inbound mended it.
package sipudp

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/blocking"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/udpbatch"
	"github.com/softswitch/softswitch/core/wheel"
)

// Handler serves a request in its server transaction.
type Handler func(req *sip.Request, tx sip.ServerTransaction)

// Endpoint is the UDP socket's stack.
type Endpoint struct {
	// Conn is the socket; writes go through it (core/udpsrc picks the
	// source address).
	Conn   net.PacketConn
	Parser *sip.Parser
	// Filter sees each datagram first; nil from it drops the datagram.
	Filter func(data []byte, src netip.AddrPort, now time.Time) []byte
	// Handler serves new requests; Inline says whether it may run on the
	// worker (it must then not wait on the network or a timer).
	Handler Handler
	Inline  func(req *sip.Request) bool
	// Refuse, when set, may refuse a new call (an INVITE without a To
	// tag that is no copy of one in progress) before its handler runs:
	// the response it returns is sent in the transaction (retransmitted
	// until its ACK, and again for copies of the INVITE). late: the
	// INVITE waited longer than LateAfter in its queue (its caller has
	// retransmitted it already): refuse it whatever the load is said to be.
	Refuse func(req *sip.Request, late bool) *sip.Response
	// Shedding, when set, says cheaply whether the switch is in an
	// overload episode (it is asked once for every new call): new calls
	// are then held to QueueShed waiting. Shed decides for one (nil:
	// admit it) as it is read, before it is parsed (shedFast): the
	// request is no copy of an INVITE with a transaction, and Shed
	// checks the calls in progress and the cap on them. full: the
	// queues hold as many new calls as they may (QueueNew on the call's
	// worker, or QueueShed in an episode); Shed refuses it (unless it is
	// a call in progress).
	Shedding func() bool
	Shed     func(callID []byte, full bool) *Refusal
	// Stray gets responses that match no client transaction.
	Stray func(res *sip.Response)
	// Sent, when set, sees each datagram sent (retransmissions too).
	Sent func(data []byte)
	// Unparseable hears of datagrams the parser refused.
	Unparseable func(data []byte, err error)
	Log         *slog.Logger
	// Workers is the number of worker goroutines (0: 4 per processor, at
	// least 8): enough that a handler that holds its worker briefly (a
	// store lookup) does not stall the calls hashed to the others.
	Workers int
	// QueueLen is each worker's queue length (0: 2048).
	QueueLen int
	// QueueNew is how many new calls may wait in one worker's queue
	// (0: 64); another is refused from its bytes (shedFast) in or out
	// of an episode, so that the calls admitted are answered well
	// within T1 at a step in the load, before the control's samples
	// have seen it. Only where shedFast runs (Shed
	// set, LateAfter under T1); a soft bound (readers check and queue
	// apart, so it may be passed by one call per reader).
	QueueNew int
	// QueueShed is how many new calls may wait in all the workers'
	// queues together while the overload control sheds (Shedding says
	// so) once the queue stands (the last new call a worker took had
	// waited a quarter of LateAfter); another is refused from its bytes
	// (0: 8 per worker). In an episode this is the admission: a new
	// call comes in only as the workers take one, and waits tens of
	// milliseconds at most, so that the switch carries what it can
	// serve now, however that moves (docs/architecture.md). A burst
	// (what came during a CPU quota's pause, read at once) passes: its
	// calls have not waited yet. Outside an episode QueueNew alone
	// bounds the queue.
	QueueShed int
	// LateAfter is the message age (from read to served) above which a
	// message counts as late in Load (0: none is).
	LateAfter time.Duration
	// Handled, when set, is told each datagram's delay from its read to
	// the end of its handling (R21's message processing delay), and when
	// that end was.
	Handled func(delay time.Duration, now time.Time)

	wheel     *wheel.Wheel
	seed      maphash.Seed
	queues    []lane
	queueNew  int          // QueueNew or its default
	queueShed int          // QueueShed or its default
	fresh     atomic.Int64 // new calls waiting in the workers' queues
	freshWait atomic.Int64 // how long the new call a worker took last had waited (ns)
	shedWait  int64        // in an episode, a queue of QueueShed new calls refuses only past this wait (ns)
	servers   txTable[*serverTx]
	absorb    absorber // finished non-INVITE server transactions, for copies of their requests
	clients   txTable[*clientTx]
	invites   countSet     // Call-IDs of the INVITE server transactions alive
	refusing  atomic.Int64 // when a refusal was last made from the bytes (unix ns)
	served    atomic.Int64 // messages served since the last Load
	late      atomic.Int64 // of which older than LateAfter
	minAge    atomic.Int64 // the least of their ages (ns); MaxInt64: none served
	dropped   atomic.Int64 // datagrams dropped on a full queue
	closed    atomic.Bool

	out       chan udpbatch.Datagram // to the writer
	sendDrops atomic.Int64
}

type item struct {
	data []byte
	src  netip.AddrPort
	at   int64 // when it was read (unix ns)
	late bool  // a new call that waited longer than LateAfter
	// admitted: the overload control admitted this new call as it was
	// read (shedFast); only waiting too long refuses it now.
	admitted bool
}

// lane is a worker's two queues: what keeps calls in progress going
// (responses, ACK, BYE, CANCEL, in-dialog requests: hi) is served before
// new work (new INVITEs, registrations, probes: lo). Under load the calls
// the switch took complete; the new ones wait, and are refused once they
// waited too long.
type lane struct{ hi, lo chan item }

// ErrClosed is returned by Request and Write after the endpoint stopped.
var ErrClosed = errors.New("sipudp: endpoint closed")

// Serve reads and serves until ctx ends or the socket is closed.
func (e *Endpoint) Serve(ctx context.Context) error {
	e.init()
	stop := make(chan struct{})
	defer close(stop)
	safe.Loop("SIP timer wheel", stop, func() { e.wheel.Run(stop) })
	safe.Loop("SIP UDP writer", stop, func() { e.write(stop) })
	var wg sync.WaitGroup
	for i := range e.queues {
		wg.Add(1)
		l := e.queues[i]
		safe.Go("SIP worker", func() { defer wg.Done(); e.work(l) }, wg.Done)
	}
	readers := max(1, min(blocking.Procs(), 4))
	errc := make(chan error, readers)
	for range readers {
		safe.Go("SIP UDP reader", func() { errc <- e.read() }, func() { errc <- errors.New("UDP reader failed") })
	}
	var err error
	ended := 0 // readers that returned
	select {
	case <-ctx.Done():
	case err = <-errc:
		ended++
	}
	e.closed.Store(true)
	e.Conn.Close()
	// Every reader has returned before the queues it sends on close.
	for ; ended < readers; ended++ {
		<-errc
	}
	for _, l := range e.queues {
		close(l.hi)
		close(l.lo)
	}
	wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// init prepares what Request needs before Serve runs (the daemon starts
// trunk registrations and probes right away).
func (e *Endpoint) init() {
	if e.wheel != nil {
		return
	}
	e.wheel = wheel.New(10 * time.Millisecond)
	e.seed = maphash.MakeSeed()
	n := e.Workers
	if n <= 0 {
		n = max(8, 4*blocking.Procs())
	}
	ql := e.QueueLen
	if ql <= 0 {
		ql = 2048
	}
	e.queueNew = e.QueueNew
	if e.queueNew <= 0 {
		e.queueNew = 64
	}
	e.queueNew = min(e.queueNew, ql) // else the bound is never met
	e.queueShed = e.QueueShed
	if e.queueShed <= 0 {
		e.queueShed = 8 * n
	}
	e.shedWait = int64(e.LateAfter / 4)
	e.queues = make([]lane, n)
	for i := range e.queues {
		e.queues[i] = lane{hi: make(chan item, ql), lo: make(chan item, ql)}
	}
	e.servers.init()
	e.absorb.init(e.seed)
	e.clients.init()
	e.invites.init()
	e.minAge.Store(math.MaxInt64)
	e.out = make(chan udpbatch.Datagram, 16384)
}

// Init makes the endpoint ready for Request before Serve starts.
func (e *Endpoint) Init() *Endpoint { e.init(); return e }

// read reads datagrams until the socket closes: many per system call
// (recvmmsg, core/udpbatch) on a plain socket, one at a time on one that
// notes each datagram's destination (core/udpsrc).
func (e *Endpoint) read() error {
	if uc, ok := e.Conn.(*net.UDPConn); ok {
		if b, err := udpbatch.New(uc, 16); err == nil {
			return e.readBatch(b)
		}
	}
	buf := make([]byte, 65535)
	for {
		n, addr, err := e.Conn.ReadFrom(buf)
		if err != nil {
			if err := e.readError(err); err != nil {
				return err
			}
			continue
		}
		if ua, ok := addr.(*net.UDPAddr); ok {
			src := ua.AddrPort()
			e.receive(buf[:n], netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), nil)
		}
	}
}

func (e *Endpoint) readBatch(b *udpbatch.Conn) error {
	msgs := make([]udpbatch.Datagram, 16)
	for i := range msgs {
		msgs[i].Data = make([]byte, 65535)
	}
	// The refusals of a batch leave in one system call, from here: under
	// overload most of what is read is refused, and a datagram handed to
	// the writer one by one costs a wake-up and a system call each.
	refusals := make([]udpbatch.Datagram, 0, len(msgs))
	for {
		if len(refusals) > 0 {
			e.sendNow(b, refusals)
			clear(refusals)
			refusals = refusals[:0]
		}
		n, err := b.Read(msgs)
		if err != nil {
			if err := e.readError(err); err != nil {
				return err
			}
			continue
		}
		for i := range n {
			e.receive(msgs[i].Data[:msgs[i].N], msgs[i].Addr, &refusals)
		}
	}
}

// readError: nil to read on, else why reading ends.
func (e *Endpoint) readError(err error) error {
	if e.closed.Load() || errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	return err
}

// receive passes one datagram through the filter to its worker;
// refusals made from the bytes are queued on out (nil: to the writer).
func (e *Endpoint) receive(data []byte, src netip.AddrPort, out *[]udpbatch.Datagram) {
	if len(data) <= 4 && len(bytes.Trim(data, "\r\n\x00")) == 0 {
		return // keep-alive
	}
	now := time.Now()
	if e.Filter != nil {
		if data = e.Filter(data, src, now); len(data) == 0 {
			return
		}
	}
	if e.refusalACK(data, now) {
		return
	}
	id, fresh := route(data)
	l := e.queues[e.queueOf(id)]
	admitted := false
	if fresh {
		var done bool
		if done, admitted = e.shedFast(data, id, src, len(l.lo) >= e.queueNew, out); done {
			return
		}
	}
	// The datagram leaves the read buffer here: one copy, its own.
	msg := make([]byte, len(data))
	copy(msg, data)
	q := l.hi
	if fresh {
		q = l.lo
	}
	if fresh {
		e.fresh.Add(1)
	}
	select {
	case q <- item{data: msg, src: src, at: now.UnixNano(), admitted: admitted}:
	default:
		if fresh {
			e.fresh.Add(-1)
		}
		e.dropped.Add(1) // the sender retransmits; the overload control sees the queue
	}
}

// queueOf hashes the Call-ID so that a call's messages stay on one worker.
func (e *Endpoint) queueOf(callID []byte) int {
	return int(maphash.Bytes(e.seed, callID) % uint64(len(e.queues)))
}

func (e *Endpoint) work(l lane) {
	late := int64(e.LateAfter)
	hi, lo := l.hi, l.lo
	for hi != nil || lo != nil {
		var it item
		var ok, fresh bool
		select { // what is in progress first
		case it, ok = <-hi:
		default:
			select {
			case it, ok = <-hi:
			case it, ok = <-lo:
				fresh = true
			}
		}
		if !ok { // that queue is closed: the endpoint stops
			if fresh {
				lo = nil
			} else {
				hi = nil
			}
			continue
		}
		age := time.Now().UnixNano() - it.at
		if fresh {
			e.fresh.Add(-1)
			e.freshWait.Store(age)
		}
		e.served.Add(1)
		for m := e.minAge.Load(); age < m && !e.minAge.CompareAndSwap(m, age); m = e.minAge.Load() {
		}
		if late > 0 && age > late {
			e.late.Add(1)
			it.late = fresh // a new call that waited too long
		}
		e.handle(it)
		if e.Handled != nil {
			now := time.Now()
			e.Handled(time.Duration(now.UnixNano()-it.at), now)
		}
	}
}

// handle runs one datagram; a panic costs that datagram only.
func (e *Endpoint) handle(it item) {
	defer safe.Recover("SIP worker")
	msg, err := e.Parser.ParseSIP(it.data)
	if err != nil {
		if e.Unparseable != nil {
			e.Unparseable(it.data, err)
		}
		return
	}
	msg.SetTransport("UDP")
	msg.SetSource(it.src.String())
	switch m := msg.(type) {
	case *sip.Request:
		e.request(m, it.src, it.late, it.admitted)
	case *sip.Response:
		e.response(m)
	}
}

// Load reports the workers' queues' fill (0..1, on average: one worker
// held up by a slow handler is no overload of the switch), the share of
// the messages served since the last call that were late and the least
// of their ages (as CoDel reads a queue: when even the quickest message
// waited, the queue stands; bursts and a CPU quota's pauses delay some
// messages, not all): the overload control's samples.
func (e *Endpoint) Load() (queue, late float64, delay time.Duration) {
	n, c := 0, 0
	for _, l := range e.queues {
		n += len(l.hi) + len(l.lo)
		c += cap(l.hi) + cap(l.lo)
	}
	if c > 0 {
		queue = float64(n) / float64(c)
	}
	if n := e.served.Swap(0); n > 0 {
		late = float64(e.late.Swap(0)) / float64(n)
		if m := e.minAge.Swap(math.MaxInt64); m != math.MaxInt64 {
			delay = time.Duration(m)
		}
	}
	return queue, late, delay
}

// Dropped is the number of datagrams dropped because a worker's queue
// was full.
func (e *Endpoint) Dropped() int64 { return e.dropped.Load() }

// SendDrops is the number of datagrams dropped because the writer's
// queue was full.
func (e *Endpoint) SendDrops() int64 { return e.sendDrops.Load() }

// Transactions is the number of server and client transactions alive.
func (e *Endpoint) Transactions() (servers, clients int) {
	return e.servers.len(), e.clients.len()
}
