package sipudp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// 64*T1 is 640 ms here.
func TestMain(m *testing.M) {
	sip.SetTimers(10*time.Millisecond, 40*time.Millisecond, 50*time.Millisecond)
	sip.Timer_M = 200 * time.Millisecond
	os.Exit(m.Run())
}

// peer is a UDP socket of the test: a phone or a gateway.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	addr string
}

func newPeer(t *testing.T) *peer {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c, addr: c.LocalAddr().String()}
}

func (p *peer) send(to, msg string) {
	ua, _ := net.ResolveUDPAddr("udp", to)
	if _, err := p.conn.WriteToUDP([]byte(msg), ua); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next message's text, or "" after within.
func (p *peer) recv(within time.Duration) string {
	buf := make([]byte, 65535)
	p.conn.SetReadDeadline(time.Now().Add(within))
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// count counts messages starting with prefix during d.
func (p *peer) count(prefix string, d time.Duration) int {
	n := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if m := p.recv(time.Until(end)); strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

type bed struct {
	e     *Endpoint
	addr  string
	mu    sync.Mutex
	reqs  []*sip.Request
	txs   []sip.ServerTransaction
	got   chan *sip.Request
	stray chan *sip.Response
	serve func(req *sip.Request, tx sip.ServerTransaction)
	bad   []string
}

func (b *bed) setServe(f func(req *sip.Request, tx sip.ServerTransaction)) {
	b.mu.Lock()
	b.serve = f
	b.mu.Unlock()
}

func newBed(t *testing.T, serve func(req *sip.Request, tx sip.ServerTransaction), opts ...func(*Endpoint)) *bed {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b := &bed{addr: c.LocalAddr().String(), got: make(chan *sip.Request, 64), stray: make(chan *sip.Response, 64), serve: serve}
	b.e = &Endpoint{Conn: c, Parser: sip.NewParser(), Workers: 4,
		Handler: func(req *sip.Request, tx sip.ServerTransaction) {
			b.mu.Lock()
			b.reqs = append(b.reqs, req)
			b.txs = append(b.txs, tx)
			serve := b.serve
			b.mu.Unlock()
			b.got <- req
			if serve != nil {
				serve(req, tx)
			}
			if req.Method == sip.INVITE && tx != nil {
				// Like the B2BUA: the handler returns once the
				// transaction has its final response.
				select {
				case <-tx.Done():
				case <-time.After(5 * time.Second):
				}
			}
		},
		Inline: func(req *sip.Request) bool { return req.Method != sip.INVITE },
		Stray:  func(r *sip.Response) { b.stray <- r },
		Unparseable: func(data []byte, _ error) {
			b.mu.Lock()
			b.bad = append(b.bad, string(data))
			b.mu.Unlock()
		},
	}
	for _, o := range opts {
		o(b.e)
	}
	b.e.Init()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.e.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return b
}

func request(method, from, branch, callID string, cseq int, extra string) string {
	return fmt.Sprintf("%s sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\n"+
		"From: <sip:a@x>;tag=fa\r\nTo: <sip:100@x>%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		method, from, branch, extra, callID, cseq, method)
}

func (b *bed) next(t *testing.T) *sip.Request {
	select {
	case r := <-b.got:
		return r
	case <-time.After(2 * time.Second):
		t.Fatal("the handler got nothing")
	}
	return nil
}

func (b *bed) tx(i int) sip.ServerTransaction {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.txs[i]
}

// A final non-2xx to an INVITE is retransmitted until the ACK, which is
// absorbed; a retransmitted INVITE gets the last response and never
// reaches the handler again.
func TestServerInviteFailure(t *testing.T) {
	b := newBed(t, nil)
	p := newPeer(t)
	inv := request("INVITE", p.addr, "z9hG4bK-1", "c1", 1, "")
	p.send(b.addr, inv)
	req := b.next(t)
	if req.Source() != p.addr || req.Transport() != "UDP" {
		t.Fatalf("source %q transport %q", req.Source(), req.Transport())
	}
	tx := b.tx(0)
	tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
	if m := p.recv(time.Second); !strings.HasPrefix(m, "SIP/2.0 180") {
		t.Fatalf("got %q", m)
	}
	p.send(b.addr, inv) // a copy: the 180 again
	if m := p.recv(time.Second); !strings.HasPrefix(m, "SIP/2.0 180") {
		t.Fatalf("copy got %q", m)
	}
	tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
	if n := p.count("SIP/2.0 486", 100*time.Millisecond); n < 3 {
		t.Fatalf("486 sent %d times in 100 ms without an ACK, want retransmissions (T1 10 ms)", n)
	}
	p.send(b.addr, request("ACK", p.addr, "z9hG4bK-1", "c1", 1, ";tag=x"))
	// One copy may already be on its way when the ACK is read (a loaded
	// race-built run); T2 is 40 ms, so 100 ms without one is no
	// retransmission.
	p.count("SIP/2.0 486", 60*time.Millisecond)
	if n := p.count("SIP/2.0 486", 100*time.Millisecond); n != 0 {
		t.Fatalf("486 retransmitted %d times after the ACK", n)
	}
	select {
	case r := <-b.got:
		t.Fatalf("handler got %s", r.Method)
	case <-time.After(50 * time.Millisecond):
	}
	select {
	case <-tx.Done():
	case <-time.After(time.Second):
		t.Fatal("transaction not ended after Timer I")
	}
	if s, c := b.e.Transactions(); s != 0 || c != 0 {
		t.Fatalf("transactions left: %d server, %d client", s, c)
	}
}

// A CANCEL of a pending INVITE gets 200, the INVITE 487, and its handler
// learns at once (Done, ErrTransactionCanceled).
func TestServerCancel(t *testing.T) {
	b := newBed(t, nil)
	p := newPeer(t)
	p.send(b.addr, request("INVITE", p.addr, "z9hG4bK-2", "c2", 1, ""))
	b.next(t)
	tx := b.tx(0)
	p.send(b.addr, request("CANCEL", p.addr, "z9hG4bK-2", "c2", 1, ""))
	var got []string
	for range 3 {
		if m := p.recv(time.Second); m != "" {
			got = append(got, strings.SplitN(m, "\r\n", 2)[0]+" / "+strings.SplitN(strings.SplitN(m, "CSeq: ", 2)[1], "\r\n", 2)[0])
		}
		if len(got) == 2 {
			break
		}
	}
	if len(got) < 2 || !strings.Contains(strings.Join(got, ","), "SIP/2.0 200 OK / 1 CANCEL") ||
		!strings.Contains(strings.Join(got, ","), "SIP/2.0 487 Request Terminated / 1 INVITE") {
		t.Fatalf("got %q", got)
	}
	select {
	case <-tx.Done():
		if !errors.Is(tx.Err(), sip.ErrTransactionCanceled) {
			t.Fatalf("Err %v", tx.Err())
		}
	case <-time.After(time.Second):
		t.Fatal("handler not told of the CANCEL")
	}
	// A CANCEL that matches nothing goes to the handler.
	p.send(b.addr, request("CANCEL", p.addr, "z9hG4bK-none", "c3", 1, ""))
	if r := b.next(t); r.Method != sip.CANCEL {
		t.Fatalf("handler got %s", r.Method)
	}
}

// The 100 Trying of a slow core (Timer_1xx), and a non-INVITE's final
// response repeated for its copies.
func TestServerTryingAndNonInvite(t *testing.T) {
	b := newBed(t, nil)
	p := newPeer(t)
	p.send(b.addr, request("INVITE", p.addr, "z9hG4bK-3", "c4", 1, ""))
	b.next(t)
	if m := p.recv(time.Second); !strings.HasPrefix(m, "SIP/2.0 100 Trying") {
		t.Fatalf("got %q, want 100 Trying", m)
	}
	b.setServe(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	opt := request("OPTIONS", p.addr, "z9hG4bK-4", "c5", 1, "")
	p.send(b.addr, opt)
	b.next(t)
	if m := p.recv(time.Second); !strings.HasPrefix(m, "SIP/2.0 200") {
		t.Fatalf("got %q", m)
	}
	p.send(b.addr, opt)
	if m := p.recv(time.Second); !strings.HasPrefix(m, "SIP/2.0 200") {
		t.Fatalf("copy got %q", m)
	}
	select {
	case r := <-b.got:
		t.Fatalf("the copy reached the handler: %s", r.Method)
	case <-time.After(50 * time.Millisecond):
	}
}

// Requests without a branch get a stateless 400; garbage is reported.
func TestServerMalformed(t *testing.T) {
	b := newBed(t, nil)
	p := newPeer(t)
	p.send(b.addr, strings.Replace(request("OPTIONS", p.addr, "x", "c6", 1, ""), ";branch=x", "", 1))
	if m := p.recv(time.Second); !strings.HasPrefix(m, "SIP/2.0 400") {
		t.Fatalf("got %q, want 400", m)
	}
	p.send(b.addr, "this is not SIP\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.bad) != 1 {
		t.Fatalf("unparseable reported %d times", len(b.bad))
	}
}

// An INVITE client transaction: retransmitted until a provisional, a
// final non-2xx ACKed by the transaction (and again for its copies).
func TestClientInviteFailure(t *testing.T) {
	b := newBed(t, nil)
	g := newPeer(t)
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "200", Host: "127.0.0.1"})
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060, Params: sip.NewParams()}
	via.Params.Add("branch", "z9hG4bK-c1")
	req.AppendHeader(via)
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "a", Host: "x"}, Params: tagParams("t1")})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "200", Host: "x"}, Params: sip.NewParams()})
	cid := sip.CallIDHeader("cc1")
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.SetBody(nil)
	req.SetDestination(g.addr)
	tx, err := b.e.Request(req)
	if err != nil {
		t.Fatal(err)
	}
	if n := g.count("INVITE", 60*time.Millisecond); n < 2 {
		t.Fatalf("INVITE sent %d times in 60 ms, want retransmissions (Timer A)", n)
	}
	res := func(code int, reason string) string {
		return fmt.Sprintf("SIP/2.0 %d %s\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-c1\r\nFrom: <sip:a@x>;tag=t1\r\n"+
			"To: <sip:200@x>;tag=g1\r\nCall-ID: cc1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", code, reason)
	}
	g.send(b.addr, res(180, "Ringing"))
	if r := <-tx.Responses(); r.StatusCode != 180 {
		t.Fatalf("got %d", r.StatusCode)
	}
	if n := g.count("INVITE", 60*time.Millisecond); n != 0 {
		t.Fatalf("INVITE retransmitted %d times after a provisional", n)
	}
	g.send(b.addr, res(486, "Busy Here"))
	if r := <-tx.Responses(); r.StatusCode != 486 {
		t.Fatalf("got %d", r.StatusCode)
	}
	ack := g.recv(time.Second)
	if !strings.HasPrefix(ack, "ACK sip:200@127.0.0.1") || !strings.Contains(ack, "branch=z9hG4bK-c1") ||
		!strings.Contains(ack, "tag=g1") || !strings.Contains(ack, "CSeq: 1 ACK") {
		t.Fatalf("ACK %q", ack)
	}
	g.send(b.addr, res(486, "Busy Here"))
	if m := g.recv(time.Second); !strings.HasPrefix(m, "ACK ") {
		t.Fatalf("copy of the 486 got %q, want the ACK again", m)
	}
	select {
	case r := <-tx.Responses():
		t.Fatalf("the copy was delivered: %d", r.StatusCode)
	case <-time.After(30 * time.Millisecond):
	}
	// A response nobody waits for is a stray.
	g.send(b.addr, strings.Replace(res(200, "OK"), "z9hG4bK-c1", "z9hG4bK-other", 1))
	select {
	case r := <-b.stray:
		if r.StatusCode != 200 {
			t.Fatalf("stray %d", r.StatusCode)
		}
	case <-time.After(time.Second):
		t.Fatal("no stray response")
	}
}

