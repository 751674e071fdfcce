package call

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/events"
)

// The call package's own test bed: a Wire and transactions that record
// what the B2BUA sends and let a test play the callee's and the caller's
// part, without a network. (The system tests drive the real daemon.)

type fakeWire struct {
	mu      sync.Mutex
	written []sip.Message
	txs     chan *fakeClientTx
}

func newFakeWire() *fakeWire { return &fakeWire{txs: make(chan *fakeClientTx, 64)} }

func (w *fakeWire) Request(req *sip.Request) (sip.ClientTransaction, error) {
	tx := &fakeClientTx{req: req, responses: make(chan *sip.Response, 16), done: make(chan struct{})}
	w.txs <- tx
	return tx, nil
}

func (w *fakeWire) Write(msg sip.Message) error {
	w.mu.Lock()
	w.written = append(w.written, msg)
	w.mu.Unlock()
	return nil
}

// Pack is the UDP wire's: the message's bytes now, sent (parsed again, as
// the peer would) each time.
func (w *fakeWire) Pack(msg sip.Message) (func() error, error) {
	data := []byte(msg.String())
	return func() error {
		m, err := sip.ParseMessage(data)
		if err != nil {
			return err
		}
		return w.Write(m)
	}, nil
}

// writtenRequests is what was written outside transactions with method m.
func (w *fakeWire) writtenRequests(m sip.RequestMethod) []*sip.Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*sip.Request
	for _, x := range w.written {
		if r, ok := x.(*sip.Request); ok && r.Method == m {
			out = append(out, r)
		}
	}
	return out
}

func (w *fakeWire) writtenResponses() []*sip.Response {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*sip.Response
	for _, x := range w.written {
		if r, ok := x.(*sip.Response); ok {
			out = append(out, r)
		}
	}
	return out
}

// next waits for the next client transaction the B2BUA starts.
func (w *fakeWire) next(t *testing.T, method sip.RequestMethod) *fakeClientTx {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case tx := <-w.txs:
			if tx.req.Method == method {
				return tx
			}
		case <-deadline:
			t.Fatalf("no %s sent", method)
			return nil
		}
	}
}

// none checks that no client transaction of method starts within d.
func (w *fakeWire) none(t *testing.T, method sip.RequestMethod, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case tx := <-w.txs:
			if tx.req.Method == method {
				t.Fatalf("unexpected %s:\n%s", method, tx.req)
			}
		case <-deadline:
			return
		}
	}
}

type fakeClientTx struct {
	req       *sip.Request
	responses chan *sip.Response
	done      chan struct{}
	once      sync.Once
	mu        sync.Mutex
	err       error
	retrans   func(*sip.Response)
}

func (tx *fakeClientTx) Responses() <-chan *sip.Response { return tx.responses }
func (tx *fakeClientTx) Done() <-chan struct{}           { return tx.done }
func (tx *fakeClientTx) Err() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.err
}
func (tx *fakeClientTx) Terminate() { tx.end(sip.ErrTransactionCanceled) }
func (tx *fakeClientTx) end(err error) {
	tx.once.Do(func() {
		tx.mu.Lock()
		tx.err = err
		tx.mu.Unlock()
		close(tx.done)
	})
}
func (tx *fakeClientTx) OnTerminate(sip.FnTxTerminate) bool { return true }
func (tx *fakeClientTx) OnRetransmission(f sip.FnTxResponse) bool {
	tx.mu.Lock()
	tx.retrans = f
	tx.mu.Unlock()
	return true
}
func (tx *fakeClientTx) terminated() bool {
	select {
	case <-tx.done:
		return true
	default:
		return false
	}
}

// reply makes the callee answer tx's request with code; to-tag "b-tag".
func (tx *fakeClientTx) reply(code int, hdrs ...string) *sip.Response {
	res := sip.NewResponseFromRequest(tx.req, code, reasonPhrase(code), nil)
	if to := res.To(); to != nil && code > 100 {
		setTag(to, "b-tag")
	}
	for _, h := range hdrs {
		k, v, _ := strings.Cut(h, ": ")
		res.AppendHeader(sip.NewHeader(k, v))
	}
	if code >= 200 && code < 300 {
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "192.0.2.20", Port: 5060}})
	}
	tx.responses <- res
	return res
}

