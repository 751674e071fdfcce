package systest

// The front door (issue 11): per-source admission and overload control.
// No test here measures a speed: overload is brought on by the max_calls
// cap, and a flood is counted in requests, not in time.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawInvite is a new INVITE from the raw phone at from (ip:port) to
// number through srv; via adds parameters to its Via.
func rawInvite(srvAddr, from, number, callID string, via string) string {
	return fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s%s\r\n"+
		"From: <sip:0401111@%s>;tag=f-%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:0401111@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		number, srvAddr, from, callID, via, from, callID, number, srvAddr, callID, from)
}

// One source floods INVITEs at ten times its limit: it is blocked (its
// requests dropped unread, an event and a log line), while calls from
// another source keep completing; `softswitch blocked` lists it and
// `softswitch unblock` lets it in again.
func TestFloodedSourceIsBlocked(t *testing.T) {
	t.Parallel()
	gwPort := freePort(t)
	cfg := defaultConfig()
	cfg.Extra = huntTOML("", gw("gw-ok", gwPort, 1, 1, "")) +
		"\n[admission]\nrate = 20\nburst = 40\nblock = \"60s\"\n"
	srv := startServer(t, cfg)
	g := startUAS(t, "gw-ok", "uas_answer.xml", sippOpts{Port: gwPort, Calls: -1, Timeout: 40 * time.Second})

	flooder := newRawPhoneOn(t, "127.0.0.9")
	me := "127.0.0.9:" + strconv.Itoa(flooder.Port)
	got := make(chan int, 1)
	go func() { // count the INVITEs answered (407 challenges while admitted; retransmissions once)
		answered := map[string]bool{}
		for {
			m, ok := flooder.recv(3*time.Second, func(sipMsg) bool { return true })
			if !ok {
				got <- len(answered)
				return
			}
			answered[m.Header("Call-ID")] = true
		}
	}()
	calls := startSipp(t, sippOpts{Name: "trunk-calls", Scenario: "uac_trusted_call.xml", Remote: srv.Addr,
		LocalIP: trustedIP, Service: "0301234", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"},
		Calls: 10, Rate: 5, Timeout: 30 * time.Second})
	// 400 INVITEs at 200/s: ten times the limit of 20/s.
	const sent = 400
	for i := range sent {
		flooder.send(t, srv.Addr, rawInvite(srv.Addr, me, "0301234", "flood-"+strconv.Itoa(i)+"@test", ""))
		time.Sleep(5 * time.Millisecond)
	}
	r := calls.wait()
	r.requireOK(t) // every call from the other source completed
	answered := <-got
	// Admitted: the burst (40) and 20/s until the bucket ran dry, well
	// under a second of the flood; then nothing.
	if answered == 0 || answered > 80 {
		t.Fatalf("the flooder got %d answers to %d INVITEs; want the burst of about 40, then none", answered, sent)
	}
	waitLog(t, srv, 5*time.Second, "source blocked", "source=127.0.0.9")
	if out := softswitchCmd(t, srv, "blocked"); !strings.Contains(out, "127.0.0.9") {
		t.Fatalf("softswitch blocked:\n%s", out)
	}
	// Still blocked: an OPTIONS gets nothing.
	opt := func(n int) string {
		return fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-opt-%d\r\n"+
			"From: <sip:probe@%s>;tag=o%d\r\nTo: <sip:%s>\r\nCall-ID: opt-%d@test\r\nCSeq: 1 OPTIONS\r\n"+
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", srv.Addr, me, n, me, n, srv.Addr, n)
	}
	flooder.send(t, srv.Addr, opt(1))
	if m, ok := flooder.recvResponse("OPTIONS", 1); ok {
		t.Fatalf("blocked source got %s", m.First)
	}
	if out := softswitchCmd(t, srv, "unblock", "127.0.0.9"); !strings.Contains(out, "unblocked") {
		t.Fatalf("softswitch unblock:\n%s", out)
	}
	flooder.send(t, srv.Addr, opt(2))
	if m, ok := flooder.recvResponse("OPTIONS", 1); !ok || m.Status != 200 {
		t.Fatalf("unblocked source: %v %q, want 200", ok, m.First)
	}
	g.kill()
}

