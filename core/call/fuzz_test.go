package call

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/sipparse"
)

// doneWire sends nothing and ends every transaction at once: the fuzz
// target starts thousands of them.
type doneWire struct{}

func (doneWire) Request(req *sip.Request) (sip.ClientTransaction, error) {
	tx := &fakeClientTx{req: req, responses: make(chan *sip.Response), done: make(chan struct{})}
	tx.end(sip.ErrTransactionTerminated)
	return tx, nil
}
func (doneWire) Write(sip.Message) error { return nil }

// FuzzResponse feeds whatever a callee or gateway might send to a call
// that is ringing on one fork, and to the stray-response path: nothing
// may panic (the test process would die), whatever is missing or odd.
func FuzzResponse(f *testing.F) {
	a := &auth.Authenticator{}
	a.SetPeers([]auth.Peer{{Name: "t", Prefix: netip.MustParsePrefix("127.0.0.0/8")}})
	m := newManager(Config{Host: "192.0.2.1", Port: 5060, SessionExpires: 1800, MinSE: 90, MaxForwards: 70},
		doneWire{}, a, fakeRouter{func() Decision { return Decision{} }}, events.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	parser := sipparse.New()
	inv, _ := parser.ParseSIP([]byte("INVITE sip:1002@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa\r\n" +
		"From: <sip:1001@127.0.0.1>;tag=a\r\nTo: <sip:1002@192.0.2.1>\r\nCall-ID: fz\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@127.0.0.1:5070>\r\n" +
		"Supported: 100rel, timer\r\nContent-Length: 0\r\n\r\n"))
	aInvite := inv.(*sip.Request)
	aInvite.SetSource("127.0.0.1:5070")
	for _, s := range []string{
		"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKb\r\nFrom: <sip:1001@192.0.2.1>;tag=l\r\nTo: <sip:1002@h>;tag=r\r\nCall-ID: b\r\nCSeq: 1 INVITE\r\nRequire: 100rel\r\nRSeq: 1\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKb\r\nFrom: <sip:1001@192.0.2.1>;tag=l\r\nTo: <sip:1002@h>;tag=r\r\nCall-ID: b\r\nCSeq: 1 INVITE\r\nContact: <sip:x@h>\r\nSession-Expires: 99999999999;refresher=uas\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
		"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 486 Busy\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\r\nFrom: <sip:a@h>;tag=l\r\nTo: <sip:b@h>;tag=r\r\nCall-ID: b\r\nCSeq: 1 INVITE\r\nReason: Q.850;cause=17\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parser.ParseSIP(data)
		if err != nil {
			return
		}
		r, ok := msg.(*sip.Response)
		if !ok {
			return
		}
		c := &Call{m: m, aInvite: aInvite, aTx: newFakeServerTx(aInvite), finalSent: make(chan struct{}), a100rel: true, aTimer: true,
			calling: "1001", called: "1002"}
		c.a = &leg{call: c, isA: true, callID: "fz", remoteTag: "a", dest: "127.0.0.1:5070", transport: "udp"}
		m.track() // as HandleInvite does
		c.lock()
		b := c.startFork(target("192.0.2.20"))
		c.unlock()
		if b == nil {
			return
		}
		if m.validResponse(r, "fuzz") {
			c.forkResponse(b, r)
		}
		m.HandleStrayResponse(r)
		c.terminate("fuzz end", events.SideSwitch, 500, 41)
	})
}

// The headers the call code reads itself: RAck, RSeq, P-Asserted-Identity.
func FuzzHeaders(f *testing.F) {
	f.Add("7 1 INVITE")
	f.Add("<sip:+15551234@carrier.example>;x=1")
	f.Add("\"A\" <tel:+1555>")
	f.Fuzz(func(t *testing.T, v string) {
		if rseq, cseq, method, ok := parseRAck(v); ok && (rseq == 0 || rseq >= 1<<31 || cseq >= 1<<31 || method == "") {
			t.Fatalf("RAck %q read as %d %d %q", v, rseq, cseq, method)
		}
		if n, ok := parseRSeq(v); ok && (n == 0 || n >= 1<<31) {
			t.Fatalf("RSeq %q read as %d", v, n)
		}
		if u, ok := assertedUser(v); ok && u == "" {
			t.Fatalf("P-Asserted-Identity %q: empty user", v)
		}
	})
}