type fakeServerTx struct {
	req       *sip.Request
	cancelled bool
	mu        sync.Mutex
	res       []*sip.Response
	onCancel  sip.FnTxCancel
	done      chan struct{}
	once      sync.Once
	got       chan *sip.Response
}

func newFakeServerTx(req *sip.Request) *fakeServerTx {
	return &fakeServerTx{req: req, done: make(chan struct{}), got: make(chan *sip.Response, 64)}
}

func (tx *fakeServerTx) Respond(res *sip.Response) error {
	tx.mu.Lock()
	tx.res = append(tx.res, res)
	tx.mu.Unlock()
	tx.got <- res
	return nil
}
func (tx *fakeServerTx) Acks() <-chan *sip.Request          { return nil }
func (tx *fakeServerTx) Terminate()                         { tx.once.Do(func() { close(tx.done) }) }
func (tx *fakeServerTx) OnTerminate(sip.FnTxTerminate) bool { return true }
func (tx *fakeServerTx) Done() <-chan struct{}              { return tx.done }
func (tx *fakeServerTx) Err() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.cancelled {
		return sip.ErrTransactionCanceled
	}
	return nil
}

// OnCancel is false once cancelled, as sipgo's.
func (tx *fakeServerTx) OnCancel(f sip.FnTxCancel) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.onCancel = f
	return !tx.cancelled
}

// cancel plays sipgo's part on a CANCEL: the hook, then 487.
func (tx *fakeServerTx) cancel(reason string) {
	c := sip.NewRequest(sip.CANCEL, tx.req.Recipient)
	if reason != "" {
		c.AppendHeader(sip.NewHeader("Reason", reason))
	}
	tx.mu.Lock()
	f := tx.onCancel
	tx.cancelled = true
	tx.mu.Unlock()
	if f != nil {
		f(c)
	}
	tx.Respond(sip.NewResponseFromRequest(tx.req, 487, "Request Terminated", nil))
	tx.Terminate()
}

// final waits for the first final response to the caller.
func (tx *fakeServerTx) final(t *testing.T) *sip.Response {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-tx.got:
			if r.StatusCode >= 200 {
				return r
			}
		case <-deadline:
			t.Fatal("no final response to the caller")
			return nil
		}
	}
}

