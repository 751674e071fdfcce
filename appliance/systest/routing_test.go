package systest

import (
	"fmt"
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
