package systest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// TestNATRegistrationUsesSourceAddress: a REGISTER whose top Via sent-by
// (with rport) differs from the packet's source address is behind NAT: calls
// to that user go to the source address, not to the Contact.
//
// The phone is a raw UDP socket in Go (a sipp UAS cannot send the REGISTER
// from its own port): it registers with Via sent-by 127.0.0.1:<viaSink> and
// Contact sip:1002@127.0.0.1:<contactSink>, then answers the INVITE that must
// reach its own port with 486.
func TestNATRegistrationUsesSourceAddress(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	viaSink := startUDPSink(t)     // where a server ignoring rport would answer
	contactSink := startUDPSink(t) // where a server ignoring NAT would send the INVITE
	phone := newRawPhone(t)
	if phone.Port == viaSink.Port {
		t.Fatal("port clash")
	}

	// REGISTER, 401, REGISTER with MD5 credentials, 200: all answered to
	// the source address because of rport.
	reg := func(cseq int, authz string) sipMsg {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "REGISTER sip:%s SIP/2.0\r\n", srv.Addr)
		fmt.Fprintf(&b, "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-nat-%d;rport\r\n", viaSink.Port, cseq)
		fmt.Fprintf(&b, "From: <sip:1002@127.0.0.1>;tag=nat-phone\r\nTo: <sip:1002@127.0.0.1>\r\n")
		fmt.Fprintf(&b, "Call-ID: nat-register-%d@127.0.0.1\r\nCSeq: %d REGISTER\r\n", phone.Port, cseq)
		fmt.Fprintf(&b, "Contact: <sip:1002@127.0.0.1:%d>\r\nExpires: 3600\r\nMax-Forwards: 70\r\n", contactSink.Port)
		if authz != "" {
			fmt.Fprintf(&b, "Authorization: %s\r\n", authz)
		}
		b.WriteString("Content-Length: 0\r\n\r\n")
		phone.send(t, srv.Addr, b.String())
		m, ok := phone.recvResponse("REGISTER", cseq)
		if !ok {
			viaSink.requireSilent(t, "the Via sent-by address (the request had rport)")
			t.Fatalf("no final response to REGISTER (CSeq %d) at its source address 127.0.0.1:%d", cseq, phone.Port)
		}
		return m
	}
	res := reg(1, "")
	if res.Status != 401 {
		viaSink.requireSilent(t, "the Via sent-by address")
		t.Fatalf("REGISTER answered %d, want 401:\n%s", res.Status, res.Raw)
	}
	chal, err := digest.ParseChallenge(res.Header("WWW-Authenticate"))
	if err != nil {
		t.Fatalf("parsing the challenge %q: %v", res.Header("WWW-Authenticate"), err)
	}
	cred, err := digest.Digest(chal, digest.Options{
		Method: "REGISTER", URI: "sip:" + srv.Addr, Username: "1002", Password: "secret1002",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res = reg(2, cred.String()); res.Status != 200 {
		t.Fatalf("REGISTER with credentials answered %d, want 200:\n%s", res.Status, res.Raw)
	}
	t.Logf("200 to REGISTER lists Contact %q", res.HeaderLines("Contact"))

	// 1001 calls 1002: the INVITE must reach the phone's source address.
	caller := startSipp(t, callOpts(srv, "caller-1001", "uac_rejected.xml", "1002"))
	inv, ok := phone.recvRequest(t, "INVITE", 15*time.Second)
	if !ok {
		contactSink.requireSilent(t, "the registered Contact (behind NAT)")
		caller.kill()
		t.Fatalf("the INVITE for 1002 did not reach the source address 127.0.0.1:%d of its REGISTER", phone.Port)
	}
	if u := parseURI(inv.RURI); u.User != "1002" {
		t.Errorf("INVITE to the NATed phone has Request-URI %q, want user 1002", inv.RURI)
	}
	phone.send(t, srv.Addr, busyFor(inv))
	a := caller.wait()
	a.expectOK(t)
	requireFinals(t, a, "INVITE", 407, 486)
	contactSink.requireSilent(t, "the registered Contact (behind NAT)")
	viaSink.requireSilent(t, "the Via sent-by address")
}

// busyFor is a 486 to req.
func busyFor(req sipMsg) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 486 Busy Here\r\n")
	for _, v := range req.HeaderLines("Via") {
		fmt.Fprintf(&b, "Via: %s\r\n", v)
	}
	fmt.Fprintf(&b, "From: %s\r\n", req.Header("From"))
	fmt.Fprintf(&b, "To: %s;tag=nat-phone-b\r\n", req.Header("To"))
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n", req.Header("Call-ID"), req.Header("CSeq"))
	return b.String()
}

// rawPhone is a UDP socket on 127.0.0.1 that sends and reads SIP by hand.
type rawPhone struct {
	Port int
	conn *net.UDPConn
}

func newRawPhone(t *testing.T) *rawPhone {
	t.Helper()
	return newRawPhoneOn(t, untrustedIP)
}

// newRawPhoneOn is a raw phone on the given loopback address.
func newRawPhoneOn(t *testing.T, ip string) *rawPhone {
	t.Helper()
	port := freePort(t)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawPhone{Port: port, conn: c}
}

func (p *rawPhone) send(t *testing.T, to, msg string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(to)
	pn, _ := strconv.Atoi(port)
	if _, err := p.conn.WriteToUDP([]byte(msg), &net.UDPAddr{IP: net.ParseIP(host), Port: pn}); err != nil {
		t.Fatalf("sending: %v", err)
	}
}

// recv reads messages until keep accepts one or within runs out.
func (p *rawPhone) recv(within time.Duration, keep func(sipMsg) bool) (sipMsg, bool) {
	deadline := time.Now().Add(within)
	buf := make([]byte, 65536)
	for {
		_ = p.conn.SetReadDeadline(deadline)
		n, _, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return sipMsg{}, false
		}
		m := parseSIP(string(buf[:n]))
		if keep(m) {
			return m, true
		}
	}
}

// recvResponse waits (up to 5 s) for the final response to method/cseq.
func (p *rawPhone) recvResponse(method string, cseq int) (sipMsg, bool) {
	return p.recv(5*time.Second, func(m sipMsg) bool {
		n, meth := m.CSeq()
		return m.Status >= 200 && n == cseq && meth == method
	})
}

// recvRequest waits up to within for a request of method.
func (p *rawPhone) recvRequest(t *testing.T, method string, within time.Duration) (sipMsg, bool) {
	t.Helper()
	return p.recv(within, func(m sipMsg) bool { return m.Method == method })
}