// A non-INVITE client transaction nobody answers times out (Timer F) and
// says so; an answered INVITE's 2xx copies reach OnRetransmission.
func TestClientTimeoutAndAccepted(t *testing.T) {
	b := newBed(t, nil)
	g := newPeer(t)
	mk := func(method sip.RequestMethod, branch string) *sip.Request {
		req := sip.NewRequest(method, sip.Uri{Scheme: "sip", Host: "127.0.0.1"})
		via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060, Params: sip.NewParams()}
		via.Params.Add("branch", branch)
		req.AppendHeader(via)
		req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", Host: "x"}, Params: tagParams("t")})
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: "x"}, Params: sip.NewParams()})
		cid := sip.CallIDHeader("cc-" + branch)
		req.AppendHeader(&cid)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
		req.SetBody(nil)
		req.SetDestination(g.addr)
		return req
	}
	tx, err := b.e.Request(mk(sip.OPTIONS, "z9hG4bK-o1"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tx.Done():
		if !errors.Is(tx.Err(), sip.ErrTransactionTimeout) {
			t.Fatalf("Err %v", tx.Err())
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no timeout")
	}
	inv, err := b.e.Request(mk(sip.INVITE, "z9hG4bK-i1"))
	if err != nil {
		t.Fatal(err)
	}
	copies := make(chan int, 4)
	inv.OnRetransmission(func(r *sip.Response) { copies <- r.StatusCode })
	ok := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-i1\r\nFrom: <sip:x>;tag=t\r\nTo: <sip:x>;tag=g\r\n" +
		"Call-ID: cc-z9hG4bK-i1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	g.send(b.addr, ok)
	if r := <-inv.Responses(); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	g.send(b.addr, ok)
	select {
	case c := <-copies:
		if c != 200 {
			t.Fatal(c)
		}
	case <-time.After(time.Second):
		t.Fatal("2xx copy not heard")
	}
	select {
	case <-inv.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("accepted transaction not ended after Timer M")
	}
}

func TestResponseDest(t *testing.T) {
	src := netip.MustParseAddrPort("192.0.2.9:4000")
	for via, want := range map[string]string{
		"SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx":                        "10.0.0.1:5070",
		"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx":                             "10.0.0.1:5060",
		"SIP/2.0/UDP 10.0.0.1:5070;received=192.0.2.9;branch=z9hG4bKx":     "192.0.2.9:5070",
		"SIP/2.0/UDP 10.0.0.1:5070;rport=4000;received=192.0.2.9;branch=z": "192.0.2.9:4000",
		"SIP/2.0/UDP phone.example.com;branch=z9hG4bKx":                    "192.0.2.9:5060",
	} {
		m, err := sip.ParseMessage([]byte("OPTIONS sip:x SIP/2.0\r\nVia: " + via + "\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := responseDest(m.(*sip.Request).Via(), src)
		if !ok || got.String() != want {
			t.Errorf("%s: %v, want %s", via, got, want)
		}
	}
}

func TestCallID(t *testing.T) {
	for msg, want := range map[string]string{
		"INVITE x SIP/2.0\r\nVia: a\r\nCall-ID: abc@d\r\n\r\n":   "abc@d",
		"INVITE x SIP/2.0\r\nVia: a\r\ni:  xyz \r\n\r\n":         "xyz",
		"SIP/2.0 200 OK\r\nCALL-ID:q\r\n\r\nCall-ID: body\r\n":   "q",
		"INVITE x SIP/2.0\r\nVia: a\r\n\r\nCall-ID: in-body\r\n": "",
	} {
		if got, _ := route([]byte(msg)); string(got) != want {
			t.Errorf("%q: %q, want %q", msg, got, want)
		}
	}
}

func FuzzEndpoint(f *testing.F) {
	f.Add([]byte("INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	e := (&Endpoint{Conn: c, Parser: sip.NewParser(), Workers: 1,
		Handler: func(req *sip.Request, tx sip.ServerTransaction) {
			if tx != nil {
				tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
			}
		}}).Init()
	src := netip.MustParseAddrPort("127.0.0.1:9")
	f.Fuzz(func(t *testing.T, data []byte) {
		id, _ := route(data)
		e.queueOf(id)
		e.handle(item{data: data, src: src, late: len(data)%2 == 0})
	})
}

func tagParams(tag string) sip.HeaderParams {
	p := sip.NewParams()
	p.Add("tag", tag)
	return p
}

// A new call the core refuses (overload) gets its 503 in a transaction:
// copies of the INVITE get the same 503, the ACK is absorbed, the handler
// never sees any of it; an in-dialog INVITE is never asked about.
func TestRefuseNewCall(t *testing.T) {
	asked := make(chan string, 8)
	p := newPeer(t)
	b2 := newBed(t, nil, func(e *Endpoint) {
		e.Refuse = func(req *sip.Request, _ bool) *sip.Response {
			asked <- req.CallID().Value()
			res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
			res.AppendHeader(sip.NewHeader("Retry-After", "7"))
			return res
		}
	})
	inv := request("INVITE", p.addr, "z9hG4bK-r1", "refused-1", 1, "")
	p.send(b2.addr, inv)
	if m := p.recv(time.Second); !strings.HasPrefix(m, "SIP/2.0 503") || !strings.Contains(m, "Retry-After: 7") {
		t.Fatalf("got %q", m)
	}
	p.send(b2.addr, inv)
	if m := p.recv(time.Second); !strings.HasPrefix(m, "SIP/2.0 503") {
		t.Fatalf("copy got %q", m)
	}
	p.send(b2.addr, request("ACK", p.addr, "z9hG4bK-r1", "refused-1", 1, ";tag=x"))
	// Once the transaction has the ACK (a loaded machine may take past
	// Timer G's first 500 ms to get there: a retransmission before it
	// is right), the 503 is not sent again: not within Timer G's next
	// firing either.
	msg, err := sip.NewParser().ParseSIP([]byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := serverKey(msg.(*sip.Request), "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		tx, ok := b2.e.servers.get(key)
		if !ok {
			break
		}
		tx.mu.Lock()
		st := tx.state
		tx.mu.Unlock()
		if st != stCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ACK did not reach the transaction within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.count("SIP/2.0 503", 30*time.Millisecond) // in flight before the ACK
	if n := p.count("SIP/2.0 503", 1200*time.Millisecond); n != 0 {
		t.Fatalf("503 sent %d more times after the ACK", n)
	}
	if len(asked) != 1 {
		t.Fatalf("Refuse asked %d times, want once", len(asked))
	}
	p.send(b2.addr, request("INVITE", p.addr, "z9hG4bK-r2", "in-dialog", 2, ";tag=abc"))
	if r := b2.next(t); r.CallID().Value() != "in-dialog" {
		t.Fatalf("handler got %s", r.CallID().Value())
	}
	select {
	case r := <-b2.got:
		t.Fatalf("handler got the refused call: %s", r.CallID().Value())
	default:
	}
	if len(asked) != 1 {
		t.Fatal("Refuse asked about an in-dialog INVITE")
	}
}

func TestIsNew(t *testing.T) {
	for msg, want := range map[string]bool{
		"INVITE sip:x SIP/2.0\r\nVia: a\r\nTo: <sip:x@y>\r\n\r\n":                   true,
		"INVITE sip:x SIP/2.0\r\nVia: a\r\nt: <sip:x@y;tag=u> ;tag=9\r\n\r\n":       false,
		"INVITE sip:x SIP/2.0\r\nVia: a\r\nTo: \"a;tag=b\" <sip:x@y;tag=u>\r\n\r\n": true,
		"INVITE sip:x SIP/2.0\r\nVia: a\r\nTo: sip:x@y ; TAG = 1\r\n\r\n":           false,
		"BYE sip:x SIP/2.0\r\nVia: a\r\nTo: <sip:x@y>\r\n\r\n":                      false,
		"SIP/2.0 200 OK\r\nTo: <sip:x@y>\r\n\r\n":                                   false,
	} {
		if _, got := route([]byte(msg)); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
}

// Stopping while datagrams arrive: every reader has returned before the
// queues close (the race detector saw a reader send on a closing queue).
func TestStopUnderLoad(t *testing.T) {
	for range 5 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		e := (&Endpoint{Conn: c, Parser: sip.NewParser(), Workers: 2,
			Handler: func(*sip.Request, sip.ServerTransaction) {}}).Init()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Serve(ctx) }()
		p := newPeer(t)
		stop := make(chan struct{})
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Not p.send: once the endpoint's socket is closed the
				// kernel may refuse the datagram, which is no failure here.
				p.conn.WriteToUDP([]byte(request("OPTIONS", p.addr, fmt.Sprintf("z9hG4bK-s%d", i), "stop", 1, "")), c.LocalAddr().(*net.UDPAddr))
			}
		}()
		time.Sleep(20 * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		close(stop)
	}
}

// While shedding, a new call is refused from its bytes: a 503 with the
// request's Via (oc answered), From, To (tagged), Call-ID and CSeq and
// the refusal's headers, the same To tag for a copy, its ACK absorbed,
// the handler never involved; a copy of an INVITE with a transaction, and
// an INVITE of a call Shed knows, pass to the transaction layer.
func TestShedFromTheBytes(t *testing.T) {
	p := newPeer(t)
	var shedding sync.Mutex
	on := false
	asked := make(chan string, 16)
	b := newBed(t, nil, func(e *Endpoint) {
		e.LateAfter = 5 * time.Millisecond // under the tests' T1 (10 ms)
		e.Shedding = func() bool { shedding.Lock(); defer shedding.Unlock(); return on }
		e.Shed = func(callID []byte, _ bool) *Refusal {
			asked <- string(callID)
			if string(callID) == "known-call" {
				return nil
			}
			return &Refusal{Headers: "Retry-After: 9\r\nReason: Q.850;cause=42\r\n", OC: ";oc=40;oc-seq=5"}
		}
	})
	// An INVITE in progress (the handler holds it) before shedding starts.
	inProgress := request("INVITE", p.addr, "z9hG4bK-s0", "in-progress", 1, "")
	p.send(b.addr, inProgress)
	if r := b.next(t); r.CallID().Value() != "in-progress" {
		t.Fatalf("handler got %s", r.CallID().Value())
	}
	shedding.Lock()
	on = true
	shedding.Unlock()

	inv := strings.Replace(request("INVITE", p.addr, "z9hG4bK-s1", "shed-1", 1, ""), ";rport", ";rport;oc", 1)
	p.send(b.addr, inv)
	m := p.recv(time.Second)
	for _, want := range []string{"SIP/2.0 503 Service Unavailable\r\n",
		"Via: SIP/2.0/UDP " + p.addr + ";branch=z9hG4bK-s1;rport;oc=40;oc-seq=5\r\n",
		"From: <sip:a@x>;tag=fa\r\n", "To: <sip:100@x>;tag=x503-", "Call-ID: shed-1\r\n", "CSeq: 1 INVITE\r\n",
		"Retry-After: 9\r\n", "Reason: Q.850;cause=42\r\n", "Content-Length: 0\r\n\r\n"} {
		if !strings.Contains(m, want) {
			t.Fatalf("503 lacks %q:\n%s", want, m)
		}
	}
	if _, err := sip.ParseMessage([]byte(m)); err != nil {
		t.Fatalf("the 503 does not parse: %v\n%s", err, m)
	}
	tag := m[strings.Index(m, "tag=x503-")+4:]
	tag = tag[:strings.Index(tag, "\r\n")]
	p.send(b.addr, inv)
	if m2 := p.recv(time.Second); !strings.Contains(m2, "tag="+tag+"\r\n") {
		t.Fatalf("the copy's 503 has another tag (want %s):\n%s", tag, m2)
	}
	p.send(b.addr, request("ACK", p.addr, "z9hG4bK-s1", "shed-1", 1, ";tag="+tag))

	// A copy of the INVITE in progress reaches its transaction, not Shed
	// (its last response, none yet: nothing is sent).
	p.send(b.addr, inProgress)
	// A call Shed knows goes on to the handler.
	p.send(b.addr, request("INVITE", p.addr, "z9hG4bK-s2", "known-call", 1, ""))
	if r := b.next(t); r.CallID().Value() != "known-call" {
		t.Fatalf("handler got %s", r.CallID().Value())
	}
	close(asked)
	var got []string
	for c := range asked {
		got = append(got, c)
	}
	if strings.Join(got, ",") != "shed-1,shed-1,known-call" {
		t.Fatalf("Shed asked about %v", got)
	}
	select {
	case r := <-b.got:
		t.Fatalf("the handler got %s %s", r.Method, r.CallID().Value())
	default:
	}
	b.mu.Lock()
	bad := len(b.bad)
	b.mu.Unlock()
	if bad != 0 {
		t.Fatal("a datagram was unparseable")
	}
	b.tx(0).Respond(sip.NewResponseFromRequest(b.reqs[0], 486, "Busy Here", nil))
}

func TestBuildRefusalFallsBack(t *testing.T) {
	r := &Refusal{Headers: "Retry-After: 1\r\n"}
	for name, msg := range map[string]string{
		"folded":     "INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@x>\r\n ;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
		"no call-id": "INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCSeq: 1 INVITE\r\n\r\n",
		"cseq":       "INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n",
		"no end":     "INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE",
	} {
		if b := buildRefusal([]byte(msg), r, func([]byte) string { return "x503-1" }); b != nil {
			t.Errorf("%s: built %q", name, b)
		}
	}
	// Compact names, more than one Via, LF line ends.
	msg := "INVITE sip:x SIP/2.0\nv: SIP/2.0/UDP a;branch=z9hG4bK1\nv: SIP/2.0/UDP b;branch=z9hG4bK0\nf: <sip:a@x>;tag=1\nt: <sip:b@x>\ni: c\nCSeq: 1 INVITE\n\n"
	b := buildRefusal([]byte(msg), r, func([]byte) string { return "x503-1" })
	want := "SIP/2.0 503 Service Unavailable\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\nv: SIP/2.0/UDP b;branch=z9hG4bK0\r\nf: <sip:a@x>;tag=1\r\nt: <sip:b@x>;tag=x503-1\r\ni: c\r\nCSeq: 1 INVITE\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
	if string(b) != want {
		t.Fatalf("got\n%q\nwant\n%q", b, want)
	}
}

// A packed message goes out as often as it is sent, byte for byte what
// Write would send, and later changes to the request do not reach it.
func TestPack(t *testing.T) {
	b := newBed(t, nil)
	p := newPeer(t)
	m, err := sip.ParseMessage([]byte(request("ACK", p.addr, "z9hG4bKpk", "pack-1", 1, ";tag=tt")))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.SetDestination(p.addr)
	want := req.String()
	send, err := b.e.Pack(req)
	if err != nil {
		t.Fatal(err)
	}
	req.CSeq().SeqNo = 99
	for i := 0; i < 2; i++ {
		if err := send(); err != nil {
			t.Fatal(err)
		}
		if got := p.recv(2 * time.Second); got != want {
			t.Fatalf("send %d: got %q, want %q", i, got, want)
		}
	}
	if _, err := b.e.Pack(&sip.Request{}); err == nil {
		t.Error("a request without a destination was packed")
	}
}

// A worker's queue holds QueueNew new calls at most: while the worker is
// held up, the next new calls for it are refused from their bytes (the
// control not shedding), in-dialog requests still queue, and the calls
// that waited reach the handler once it is free.
func TestQueueOfNewCallsBounded(t *testing.T) {
	p := newPeer(t)
	hold := make(chan struct{})
	var mu sync.Mutex
	var full []string
	b := newBed(t, nil, func(e *Endpoint) {
		e.Workers, e.QueueNew = 1, 2
		e.LateAfter = 5 * time.Millisecond // under the tests' T1 (10 ms)
		e.Shedding = func() bool { return false }
		e.Shed = func(callID []byte, f bool) *Refusal {
			if !f {
				return nil
			}
			mu.Lock()
			full = append(full, string(callID))
			mu.Unlock()
			return &Refusal{Headers: "Retry-After: 3\r\n"}
		}
		inline := e.Inline
		e.Inline = func(req *sip.Request) bool { return req.Method == sip.MESSAGE || inline(req) }
	})
	var release sync.Once
	free := func() { release.Do(func() { close(hold) }) }
	t.Cleanup(free) // before the endpoint stops (cleanups run last first)
	b.setServe(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method == sip.MESSAGE {
			<-hold // the only worker is held up
			tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	})
	p.send(b.addr, request("MESSAGE", p.addr, "z9hG4bK-q0", "held", 1, ""))
	if r := b.next(t); r.Method != sip.MESSAGE {
		t.Fatalf("handler got %s", r.Method)
	}
	for i := range 5 {
		p.send(b.addr, request("INVITE", p.addr, fmt.Sprintf("z9hG4bK-q%d", i+1), fmt.Sprintf("new-%d", i+1), 1, ""))
		time.Sleep(5 * time.Millisecond) // in order, each read before the next
	}
	// An in-dialog request for the held worker queues: not refused.
	p.send(b.addr, request("BYE", p.addr, "z9hG4bK-q9", "dialog", 2, ";tag=tt"))
	for i := range 3 {
		m := p.recv(time.Second)
		if !strings.HasPrefix(m, "SIP/2.0 503 ") || !strings.Contains(m, fmt.Sprintf("Call-ID: new-%d\r\n", i+3)) {
			t.Fatalf("refusal %d: got %q, want a 503 to new-%d", i, m, i+3)
		}
	}
	if m := p.recv(100 * time.Millisecond); m != "" {
		t.Fatalf("more than three refused: %q", m)
	}
	free()
	got := map[string]bool{}
	for range 3 {
		r := b.next(t)
		got[r.Method.String()+" "+r.CallID().Value()] = true
	}
	for _, want := range []string{"INVITE new-1", "INVITE new-2", "BYE dialog"} {
		if !got[want] {
			t.Errorf("the handler did not get %s (got %v)", want, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(full, ",") != "new-3,new-4,new-5" {
		t.Errorf("refused as full: %v", full)
	}
}

// In an overload episode the workers' queues together hold QueueShed new
// calls at most once the queue stands (the last new call taken had waited
// a quarter of LateAfter): the next are refused from their bytes however
// short their own worker's queue is. A burst (nothing has waited yet)
// passes; once the workers took the calls that waited, new calls come in
// again (the count does not leak).
func TestQueueShedInAnEpisode(t *testing.T) {
	p := newPeer(t)
	var mu sync.Mutex
	var full []string
	var ep *Endpoint
	b := newBed(t, nil, func(e *Endpoint) {
		ep = e
		e.Workers, e.QueueNew, e.QueueShed = 1, 64, 2
		e.LateAfter = 5 * time.Millisecond // under the tests' T1 (10 ms)
		e.Shedding = func() bool { return true }
		e.Shed = func(callID []byte, f bool) *Refusal {
			if !f {
				return nil
			}
			mu.Lock()
			full = append(full, string(callID))
			mu.Unlock()
			return &Refusal{Headers: "Retry-After: 3\r\n"}
		}
		inline := e.Inline
		e.Inline = func(req *sip.Request) bool { return req.Method == sip.MESSAGE || inline(req) }
	})
	var hold chan struct{}
	var holdMu sync.Mutex
	b.setServe(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method == sip.MESSAGE {
			holdMu.Lock()
			h := hold
			holdMu.Unlock()
			<-h // the only worker is held up
			tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
	})
	round := func(n int, standing bool) {
		holdMu.Lock()
		hold = make(chan struct{})
		h := hold
		holdMu.Unlock()
		var release sync.Once
		free := func() { release.Do(func() { close(h) }) }
		defer free()
		p.send(b.addr, request("MESSAGE", p.addr, fmt.Sprintf("z9hG4bK-h%d", n), fmt.Sprintf("held-%d", n), 1, ""))
		if r := b.next(t); r.Method != sip.MESSAGE {
			t.Fatalf("handler got %s", r.Method)
		}
		if standing {
			ep.freshWait.Store(int64(time.Second))
		}
		for i := range 4 {
			p.send(b.addr, request("INVITE", p.addr, fmt.Sprintf("z9hG4bK-e%d-%d", n, i), fmt.Sprintf("ep-%d-%d", n, i), 1, ""))
			time.Sleep(5 * time.Millisecond)
		}
		admitted := 4
		if standing {
			admitted = 2
			for i := range 2 {
				m := p.recv(time.Second)
				if !strings.HasPrefix(m, "SIP/2.0 503 ") || !strings.Contains(m, fmt.Sprintf("Call-ID: ep-%d-%d\r\n", n, i+2)) {
					t.Fatalf("refusal %d: got %q, want a 503 to ep-%d-%d", i, m, n, i+2)
				}
			}
		}
		free()
		for range admitted {
			if r := b.next(t); r.Method != sip.INVITE {
				t.Fatalf("handler got %s", r.Method)
			}
		}
		for p.recv(100*time.Millisecond) != "" { // the 486s, 100s and the MESSAGE's 200
		}
	}
	round(1, false) // a burst: all four wait
	round(2, true)  // a standing queue: two wait, two are refused
	round(3, true)  // the count came back to 0: two wait again
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(full, ",") != "ep-2-2,ep-2-3,ep-3-2,ep-3-3" {
		t.Errorf("refused as full: %v", full)
	}
}