// At max_calls the switch refuses new calls with a 503 made from the
// request's bytes as it is read: a randomised Retry-After within the
// configured bounds, Reason Q.850 42, RFC 7339's oc parameters for a
// client that offered them, the same To tag for a copy; OPTIONS
// keepalives keep getting 200; once calls end, new calls go through.
func TestOverloadRefusesNewCallsKeepsOptions(t *testing.T) {
	t.Parallel()
	gwy := newRawPhone(t)
	cfg := defaultConfig()
	cfg.Extra = huntTOML("", gw("gw-raw", gwy.Port, 1, 1, "")) +
		"\n[overload]\nmax_calls = 2\nretry_after_min = 7\nretry_after_max = 9\n"
	srv := startServer(t, cfg)
	caller := newRawPhoneOn(t, trustedIP)
	me := trustedIP + ":" + strconv.Itoa(caller.Port)

	// Two calls ring at the gateway: the switch is at its cap.
	var invs []sipMsg
	for i := range 2 {
		caller.send(t, srv.Addr, rawInvite(srv.Addr, me, "0301234", "held-"+strconv.Itoa(i)+"@test", ""))
		inv, ok := gwy.recvRequest(t, "INVITE", 5*time.Second)
		if !ok {
			t.Fatalf("call %d did not reach the gateway", i)
		}
		gwy.send(t, srv.Addr, responseTo(inv, 180, "Ringing", "g"+strconv.Itoa(i), ""))
		invs = append(invs, inv)
	}
	// A third is refused at the door, before routing.
	caller.send(t, srv.Addr, rawInvite(srv.Addr, me, "0301234", "refused@test", ";oc"))
	res, ok := caller.recv(5*time.Second, func(m sipMsg) bool { return m.Status >= 200 && m.Header("Call-ID") == "refused@test" })
	if !ok || res.Status != 503 {
		t.Fatalf("third call: %v %q, want 503", ok, res.First)
	}
	if ra, err := strconv.Atoi(res.Header("Retry-After")); err != nil || ra < 7 || ra > 9 {
		t.Fatalf("Retry-After %q, want 7..9", res.Header("Retry-After"))
	}
	if !strings.Contains(res.Header("Reason"), "cause=42") {
		t.Fatalf("Reason %q, want Q.850 cause 42", res.Header("Reason"))
	}
	via := res.Header("Via")
	for _, p := range []string{"oc", "oc-algo", "oc-validity", "oc-seq"} {
		if !hasHeaderParam(via, p) {
			t.Fatalf("503 Via lacks %s: %s", p, via)
		}
	}
	if !strings.HasPrefix(headerParam(res.Header("To"), "tag"), "x503-") {
		// Refused as it was read, from its bytes (core/sipudp/refuse.go).
		t.Fatalf("503 To tag is not a refusal's from the bytes: %s", res.Header("To"))
	}
	// A copy of the INVITE gets the same answer, with the same To tag.
	caller.send(t, srv.Addr, rawInvite(srv.Addr, me, "0301234", "refused@test", ";oc"))
	again, ok := caller.recv(5*time.Second, func(m sipMsg) bool { return m.Status >= 200 && m.Header("Call-ID") == "refused@test" })
	if !ok || again.Status != 503 || headerParam(again.Header("To"), "tag") != headerParam(res.Header("To"), "tag") {
		t.Fatalf("the copy got %v %q (To %s), want the same 503", ok, again.First, again.Header("To"))
	}
	if _, ok := gwy.recv(time.Second, func(m sipMsg) bool { return m.Method == "INVITE" }); ok {
		t.Fatal("the refused call reached the gateway")
	}
	// Keepalives are answered all the while.
	for i := range 3 {
		runSipp(t, sippOpts{Name: "options-" + strconv.Itoa(i), Scenario: "options.xml", Remote: srv.Addr, Timeout: 10 * time.Second}).requireOK(t)
	}
	waitLog(t, srv, 5*time.Second, "overload: refusing new calls", "cause=max_calls")

	// The calls end; a new one goes through.
	for i, inv := range invs {
		gwy.send(t, srv.Addr, responseTo(inv, 486, "Busy Here", "g"+strconv.Itoa(i), ""))
	}
	for range invs {
		if _, ok := caller.recv(5*time.Second, func(m sipMsg) bool { return m.Status == 486 }); !ok {
			t.Fatal("the caller got no 486")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		caller.send(t, srv.Addr, rawInvite(srv.Addr, me, "0301234", "after-"+strconv.FormatInt(time.Now().UnixNano(), 36)+"@test", ""))
		if _, ok := gwy.recvRequest(t, "INVITE", time.Second); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new calls still refused after the calls ended")
		}
	}
	waitLog(t, srv, 5*time.Second, "overload ended")
}

// A gateway that asks for RFC 7339 overload control (oc=100 on the Via
// of its responses) gets no new calls while it lasts: the hunt takes the
// next gateway.
func TestGatewayOverloadControlIsHonoured(t *testing.T) {
	t.Parallel()
	busy := newRawPhone(t)
	okPort := freePort(t)
	cfg := defaultConfig()
	cfg.Extra = huntTOML("", gw("gw-busy", busy.Port, 1, 1, ""), gw("gw-ok", okPort, 2, 1, ""))
	srv := startServer(t, cfg)
	g := startUAS(t, "gw-ok", "uas_answer.xml", sippOpts{Port: okPort, Calls: 3, Timeout: 30 * time.Second})

	first := startSipp(t, sippOpts{Name: "first", Scenario: "uac_rejected.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0301234", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"}, Timeout: 20 * time.Second})
	inv, ok := busy.recvRequest(t, "INVITE", 5*time.Second)
	if !ok {
		t.Fatal("the first call did not reach gw-busy")
	}
	if !hasHeaderParam(inv.Header("Via"), "oc") {
		t.Fatalf("the switch does not offer overload control to the gateway: Via %s", inv.Header("Via"))
	}
	res := responseTo(inv, 486, "Busy Here", "busy1", "")
	res = strings.Replace(res, ";oc\r\n", ";oc=100;oc-algo=\"loss\";oc-validity=60000;oc-seq=1\r\n", 1)
	if !strings.Contains(res, "oc=100") {
		t.Fatalf("could not set oc on %q", res)
	}
	busy.send(t, srv.Addr, res)
	first.wait().requireOK(t)
	// The next calls skip gw-busy for the minute it asked for.
	for i := range 3 {
		trunkCall(t, srv, "next-"+strconv.Itoa(i), "0301234", "0401111").requireOK(t)
	}
	if m, ok := busy.recvRequest(t, "INVITE", 500*time.Millisecond); ok {
		t.Fatalf("gw-busy got a new call while asking for oc=100: %s", m.First)
	}
	g.wait().requireOK(t)
}