// provisional waits for a provisional response to the caller.
func (tx *fakeServerTx) provisional(t *testing.T) *sip.Response {
	t.Helper()
	select {
	case r := <-tx.got:
		if r.StatusCode >= 200 {
			t.Fatalf("final %d where a provisional was expected", r.StatusCode)
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no provisional to the caller")
		return nil
	}
}

type fakeRouter struct{ dec func() Decision }

func (r fakeRouter) Route(string, Caller) Decision { return r.dec() }

// fakeHunter offers gateways in order; next may block or panic on demand.
type fakeHunter struct {
	mu       sync.Mutex
	targets  []Target
	released int
	timeout  time.Duration
	gate     chan struct{} // when set, Next waits on it (after the first)
	calls    int
	panicAt  int
}

func (h *fakeHunter) Next() (Target, bool) {
	h.mu.Lock()
	h.calls++
	n := h.calls
	gate := h.gate
	h.mu.Unlock()
	if n == h.panicAt {
		panic("hunter bug")
	}
	if n > 1 && gate != nil {
		<-gate
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.targets) == 0 {
		return Target{}, false
	}
	t := h.targets[0]
	h.targets = h.targets[1:]
	t.Release = func() {
		h.mu.Lock()
		h.released++
		h.mu.Unlock()
	}
	return t, true
}
func (h *fakeHunter) Failover(status int) bool     { return status == 503 || status == 408 }
func (h *fakeHunter) InviteTimeout() time.Duration { return h.timeout }

// TestMain shortens RFC 3261's timers for the whole package (they are
// sipgo's globals, read by calls' timers still running between tests):
// 64*T1 is 640 ms here.
func TestMain(m *testing.M) {
	sip.SetTimers(10*time.Millisecond, 40*time.Millisecond, 50*time.Millisecond)
	os.Exit(m.Run())
}

// bed is one manager with a recording wire and an event log.
type bed struct {
	t    *testing.T
	m    *Manager
	wire *fakeWire
	mu   sync.Mutex
	evs  []*events.Event
	rel  chan *events.Event
}

func newBed(t *testing.T, cfg Config, route func() Decision) *bed {
	t.Helper()
	b := &bed{t: t, wire: newFakeWire(), rel: make(chan *events.Event, 16)}
	a := &auth.Authenticator{}
	a.SetPeers([]auth.Peer{{Name: "trunk", Prefix: netip.MustParsePrefix("127.0.0.0/8")}})
	bus := events.New()
	bus.Subscribe(func(e *events.Event) {
		b.mu.Lock()
		b.evs = append(b.evs, e)
		b.mu.Unlock()
		if e.Kind == events.CallRelease {
			b.rel <- e
		}
	})
	if cfg.Host == "" {
		cfg.Host, cfg.Port = "192.0.2.1", 5060
	}
	if cfg.NoAnswerTimeout == 0 {
		cfg.NoAnswerTimeout = time.Minute
	}
	if cfg.MaxForwards == 0 {
		cfg.MaxForwards = 70
	}
	b.m = newManager(cfg, b.wire, a, fakeRouter{route}, bus, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return b
}

func (b *bed) kinds() []events.Kind {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []events.Kind
	for _, e := range b.evs {
		out = append(out, e.Kind)
	}
	return out
}

// release waits for the call's release event.
func (b *bed) release() *events.Event {
	b.t.Helper()
	select {
	case e := <-b.rel:
		return e
	case <-time.After(5 * time.Second):
		b.t.Fatal("no release event")
		return nil
	}
}

var seq int

// invite starts a call from 127.0.0.1 (a trusted peer) to number, with
// extra headers; HandleInvite runs on its own goroutine.
func (b *bed) invite(hdrs ...string) (*fakeServerTx, *sip.Request, chan struct{}) {
	seq++
	raw := fmt.Sprintf("INVITE sip:1002@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa%d\r\n"+
		"From: <sip:1001@127.0.0.1>;tag=a-tag\r\nTo: <sip:1002@192.0.2.1>\r\nCall-ID: call-%d\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:1001@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n", seq, seq, headerLines(hdrs))
	req := b.fromCaller(raw)
	tx := newFakeServerTx(req)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.m.HandleInvite(req, tx)
	}()
	return tx, req, done
}

func headerLines(hs []string) string {
	var s strings.Builder
	for _, h := range hs {
		s.WriteString(h + "\r\n")
	}
	return s.String()
}

// inDialog builds a request of the caller inside the call's dialog.
func (b *bed) inDialog(method sip.RequestMethod, callID, toTag string, cseq int, hdrs ...string) *sip.Request {
	raw := fmt.Sprintf("%s sip:1002@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKd%d%s\r\n"+
		"From: <sip:1001@127.0.0.1>;tag=a-tag\r\nTo: <sip:1002@192.0.2.1>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"+
		"Contact: <sip:1001@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n",
		method, cseq, method, toTag, callID, cseq, method, headerLines(hdrs))
	return b.fromCaller(raw)
}

// fromCaller parses raw as a request the caller sent over UDP.
func (b *bed) fromCaller(raw string) *sip.Request {
	b.t.Helper()
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		b.t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.SetSource("127.0.0.1:5070")
	req.SetTransport("UDP")
	return req
}

func target(host string) Target {
	return Target{URI: sip.Uri{Scheme: "sip", User: "1002", Host: host, Port: 5060}, Dest: host + ":5060", Transport: "udp"}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("HandleInvite did not return")
	}
}
