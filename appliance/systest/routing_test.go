package systest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestUnknownNumber: a number that is neither a subscriber nor matches a
// route gets 404 (after the caller authenticated).
func TestUnknownNumber(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	gw := startUDPSink(t)
	cfg.Routes = []route{{Prefix: "9", Gateway: fmt.Sprintf("127.0.0.1:%d", gw.Port), Transport: "udp"}}
	srv := startServer(t, cfg)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_rejected.xml", "5555"))
	a.requireOK(t)
	requireFinals(t, a, "INVITE", 407, 404)
	checkALeg(t, srv, a)
	gw.requireSilent(t, "the gateway")
}

// TestUnauthenticatedInviteRefused: an INVITE from a subscriber address
// without valid credentials gets 407, and 407 again with a wrong password;
// the callee never sees it.
func TestUnauthenticatedInviteRefused(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	phone := startUDPSink(t)
	registerContact(t, srv, "1002", "secret1002", phone.Port)

	o := callOpts(srv, "caller-1001-wrong-password", "uac_rejected.xml", "1002")
	o.AuthPass = "not-the-password"
	a := runSipp(t, o)
	a.requireOK(t)
	finals := requireFinals(t, a, "INVITE", 407, 407)
	checkChallenge(t, "first 407", finals[0], "Proxy-Authenticate", []string{"MD5"})
	checkChallenge(t, "407 to wrong credentials", finals[1], "Proxy-Authenticate", []string{"MD5"})
	if !a.SentRequests("INVITE")[1].Has("Proxy-Authorization") {
		t.Errorf("sipp sent no Proxy-Authorization in its second INVITE")
	}

	// A caller that is not a subscriber at all.
	o = callOpts(srv, "caller-unknown", "uac_rejected.xml", "1002")
	o.Keys["caller"], o.AuthUser, o.AuthPass = "1999", "1999", "secret1999"
	u := runSipp(t, o)
	u.requireOK(t)
	requireFinals(t, u, "INVITE", 407, 407)

	phone.requireSilent(t, "the phone of 1002")
}

// TestTrustedPeerToGateway: an INVITE from the trusted peer 127.0.0.5 is
// taken without digest and routed by prefix 9 to the gateway, with
// Request-URI sip:NUMBER@GWHOST:GWPORT.
func TestTrustedPeerToGateway(t *testing.T) {
	t.Parallel()
	gwPort := freePort(t)
	cfg := defaultConfig()
	cfg.Routes = []route{
		{Prefix: "9", Gateway: fmt.Sprintf("127.0.0.1:%d", gwPort), Transport: "udp"},
		{Prefix: "8", Gateway: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Transport: "udp"},
	}
	srv := startServer(t, cfg)
	gw := startUAS(t, "gateway", "uas_answer.xml", sippOpts{Port: gwPort, Keys: map[string]string{"user": "gw"}})

	a := runSipp(t, sippOpts{
		Name: "trunk-a", Scenario: "uac_trusted_call.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "9123456", Keys: map[string]string{"caller": "5551000", "max_forwards": "70"},
		Timeout: 20 * time.Second,
	})
	b := gw.wait()
	a.expectOK(t)
	b.requireOK(t)

	requireFinals(t, a, "INVITE", 200)
	leg := checkBLegInvite(t, srv, a, b, "5551000", "9123456", fmt.Sprintf("sip:9123456@127.0.0.1:%d", gwPort))
	checkALeg(t, srv, a, b)
	checkAnswerRelayed(t, a, b)
	checkAckRelayed(t, b, leg.bInvite)
	b.mustReceivedRequest(t, "BYE")
}

// TestMaxForwardsZero: an INVITE with Max-Forwards: 0 gets 483 and is not
// forwarded (sent from the trusted peer so that no digest exchange comes first).
func TestMaxForwardsZero(t *testing.T) {
	t.Parallel()
	gw := startUDPSink(t)
	cfg := defaultConfig()
	cfg.Routes = []route{{Prefix: "9", Gateway: fmt.Sprintf("127.0.0.1:%d", gw.Port), Transport: "udp"}}
	srv := startServer(t, cfg)

	a := runSipp(t, sippOpts{
		Name: "trunk-a-max-forwards-0", Scenario: "uac_rejected.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "9123456", Keys: map[string]string{"caller": "5551000", "max_forwards": "0"},
		Timeout: 15 * time.Second,
	})
	a.requireOK(t)
	requireFinals(t, a, "INVITE", 483)
	gw.requireSilent(t, "the gateway")
}

// TestInviteCopyAfterAck: a copy of the caller's INVITE that arrives after
// the call is answered and acknowledged (a retransmission delayed in the
// network) is absorbed: no 482, no second call toward the gateway.
func TestInviteCopyAfterAck(t *testing.T) {
	t.Parallel()
	gwPort := freePort(t)
	cfg := defaultConfig()
	cfg.Routes = []route{{Prefix: "9", Gateway: fmt.Sprintf("127.0.0.1:%d", gwPort), Transport: "udp"}}
	srv := startServer(t, cfg)
	gw := startUAS(t, "gateway", "uas_answer.xml", sippOpts{Port: gwPort})
	ph := newRawPhoneOn(t, trustedIP)
	me := fmt.Sprintf("%s:%d", trustedIP, ph.Port)
	sdp := "v=0\r\no=systest-caller 1 1 IN IP4 127.0.0.1\r\ns=systest-caller-session\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
	head := func(method string, cseq int, branch, toTag string) string {
		to := "<sip:9123@" + srv.Addr + ">"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return fmt.Sprintf("%s sip:9123@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nFrom: <sip:5551000@%s>;tag=copy-a\r\nTo: %s\r\nCall-ID: copy-after-ack@systest\r\nCSeq: %d %s\r\nContact: <sip:5551000@%s>\r\nMax-Forwards: 70\r\n",
			method, srv.Addr, me, branch, me, to, cseq, method, me)
	}
	invite := head("INVITE", 1, "z9hG4bKcopy1", "") + fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
	ph.send(t, srv.Addr, invite)
	ok, got := ph.recvResponse("INVITE", 1)
	if !got || ok.Status != 200 {
		t.Fatalf("INVITE: %+v", ok)
	}
	toTag := strings.TrimPrefix(regexp.MustCompile(`tag=[^;>\s]+`).FindString(ok.Header("To")), "tag=")
	ph.send(t, srv.Addr, head("ACK", 1, "z9hG4bKcopy1ack", toTag)+"Content-Length: 0\r\n\r\n")
	time.Sleep(300 * time.Millisecond)
	ph.send(t, srv.Addr, invite) // the late copy
	if m, bad := ph.recv(time.Second, func(m sipMsg) bool { return m.Status >= 300 }); bad {
		t.Errorf("the INVITE copy got %d %s", m.Status, m.Reason)
	}
	ph.send(t, srv.Addr, head("BYE", 2, "z9hG4bKcopybye", toTag)+"Content-Length: 0\r\n\r\n")
	if m, got := ph.recvResponse("BYE", 2); !got || m.Status != 200 {
		t.Errorf("BYE: %+v", m)
	}
	r := gw.wait()
	r.requireOK(t)
	if n := len(r.ReceivedRequests("INVITE")); n != 1 {
		t.Errorf("the gateway got %d INVITEs, want 1", n)
	}
}
