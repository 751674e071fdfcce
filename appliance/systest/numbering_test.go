package systest

// Number analysis, digit manipulation, limits, lists, redirect and Q.850
// causes (issue 3: R7, R9, R11, R12), seen on the wire at sipp gateways.

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// trunkCall runs one answered call from the trusted peer to number, with
// caller as the calling number (From user).
func trunkCall(t *testing.T, srv *server, name, number, caller string) *sippResult {
	t.Helper()
	return runSipp(t, sippOpts{
		Name: name, Scenario: "uac_trusted_call.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: number, Keys: map[string]string{"caller": caller, "max_forwards": "70"},
		Timeout: 20 * time.Second,
	})
}

// trunkRefused runs a call from the trusted peer that must fail and
// returns the final response the caller got.
func trunkRefused(t *testing.T, srv *server, name, number, caller string) sipMsg {
	t.Helper()
	a := runSipp(t, sippOpts{
		Name: name, Scenario: "uac_rejected.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: number, Keys: map[string]string{"caller": caller, "max_forwards": "70"},
		Timeout: 20 * time.Second,
	})
	a.requireOK(t)
	finals := a.ReceivedFinals("INVITE")
	if len(finals) == 0 {
		t.Fatalf("%s: no final response", name)
	}
	return finals[len(finals)-1]
}

var uriUser = regexp.MustCompile(`sips?:([^@;>]+)@`)

