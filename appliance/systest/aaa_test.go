package systest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/softswitch/softswitch/aaa/diameter/testserver"
	"github.com/softswitch/softswitch/aaa/radius/freeradius"
)

// radiusDetail reads FreeRADIUS's detail file: one map per request.
func radiusDetail(path string) []map[string]string { return freeradius.Detail(path) }

// TestRADIUSAccountingThroughOutageAndKill: the accounting server is
// down while 50 calls are made and the switch is killed (kill -9) with
// calls in progress; once the server is back, every call's Start and
// Stop arrive, each identity (Acct-Session-Id and status) once apart
// from retransmissions, joined to the CDRs by record id and Call-ID; the
// calls the kill cut end "ended by restart" (NAS-Reboot).
func TestRADIUSAccountingThroughOutageAndKill(t *testing.T) {
	t.Parallel()
	rad := freeradius.Start(t, freeradius.Options{Secret: "acct-secret-0123456789",
		Dictionary: "../../docs/dictionary.softswitch"})
	srv := billingBed(t, fmt.Sprintf("[billing]\nnode = \"acc1\"\nrotate_records = 20\n\n"+
		"[aaa]\naccounting = [\"rad1\"]\n\n[[aaa.radius]]\nname = \"rad1\"\naddress = \"127.0.0.1\"\n"+
		"acct_port = %d\nsecret = \"acct-secret-0123456789\"\ntimeout = \"200ms\"\ntries = 2\ndead_time = \"1s\"\n",
		rad.Acct.Port()))

	// Up: accounted at once.
	first := trunkCalls(t, srv, "up", 5, 20)
	waitDetail := func(what string, within time.Duration, ok func([]map[string]string) bool) []map[string]string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			recs := radiusDetail(rad.Detail)
			if ok(recs) {
				return recs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s; the detail file has %d requests", what, within, len(recs))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitDetail("the first 5 calls' Start and Stop", 10*time.Second, func(r []map[string]string) bool { return len(r) >= 10 })

	// Down: 20 calls, 5 held through a kill -9, 20 more after the restart.
	rad.Stop()
	before := trunkCalls(t, srv, "outage-1", 20, 40)
	held := startSipp(t, sippOpts{Name: "held", Scenario: "uac_trusted_hold.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0305678", Keys: map[string]string{"caller": "0402222", "max_forwards": "70"},
		Calls: 5, Rate: 20, Pause: 60 * time.Second, Timeout: 90 * time.Second})
	time.Sleep(2 * time.Second) // answered on both sides
	srv.kill()
	held.kill()
	srv.start()
	after := trunkCalls(t, srv, "outage-2", 20, 40)
	time.Sleep(time.Second)
	rad.Restart()

	var ids []string
	for _, r := range []*sippResult{first, before, held.res, after} {
		ids = append(ids, callIDs(r)...)
	}
	if len(ids) != 50 {
		t.Fatalf("%d calls made, want 50", len(ids))
	}
	recs := waitDetail("every Start and Stop", 30*time.Second, func(r []map[string]string) bool {
		seen := map[string]bool{}
		for _, x := range r {
			seen[x["Acct-Session-Id"]+" "+x["Acct-Status-Type"]] = true
		}
		return len(seen) >= 100
	})
	srv.stop() // closes the CDR file: the join below needs it
	cdrs := cdrFiles(t, filepath.Join(srv.DataDir, "cdr"))

	byIdentity := map[string]map[string]string{}
	for _, x := range recs {
		key := x["Acct-Session-Id"] + " " + x["Acct-Status-Type"]
		if prev, dup := byIdentity[key]; dup && prev["Softswitch-Call-ID"] != x["Softswitch-Call-ID"] {
			t.Errorf("identity %s sent for two calls: %s and %s", key, prev["Softswitch-Call-ID"], x["Softswitch-Call-ID"])
		}
		byIdentity[key] = x
	}
	if len(byIdentity) != 100 {
		t.Errorf("%d identities in the detail file, want 100 (50 Start, 50 Stop)", len(byIdentity))
	}
	heldIDs := map[string]bool{}
	for _, id := range callIDs(held.res) {
		heldIDs[id] = true
	}
	for _, id := range ids {
		c := cdrs[id]
		if c == nil {
			t.Errorf("call %s has no CDR", id)
			continue
		}
		start, stop := byIdentity[c["record_id"]+" Start"], byIdentity[c["record_id"]+" Stop"]
		if start == nil || stop == nil {
			t.Errorf("call %s (record %s): Start %v, Stop %v", id, c["record_id"], start != nil, stop != nil)
			continue
		}
		if start["Softswitch-Call-ID"] != id || stop["Softswitch-Call-ID"] != id || stop["NAS-Identifier"] != "acc1" {
			t.Errorf("call %s: Start %v, Stop %v", id, start, stop)
		}
		want := "User-Request"
		if heldIDs[id] {
			want = "NAS-Reboot"
		}
		if stop["Acct-Terminate-Cause"] != want {
			t.Errorf("call %s: Acct-Terminate-Cause %q, want %q (CDR end reason %q)", id, stop["Acct-Terminate-Cause"], want, c["end_reason"])
		}
	}
}

// TestRADIUSDigestAuth: with registration_auth and call_auth on a
// FreeRADIUS, REGISTER and INVITE digests are checked there: its
// passwords work and the local table's do not, a user only it knows
// registers, a call goes through; with the server stopped REGISTER gets
// 503 with a Retry-After (no ban, no 401 loop); no password is logged.
func TestRADIUSDigestAuth(t *testing.T) {
	t.Parallel()
	rad := freeradius.Start(t, freeradius.Options{Secret: "auth-secret-0123456789",
		Users: "1001\tCleartext-Password := \"radius-1001\"\n1002\tCleartext-Password := \"radius-1002\"\n" +
			"3003\tCleartext-Password := \"radius-3003\"\n"})
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[aaa]\nregistration_auth = [\"rad1\"]\ncall_auth = [\"rad1\"]\n\n"+
		"[[aaa.radius]]\nname = \"rad1\"\naddress = \"127.0.0.1\"\nauth_port = %d\nsecret = \"auth-secret-0123456789\"\n"+
		"timeout = \"200ms\"\ntries = 2\ndead_time = \"2s\"\n", rad.Auth.Port())
	srv := startServer(t, cfg)

	callee := startUAS(t, "callee-1002", "uas_answer.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "radius-1002", callee.Port)
	registerContact(t, srv, "3003", "radius-3003", freePort(t)) // in RADIUS only
	local := runSipp(t, sippOpts{Name: "register-local-password", Scenario: "register_rejected.xml", Remote: srv.Addr,
		Service: "1002", AuthUser: "1002", AuthPass: "secret1002",
		Keys: map[string]string{"contact": contactFor("1002", callee.Port), "expires": "3600"}, Timeout: 15 * time.Second})
	local.requireOK(t)

	o := callOpts(srv, "caller-1001", "uac_call_bye.xml", "1002")
	o.AuthPass = "radius-1001"
	a := runSipp(t, o)
	callee.wait().requireOK(t)
	a.expectOK(t)
	requireFinals(t, a, "INVITE", 407, 200)

	rad.Stop()
	down := runSipp(t, sippOpts{Name: "register-server-down", Scenario: "register_unavailable.xml", Remote: srv.Addr,
		Service: "3003", AuthUser: "3003", AuthPass: "radius-3003",
		Keys: map[string]string{"contact": contactFor("3003", 5999), "expires": "3600"}, Timeout: 15 * time.Second})
	down.requireOK(t)
	waitLog(t, srv, 5*time.Second, "RADIUS server not answering")

	log, _ := os.ReadFile(srv.LogPath)
	for _, pw := range []string{"radius-1001", "radius-1002", "radius-3003", "auth-secret-0123456789"} {
		if strings.Contains(string(log), pw) {
			t.Errorf("%q is in the log", pw)
		}
	}
}

// TestRADIUSCallAuthorization: subscribers' calls are authorised by a
// FreeRADIUS (Service-Type Call-Check): a calling-card user's call is
// released when its Session-Timeout is used up (both legs get a BYE with
// the reason; the CDR says "time limit"), a refused user gets 403 with
// Q.850 21; with the server stopped, calls are refused (fail closed).
func TestRADIUSCallAuthorization(t *testing.T) {
	t.Parallel()
	rad := freeradius.Start(t, freeradius.Options{Secret: "authz-secret-0123456789",
		Dictionary: "../../docs/dictionary.softswitch",
		Users: "1001\tService-Type == Call-Check, Auth-Type := Accept\n\tSession-Timeout = 2,\n\tClass = \"card-42\"\n\n" +
			"1002\tService-Type == Call-Check, Auth-Type := Reject\n\tReply-Message = \"no credit\"\n"})
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[billing]\nnode = \"az1\"\n\n[aaa]\ncall_authorization = [\"rad1\"]\naccounting = [\"rad1\"]\n\n"+
		"[[aaa.radius]]\nname = \"rad1\"\naddress = \"127.0.0.1\"\nauth_port = %d\nacct_port = %d\n"+
		"secret = \"authz-secret-0123456789\"\ntimeout = \"200ms\"\ntries = 2\n", rad.Auth.Port(), rad.Acct.Port())
	srv := startServer(t, cfg)
	callee := startUAS(t, "callee-1002", "uas_answer.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	// 1001 has 2 s of credit: the switch ends the call.
	a := runSipp(t, callOpts(srv, "caller-1001", "uac_call_recv_bye.xml", "1002"))
	b := callee.wait()
	a.expectOK(t)
	b.requireOK(t)
	requireTimeLimitBYEs(t, a, b)

	// Its accounting echoes the Class the authorisation gave.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var classes []string
		for _, x := range radiusDetail(rad.Detail) {
			if x["Softswitch-Call-ID"] == callIDs(a)[0] {
				classes = append(classes, x["Acct-Status-Type"]+" "+x["Class"])
			}
		}
		want := "Start 0x636172642d3432,Stop 0x636172642d3432" // "card-42"
		if strings.Join(classes, ",") == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accounting of the card call: %q, want %q", classes, want)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 1002 is refused.
	refused := runSipp(t, sippOpts{Name: "caller-1002", Scenario: "uac_rejected.xml", Remote: srv.Addr, Service: "1001",
		AuthUser: "1002", AuthPass: "secret1002", Keys: map[string]string{"caller": "1002", "max_forwards": "70"},
		Timeout: 20 * time.Second})
	requireFinals(t, refused, "INVITE", 407, 403)

	// Fail closed: no server answers, the call is refused with 503.
	rad.Stop()
	closed := runSipp(t, sippOpts{Name: "caller-1001-closed", Scenario: "uac_rejected.xml", Remote: srv.Addr, Service: "1002",
		AuthUser: "1001", AuthPass: "secret1001", Keys: map[string]string{"caller": "1001", "max_forwards": "70"},
		Timeout: 20 * time.Second})
	requireFinals(t, closed, "INVITE", 407, 503)

	srv.stop()
	recs := cdrFiles(t, filepath.Join(srv.DataDir, "cdr"))
	ended := recs[callIDs(a)[0]]
	if ended == nil || ended["end_reason"] != "time limit" || ended["release_side"] != "switch" || ended["answer"] == "" {
		t.Errorf("the time-limited call's record: %v", ended)
	}
	if r := recs[callIDs(refused)[0]]; r == nil || r["end_reason"] != "rejected" || r["release_status"] != "403" || r["q850_cause"] != "21" {
		t.Errorf("the refused call's record: %v", r)
	}
	if r := recs[callIDs(closed)[0]]; r == nil || r["release_status"] != "503" || r["q850_cause"] != "41" {
		t.Errorf("the fail-closed call's record: %v", r)
	}
}

// TestDiameterAccounting: accounting to a Diameter server (the Go test
// server: freeDiameter answers no ACR): each answered call's START and
// STOP records, Session-Id naming the CDR's record id; at the switch's
// stop a DPR.
func TestDiameterAccounting(t *testing.T) {
	t.Parallel()
	acctSrv := testserver.Start(t, "acct.test", func(m *diam.Message) *diam.Message { return testserver.Success(m, "acct.test") })
	srv := billingBed(t, fmt.Sprintf("[billing]\nnode = \"dia1\"\n\n[aaa]\naccounting = [\"d1\"]\norigin_host = \"ss1.test\"\n"+
		"origin_realm = \"test\"\n\n[[aaa.diameter]]\nname = \"d1\"\naddress = %q\n", acctSrv.Addr))
	calls := trunkCalls(t, srv, "calls", 3, 20)
	deadline := time.Now().Add(10 * time.Second)
	for len(acctSrv.Got()) < 6 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	srv.stop()
	cdrs := cdrFiles(t, filepath.Join(srv.DataDir, "cdr"))
	got := map[string]bool{}
	for _, m := range acctSrv.Got() {
		sid, _ := m.FindAVP(avp.SessionID, 0)
		rt, _ := m.FindAVP(avp.AccountingRecordType, 0)
		if sid == nil || rt == nil {
			t.Fatalf("an ACR without Session-Id or Accounting-Record-Type: %v", m)
		}
		got[fmt.Sprint(string(sid.Data.(datatype.UTF8String)), " ", int(rt.Data.(datatype.Enumerated)))] = true
	}
	for _, id := range callIDs(calls) {
		c := cdrs[id]
		if c == nil {
			t.Fatalf("call %s has no CDR", id)
		}
		for _, rt := range []string{"2", "4"} { // START_RECORD, STOP_RECORD
			if key := "ss1.test;" + c["record_id"] + " " + rt; !got[key] {
				t.Errorf("no ACR %q; got %v", key, got)
			}
		}
	}
	if !acctSrv.DPR() {
		t.Error("no DPR at the switch's stop")
	}
}

// TestDiameterCreditControl: subscribers' calls authorised by a Diameter
// online charging server (the tests' own: none is packaged). 1001 has 3 s
// of credit granted 1 s at a time: the call is answered, its grant
// extended (CCR-Update) until the final unit, then released with a BYE to
// both legs; the OCS sees Initial, Updates, Termination. 1002 has no
// credit: 403.
func TestDiameterCreditControl(t *testing.T) {
	t.Parallel()
	o := testserver.NewOCS(map[string]int{"1001": 3, "1002": 0}, 1)
	srv, callee, _ := cardBed(t, "cc1", o.Answer)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_call_recv_bye.xml", "1002"))
	b := callee.wait()
	a.expectOK(t)
	b.requireOK(t)
	requireTimeLimitBYEs(t, a, b)
	refused := runSipp(t, sippOpts{Name: "caller-1002", Scenario: "uac_rejected.xml", Remote: srv.Addr, Service: "1001",
		AuthUser: "1002", AuthPass: "secret1002", Keys: map[string]string{"caller": "1002", "max_forwards": "70"},
		Timeout: 20 * time.Second})
	requireFinals(t, refused, "INVITE", 407, 403)

	// 1001: Initial, two Updates (1 s, then the final 1 s), Termination;
	// 1002: Initial, refused.
	want := map[string]string{"1001": "1,2,2,3", "1002": "1"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		kinds := map[string][]string{}
		for _, l := range o.Log() {
			f := strings.Fields(l)
			kinds[f[3]] = append(kinds[f[3]], f[0])
		}
		ok := true
		for user, w := range want {
			ok = ok && strings.Join(kinds[user], ",") == w
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CC-Request-Types %v, want %v (%v)", kinds, want, o.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.stop()
	if r := cdrFiles(t, filepath.Join(srv.DataDir, "cdr"))[callIDs(a)[0]]; r == nil || r["end_reason"] != "time limit" {
		t.Errorf("the card call's record: %v", r)
	}
	// Each grant counts from its report, and reports add up to the call's
	// time rounded up once: the 3 s are used, not overdrawn.
	if left := o.Balance("1001"); left != 0 {
		t.Errorf("1001's balance after the call: %d s, want 0 (%v)", left, o.Log())
	}
}

// TestDiameterCreditControlFailureHandling: the OCS grants 60 s valid for
// 1 s (Validity-Time: an update every second), and the first of two OCSs
// answers no update (Tx 1 s). What the switch does is what the answers'
// Credit-Control-Failure-Handling says (RFC 4006 §8.14): TERMINATE asks
// the first only and releases the call; RETRY_AND_TERMINATE fails over to
// the second and the call goes on; CONTINUE, with both silent, lets the
// call go on without a limit. In each the OCSs see the Termination.
func TestDiameterCreditControlFailureHandling(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		ccfh      int
		bothQuiet bool
		scenario  string
		end       string
		kinds     string // CC-Request-Types answered or logged, by pattern
	}{
		{"terminate", 0, false, "uac_call_recv_bye.xml", "credit control failed", `^1,3$`},
		{"retry_and_terminate", 2, false, "uac_call_bye_hold.xml", "normal", `^1,(2,)+3$`},
		{"continue", 1, true, "uac_call_bye_hold.xml", "normal", `^1,2,2,3$`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := testserver.NewOCS(map[string]int{"1001": 600}, 60)
			o.FailureHandling, o.Validity, o.SilentUpdates = c.ccfh, 1, c.bothQuiet
			first := func(m *diam.Message) *diam.Message {
				if testserver.IsUpdate(m) && !c.bothQuiet {
					return nil // unheard: not in o's log
				}
				return o.Answer(m)
			}
			srv, callee, _ := cardBed(t, "cf-"+strings.ReplaceAll(c.name, "_", "-"), first, o.Answer)
			o2 := callOpts(srv, "caller-1001", c.scenario, "1002")
			o2.Pause = 5 * time.Second
			a := runSipp(t, o2)
			callee.wait().requireOK(t)
			a.expectOK(t)
			srv.stop()
			r := cdrFiles(t, filepath.Join(srv.DataDir, "cdr"))[callIDs(a)[0]]
			if r == nil || r["end_reason"] != c.end {
				t.Fatalf("record %v, want end reason %q", r, c.end)
			}
			if c.end != "normal" {
				if reason := a.mustReceivedRequest(t, "BYE").Header("Reason"); !strings.Contains(reason, "credit control unavailable") {
					t.Errorf("the caller's BYE has Reason %q", reason)
				}
			}
			var kinds []string
			for _, l := range o.Log() {
				kinds = append(kinds, strings.Fields(l)[0])
			}
			if k := strings.Join(kinds, ","); !regexp.MustCompile(c.kinds).MatchString(k) {
				t.Fatalf("CC-Request-Types %s, want %s", k, c.kinds)
			}
		})
	}
}

// TestDiameterCreditControlAtStop: a call in progress when the switch
// stops gets its CCR-Termination before the peers are told goodbye.
func TestDiameterCreditControlAtStop(t *testing.T) {
	t.Parallel()
	o := testserver.NewOCS(map[string]int{"1001": 600}, 300)
	srv, _, ocs := cardBed(t, "st1", o.Answer)
	o2 := callOpts(srv, "caller-1001", "uac_call_bye_hold.xml", "1002")
	o2.Pause = 30 * time.Second
	caller := startSipp(t, o2)
	time.Sleep(3 * time.Second) // answered and held
	srv.stop()
	caller.kill()
	var kinds []string
	for _, l := range o.Log() {
		kinds = append(kinds, strings.Fields(l)[0])
	}
	if strings.Join(kinds, ",") != "1,3" || !ocs.DPR() {
		t.Fatalf("CC-Request-Types %v, DPR %v: want 1,3 then a DPR", kinds, ocs.DPR())
	}
}

// cardBed is a switch whose subscribers' calls are authorised by online
// charging servers of the tests' own (Diameter credit control, Tx 1 s),
// one per answering function, in order; with 1002 registered at a sipp
// UAS that answers. It returns the switch, the UAS and the first OCS.
func cardBed(t *testing.T, node string, answers ...func(*diam.Message) *diam.Message) (*server, *sippProc, *testserver.Server) {
	t.Helper()
	var names, peers []string
	var ocs []*testserver.Server
	for i, answer := range answers {
		o := testserver.Start(t, fmt.Sprintf("ocs%d.test", i+1), answer)
		ocs = append(ocs, o)
		names = append(names, fmt.Sprintf("%q", fmt.Sprintf("ocs%d", i+1)))
		peers = append(peers, fmt.Sprintf("[[aaa.diameter]]\nname = \"ocs%d\"\naddress = %q\n", i+1, o.Addr))
	}
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[billing]\nnode = %q\n\n[aaa]\ncall_authorization = [%s]\ncredit_control_tx = \"1s\"\n"+
		"origin_host = \"ss1.test\"\norigin_realm = \"test\"\n\n%s", node, strings.Join(names, ", "), strings.Join(peers, "\n"))
	srv := startServer(t, cfg)
	for _, o := range ocs {
		waitLog(t, srv, 10*time.Second, "Diameter peer open", o.Addr)
	}
	callee := startUAS(t, "callee-1002", "uas_answer.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", callee.Port)
	return srv, callee, ocs[0]
}

// requireTimeLimitBYEs checks both legs of a call released at its granted
// time got a BYE saying so.
func requireTimeLimitBYEs(t *testing.T, caller, callee *sippResult) {
	t.Helper()
	for name, r := range map[string]*sippResult{"caller": caller, "callee": callee} {
		if reason := r.mustReceivedRequest(t, "BYE").Header("Reason"); !strings.Contains(reason, "cause=16") ||
			!strings.Contains(reason, "granted time used up") {
			t.Errorf("the %s's BYE has Reason %q", name, reason)
		}
	}
}
