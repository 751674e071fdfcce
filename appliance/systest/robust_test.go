package systest

// Robustness of the call path (issue 10): bad responses from a callee,
// callees that go silent, late answers of gateways the switch gave up,
// re-INVITEs that are never answered. The callee and gateway here is a
// raw UDP socket of the test, so that it can send what no well-behaved
// stack would.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// responseTo builds a response to the request req (as the gateway saw
// it): code and reason, the To tag toTag ("" for none), a Contact at
// contact when not empty, and without the headers named in drop.
func responseTo(req sipMsg, code int, reason, toTag, contact string, drop ...string) string {
	skip := map[string]bool{}
	for _, d := range drop {
		skip[canonicalHeader(d)] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, v := range req.HeaderLines("Via") {
		if !skip["via"] {
			fmt.Fprintf(&b, "Via: %s\r\n", v)
		}
	}
	to := req.Header("To")
	if toTag != "" && !hasHeaderParam(to, "tag") {
		to += ";tag=" + toTag
	}
	for _, h := range []struct{ name, value string }{
		{"From", req.Header("From")}, {"To", to}, {"Call-ID", req.Header("Call-ID")}, {"CSeq", req.Header("CSeq")},
	} {
		if !skip[canonicalHeader(h.name)] {
			fmt.Fprintf(&b, "%s: %s\r\n", h.name, h.value)
		}
	}
	if contact != "" {
		fmt.Fprintf(&b, "Contact: <%s>\r\n", contact)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// callToRawGateway starts a switch with cfg routing every number to the
// raw gateway gwy, and a sipp caller from the trusted peer running
// scenario; it returns once the gateway has the INVITE.
func callToRawGateway(t *testing.T, cfg ssConfig, gwy *rawPhone, scenario string) (*server, *sippProc, sipMsg) {
	t.Helper()
	srv := startServer(t, cfg)
	a := startSipp(t, sippOpts{Name: "caller", Scenario: scenario, Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0301234", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"}, Timeout: 20 * time.Second})
	inv, ok := gwy.recvRequest(t, "INVITE", 5*time.Second)
	if !ok {
		t.Fatal("the gateway got no INVITE")
	}
	return srv, a, inv
}

// A callee or gateway is outside input like any caller: responses that
// lack what a dialog is built from are dropped and counted, and the call
// goes on. (Before, a 180 without To killed the process, and every call
// with it.) The last one, a 2xx without the callee's tag, can be neither
// ACKed nor hung up: the gateway's transaction then fails (408) like a
// gateway that never answered.
func TestBadResponsesFromGateway(t *testing.T) {
	t.Parallel()
	gwy := newRawPhone(t)
	cfg := defaultConfig()
	cfg.Extra = huntTOML("", gw("gw-bad", gwy.Port, 1, 1, ""))
	srv, a, inv := callToRawGateway(t, cfg, gwy, "uac_rejected.xml")
	contact := fmt.Sprintf("sip:gw@127.0.0.1:%d", gwy.Port)
	bad := []string{
		responseTo(inv, 180, "Ringing", "gw1", contact, "To"),
		responseTo(inv, 183, "Session Progress", "gw1", contact, "From"),
		responseTo(inv, 180, "Ringing", "gw1", contact, "Call-ID"),
		strings.Replace(responseTo(inv, 180, "Ringing", "gw1", contact), "SIP/2.0 180", "SIP/2.0 99", 1),
		responseTo(inv, 486, "Busy Here", "gw1", contact, "CSeq"),
		responseTo(inv, 200, "OK", "", contact), // a 2xx without the callee's tag
	}
	// One at a time: sipgo hands each datagram to a goroutine of its own.
	gwy.send(t, srv.Addr, responseTo(inv, 100, "Trying", "", ""))
	for _, m := range bad {
		time.Sleep(30 * time.Millisecond)
		gwy.send(t, srv.Addr, m)
	}
	r := a.wait()
	r.requireOK(t)
	requireFinals(t, r, "INVITE", 408)
	waitLog(t, srv, 5*time.Second, "invalid response dropped", `reason="missing From or To"`)
	waitLog(t, srv, 5*time.Second, "invalid response dropped", `reason="missing Call-ID"`)
	waitLog(t, srv, 5*time.Second, "invalid response dropped", `reason="2xx to INVITE without a To tag"`)
	runSipp(t, sippOpts{Name: "options-after", Scenario: "options.xml", Remote: srv.Addr, Timeout: 10 * time.Second}).requireOK(t)
}

// Timer C (RFC 3261 §16.6): a gateway that rings, then goes silent, is
// cancelled with cause 102 once Timer C runs out (2 s here); the caller
// gets 408 long before the no-answer timer (60 s). The gateway never
// answers the CANCEL either: 64*T1 later the switch ends that INVITE
// transaction instead of keeping the call for ever.
func TestTimerCEndsASilentFork(t *testing.T) {
	t.Parallel()
	gwy := newRawPhone(t)
	cfg := defaultConfig()
	cfg.T1, cfg.TimerC = "100ms", "2s"
	cfg.Extra = huntTOML("", gw("gw-mute", gwy.Port, 1, 1, ""))
	srv, a, inv := callToRawGateway(t, cfg, gwy, "uac_rejected.xml")
	gwy.send(t, srv.Addr, responseTo(inv, 180, "Ringing", "mute1", "sip:gw@127.0.0.1:"+strconv.Itoa(gwy.Port)))
	cancel, ok := gwy.recvRequest(t, "CANCEL", 6*time.Second)
	if !ok {
		t.Fatal("no CANCEL within 6 s of a silence after 180 (timer_c = 2s)")
	}
	checkReason(t, "CANCEL after Timer C", cancel, 102)
	r := a.wait()
	r.requireOK(t)
	requireFinals(t, r, "INVITE", 408)
	waitLog(t, srv, 15*time.Second, "abandoned fork ended unanswered", "gateway=gw-mute")
	waitLog(t, srv, 5*time.Second, "call released", "q850=102")
}

// A gateway that sent nothing within invite_timeout is left for the next;
// when its 200 comes after all, the switch ACKs it and hangs up at once:
// no ghost call stays up (and billed) at the carrier.
func TestLateAnswerOfAbandonedGatewayIsHungUp(t *testing.T) {
	t.Parallel()
	late := newRawPhone(t)
	pOK := freePort(t)
	cfg := defaultConfig()
	cfg.Extra = huntTOML("invite_timeout = \"1s\"", gw("gw-late", late.Port, 1, 1, ""), gw("gw-ok", pOK, 2, 1, ""))
	srv := startServer(t, cfg)
	ok := startUAS(t, "gw-ok", "uas_answer.xml", sippOpts{Port: pOK})
	a := startSipp(t, sippOpts{Name: "caller", Scenario: "uac_trusted_call.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0301234", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"}, Timeout: 20 * time.Second})
	inv, got := late.recvRequest(t, "INVITE", 5*time.Second)
	if !got {
		t.Fatal("the late gateway got no INVITE")
	}
	waitLog(t, srv, 5*time.Second, "gateway failover", "from=gw-late", "to=gw-ok")
	late.send(t, srv.Addr, responseTo(inv, 200, "OK", "late1", "sip:gw@127.0.0.1:"+strconv.Itoa(late.Port)))
	ack, gotAck := late.recvRequest(t, "ACK", 5*time.Second)
	if !gotAck {
		t.Fatal("the late 200 was never ACKed")
	}
	if n, m := ack.CSeq(); m != "ACK" || strconv.Itoa(n)+" INVITE" != inv.Header("CSeq") {
		t.Errorf("ACK CSeq %q for INVITE CSeq %q", ack.Header("CSeq"), inv.Header("CSeq"))
	}
	bye, gotBye := late.recvRequest(t, "BYE", 5*time.Second)
	if !gotBye {
		t.Fatal("the late answer was not hung up: a ghost call")
	}
	if headerParam(bye.Header("To"), "tag") != "late1" || bye.Header("Call-ID") != inv.Header("Call-ID") {
		t.Errorf("BYE outside the late dialog: %s", bye.Raw)
	}
	late.send(t, srv.Addr, responseTo(bye, 200, "OK", "", ""))
	a.wait().requireOK(t)
	ok.wait().requireOK(t)
}

// A re-INVITE its callee answers with 100 and nothing more: 64*T1 later
// (6.4 s with t1 = 100ms) its sender gets 408 and both legs a BYE, with
// the cause in the release, instead of a call that answers 491 to every
// later re-INVITE for ever.
func TestReInviteToSilentCallee(t *testing.T) {
	t.Parallel()
	gwy := newRawPhone(t)
	caller := newRawPhoneOn(t, trustedIP)
	cfg := defaultConfig()
	cfg.T1 = "100ms"
	cfg.Extra = huntTOML("", gw("gw-b", gwy.Port, 1, 1, ""))
	srv := startServer(t, cfg)
	me := fmt.Sprintf("%s:%d", trustedIP, caller.Port)
	gwContact := "sip:gw@127.0.0.1:" + strconv.Itoa(gwy.Port)
	inviteFrom := func(cseq int, toTag string) string {
		to := "<sip:0301234@" + srv.Addr + ">"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return fmt.Sprintf("INVITE sip:0301234@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-re-%d\r\n"+
			"From: <sip:0401111@%s>;tag=caller1\r\nTo: %s\r\nCall-ID: reinvite-silent@test\r\nCSeq: %d INVITE\r\n"+
			"Contact: <sip:0401111@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", srv.Addr, me, cseq, me, to, cseq, me)
	}
	caller.send(t, srv.Addr, inviteFrom(1, ""))
	inv, ok := gwy.recvRequest(t, "INVITE", 5*time.Second)
	if !ok {
		t.Fatal("no INVITE at the callee")
	}
	gwy.send(t, srv.Addr, responseTo(inv, 200, "OK", "b1", gwContact))
	okA, got := caller.recvResponse("INVITE", 1)
	if !got || okA.Status != 200 {
		t.Fatalf("caller: %v %s", got, okA.First)
	}
	aTag := headerParam(okA.Header("To"), "tag")
	caller.send(t, srv.Addr, fmt.Sprintf("ACK sip:0301234@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-ack-1\r\n"+
		"From: <sip:0401111@%s>;tag=caller1\r\nTo: %s\r\nCall-ID: reinvite-silent@test\r\nCSeq: 1 ACK\r\n"+
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", srv.Addr, me, me, okA.Header("To")))
	if _, got := gwy.recvRequest(t, "ACK", 5*time.Second); !got {
		t.Fatal("no ACK at the callee")
	}
	caller.send(t, srv.Addr, inviteFrom(2, aTag))
	re, ok := gwy.recv(5*time.Second, func(m sipMsg) bool { return m.Method == "INVITE" && m.Header("CSeq") != inv.Header("CSeq") })
	if !ok {
		t.Fatal("the re-INVITE was not relayed")
	}
	gwy.send(t, srv.Addr, responseTo(re, 100, "Trying", "", ""))
	final, got := caller.recv(15*time.Second, func(m sipMsg) bool {
		n, meth := m.CSeq()
		return m.Status >= 200 && n == 2 && meth == "INVITE"
	})
	if !got || final.Status != 408 {
		t.Fatalf("re-INVITE sender: %v %q, want 408", got, final.First)
	}
	if _, got := gwy.recvRequest(t, "BYE", 5*time.Second); !got {
		t.Error("the callee got no BYE")
	}
	if _, got := caller.recvRequest(t, "BYE", 5*time.Second); !got {
		t.Error("the caller got no BYE")
	}
	waitLog(t, srv, 5*time.Second, "call released", `cause="re-INVITE not answered"`, "q850=102")
}