// userOf is the user part of the first SIP URI in s.
func userOf(s string) string {
	m := uriUser.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

// gwInvite is the INVITE a gateway received, checked for the numbers.
func gwInvite(t *testing.T, gw *sippResult, called, calling string) sipMsg {
	t.Helper()
	inv := gw.mustReceivedRequest(t, "INVITE")
	if got := userOf(inv.RURI); got != called {
		t.Errorf("%s: Request-URI user %q, want %q (%s)", gw.Name, got, called, inv.RURI)
	}
	if got := userOf(inv.Header("From")); got != calling {
		t.Errorf("%s: From user %q, want %q (From: %s)", gw.Name, got, calling, inv.Header("From"))
	}
	if got := userOf(inv.Header("P-Asserted-Identity")); got != calling {
		t.Errorf("%s: P-Asserted-Identity user %q, want %q", gw.Name, got, calling)
	}
	return inv
}

// checkReason requires Reason: Q.850;cause=N on m.
func checkReason(t *testing.T, who string, m sipMsg, cause int) {
	t.Helper()
	want := fmt.Sprintf("Q.850;cause=%d", cause)
	if r := m.Header("Reason"); !strings.Contains(strings.ReplaceAll(r, " ", ""), want) {
		t.Errorf("%s: Reason %q, want %s", who, r, want)
	}
}

// waitLog waits until the server log contains every one of parts on one line.
func waitLog(t *testing.T, srv *server, within time.Duration, parts ...string) {
	t.Helper()
	waitFileLine(t, srv.LogPath, within, parts...)
}

// waitFileLine returns the file's text once a line of it has every part,
// or fails.
func waitFileLine(t *testing.T, path string, within time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		data, _ := os.ReadFile(path)
		for _, line := range strings.Split(string(data), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return string(data)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q in %s within %v:\n%s", parts, path, within, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gatewayTOML declares a gateway, a group of it alone and a route to it.
func gatewayTOML(name string, port int, extra string) string {
	return fmt.Sprintf(`[[gateway]]
name = %q
address = "127.0.0.1:%d"
%s
[[group]]
name = %q
[[group.member]]
gateway = %q

[[route]]
name = %q
group = %q

`, name, port, extra, name, name, name, name)
}

// TestNumberAnalysisOnTheWire: longest prefix, the trunk plan, every
// digit operation and their order, seen in the Request-URI, From and
// P-Asserted-Identity each gateway receives.
func TestNumberAnalysisOnTheWire(t *testing.T) {
	t.Parallel()
	pA, pB := freePort(t), freePort(t)
	cfg := defaultConfig()
	cfg.Extra = `[numbering]
country_code = "49"

[[trunk_plan]]
name = "trunk-a"
called_ops = ["replace 1010"]

` + gatewayTOML("gw-a", pA, `called_ops = ["e164"]
calling_ops = ["international"]`) +
		gatewayTOML("gw-b", pB, `called_ops = ["insert 0 8899"]
calling_ops = ["e164"]`) +
		gatewayTOML("gw-n", pA, "") + `
[[route]]
name = "berlin"
group = "gw-b"
called_ops = ["insert 0 49"]

[[analysis]]
prefix = "0"
action = "route"
route = "gw-a"
calling_ops = ["e164"]

[[analysis]]
prefix = "0301"
action = "route"
route = "berlin"
called_ops = ["delete 0 1"]

[[analysis]]
prefix = "+49"
action = "route"
route = "gw-n"
called_ops = ["national"]
calling_ops = ["replace 04 +494"]
`
	srv := startServer(t, cfg)
	cases := []struct {
		name, number, caller string
		port                 int
		called, calling      string
	}{
		// "0301" is longer than "0": delete 0 1, route insert 0 49, gateway insert 0 8899; calling e164 at the gateway.
		{"longest-prefix-ops", "0301234567", "0401111", pB, "889949301234567", "+49401111"},
		// "0": entry calling e164, gateway called e164 and calling international.
		{"national-to-e164", "0891234", "0401111", pA, "+49891234", "0049401111"},
		// trunk plan removes the carrier-select prefix before analysis.
		{"trunk-plan-replace", "10100891234", "0401111", pA, "+49891234", "0049401111"},
		// "+49": national form out; calling prefix replaced.
		{"e164-to-national", "+4930999", "0401111", pA, "030999", "+49401111"},
	}
	for _, c := range cases {
		gw := startUAS(t, "gw-"+c.name, "uas_answer.xml", sippOpts{Port: c.port})
		a := trunkCall(t, srv, "trunk-"+c.name, c.number, c.caller)
		b := gw.wait()
		a.requireOK(t)
		b.requireOK(t)
		gwInvite(t, b, c.called, c.calling)
	}
}

// TestNumberLengthLimits: 24 called digits accepted, 25 refused with 484
// and cause 28; 20 calling digits accepted, 21 refused; with the limit
// raised to 28, 28 accepted and 29 refused. Nothing is truncated.
func TestNumberLengthLimits(t *testing.T) {
	t.Parallel()
	digits := func(n int) string { return strings.Repeat("1234567890", 3)[:n] }
	for _, lim := range []int{24, 28} {
		gwPort := freePort(t)
		cfg := defaultConfig()
		cfg.Extra = fmt.Sprintf("[numbering]\nmax_called_digits = %d\n\n", lim) + gatewayTOML("gw", gwPort, "") +
			"[[analysis]]\nprefix = \"\"\naction = \"route\"\nroute = \"gw\"\n"
		srv := startServer(t, cfg)

		gw := startUAS(t, fmt.Sprintf("gw-%d", lim), "uas_answer.xml", sippOpts{Port: gwPort})
		a := trunkCall(t, srv, fmt.Sprintf("called-%d-digits", lim), digits(lim), digits(20))
		b := gw.wait()
		a.requireOK(t)
		b.requireOK(t)
		gwInvite(t, b, digits(lim), digits(20))

		res := trunkRefused(t, srv, fmt.Sprintf("called-%d-digits", lim+1), digits(lim+1), "5551000")
		if res.Status != 484 {
			t.Errorf("called number of %d digits (limit %d): %d, want 484", lim+1, lim, res.Status)
		}
		checkReason(t, "too long called number", res, 28)
		res = trunkRefused(t, srv, fmt.Sprintf("calling-21-digits-%d", lim), digits(10), digits(21))
		if res.Status != 484 {
			t.Errorf("calling number of 21 digits: %d, want 484", res.Status)
		}
	}
}

// TestListsAndEmergencyBypass: a global black list, a trunk's white list,
// and an emergency number that bypasses both.
func TestListsAndEmergencyBypass(t *testing.T) {
	t.Parallel()
	gwPort := freePort(t)
	cfg := defaultConfig()
	cfg.Extra = gatewayTOML("gw", gwPort, "") + `
[[analysis]]
prefix = ""
action = "route"
route = "gw"

[[analysis]]
prefix = "112"
action = "route"
route = "gw"
bypass_lists = true

[[list]]
name = "premium"
kind = "black"
match = "called"
prefixes = ["0900", "0137"]
status = 603
cause = 21

[[list]]
name = "spam"
kind = "black"
match = "calling"
prefixes = ["0555"]

[[list]]
name = "trunk-a-national-only"
kind = "white"
match = "called"
scope = "trunk:trunk-a"
prefixes = ["0"]
`
	srv := startServer(t, cfg)

	res := trunkRefused(t, srv, "black-called", "09001234", "0401111")
	if res.Status != 603 {
		t.Errorf("black-listed called number: %d, want 603", res.Status)
	}
	checkReason(t, "black-listed called", res, 21)
	res = trunkRefused(t, srv, "black-calling", "0301234", "05551234")
	if res.Status != 403 {
		t.Errorf("black-listed calling number: %d, want 403", res.Status)
	}
	checkReason(t, "black-listed calling", res, 21)
	res = trunkRefused(t, srv, "not-white", "4930123", "0401111")
	if res.Status != 403 {
		t.Errorf("called number outside the trunk's white list: %d, want 403", res.Status)
	}

	gw := startUAS(t, "gw-allowed", "uas_answer.xml", sippOpts{Port: gwPort})
	a := trunkCall(t, srv, "white-listed", "0301234", "0401111")
	b := gw.wait()
	a.requireOK(t)
	b.requireOK(t)
	gwInvite(t, b, "0301234", "0401111")

	// 112 is in no white list and the caller is black-listed: still routed.
	gw = startUAS(t, "gw-emergency", "uas_answer.xml", sippOpts{Port: gwPort})
	a = trunkCall(t, srv, "emergency", "112", "05551234")
	b = gw.wait()
	a.requireOK(t)
	b.requireOK(t)
	gwInvite(t, b, "112", "05551234")
}

// TestRedirect302: an analysis entry in redirect mode answers 302 with
// the translated number in the Contact, and sends nothing onward.
func TestRedirect302(t *testing.T) {
	t.Parallel()
	sink := startUDPSink(t)
	cfg := defaultConfig()
	cfg.Extra = gatewayTOML("gw", sink.Port, "") + `
[[analysis]]
prefix = ""
action = "route"
route = "gw"

[[analysis]]
prefix = "0301"
action = "redirect"
contact = "sip:{called}@ported.example.net"
called_ops = ["insert 0 912"]
`
	srv := startServer(t, cfg)
	res := trunkRefused(t, srv, "redirected", "0301555", "0401111")
	if res.Status != 302 {
		t.Fatalf("redirect entry: %d, want 302", res.Status)
	}
	if got := res.Header("Contact"); !strings.Contains(got, "sip:9120301555@ported.example.net") {
		t.Errorf("302 Contact %q, want sip:9120301555@ported.example.net", got)
	}
	sink.requireSilent(t, "the gateway")
}

// TestReasonOnFailedCall: a gateway's 486 without a Reason reaches the
// caller with Reason Q.850 cause 17 (RFC 3398); a cause the gateway sends
// is passed unchanged.
func TestReasonOnFailedCall(t *testing.T) {
	t.Parallel()
	gwPort := freePort(t)
	cfg := defaultConfig()
	cfg.Extra = gatewayTOML("gw", gwPort, "") + "[[analysis]]\nprefix = \"\"\naction = \"route\"\nroute = \"gw\"\n"
	srv := startServer(t, cfg)

	gw := startUAS(t, "gw-486", "uas_busy.xml", sippOpts{Port: gwPort})
	res := trunkRefused(t, srv, "busy-no-reason", "0301234", "0401111")
	gw.wait().requireOK(t)
	if res.Status != 486 {
		t.Errorf("gateway 486: caller got %d", res.Status)
	}
	checkReason(t, "486 without Reason", res, 17)

	gw = startUAS(t, "gw-404-cause-1", "uas_404_reason.xml", sippOpts{Port: gwPort, Keys: map[string]string{"cause": "1"}})
	res = trunkRefused(t, srv, "unallocated-with-reason", "0301234", "0401111")
	gw.wait().requireOK(t)
	if res.Status != 404 {
		t.Errorf("gateway 404: caller got %d", res.Status)
	}
	checkReason(t, "404 with the gateway's Reason", res, 1)
	if !strings.Contains(res.Header("Reason"), "from the gateway") {
		t.Errorf("the gateway's Reason text was not passed: %q", res.Header("Reason"))
	}
}
