package systest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/softswitch/softswitch/aaa/radius/freeradius"
)

// TestAAAConfiguredAtRunTime: AAA servers are provisioning, changed by a
// commit while the switch runs (two FreeRADIUS servers): with none, a
// user only RADIUS knows is refused and nothing is accounted; after
// `aaa radius rad1 ...`, `aaa registration_auth rad1` and `aaa accounting
// rad1` he registers and calls are accounted at rad1 (only those made
// since); moving accounting to rad2 and digests back to the local table
// sends the next calls to rad2 alone and refuses him again; a restart
// keeps the last commit; no secret reaches the log.
func TestAAAConfiguredAtRunTime(t *testing.T) {
	t.Parallel()
	const secret1, secret2 = "runtime-secret-0123456789", "runtime-other-0123456789"
	users := "3003\tCleartext-Password := \"radius-3003\"\n"
	rad1 := freeradius.Start(t, freeradius.Options{Secret: secret1, Users: users, Dictionary: "../../docs/dictionary.softswitch"})
	rad2 := freeradius.Start(t, freeradius.Options{Secret: secret2, Users: users, Dictionary: "../../docs/dictionary.softswitch"})
	pc := freePort(t)
	srv := billingBed(t, fmt.Sprintf("[billing]\nnode = \"aaarun\"\n\n[cli]\nssh_listen = \"127.0.0.1:%d\"\npassword_cost = 10\n", pc))
	addCLIUser(t, srv, "ops", "admin", "ops-secret-1234")

	registerAs := func(name, scenario string) {
		t.Helper()
		r := runSipp(t, sippOpts{Name: name, Scenario: scenario, Remote: srv.Addr,
			Service: "3003", AuthUser: "3003", AuthPass: "radius-3003",
			Keys: map[string]string{"contact": contactFor("3003", 5999), "expires": "3600"}, Timeout: 15 * time.Second})
		r.requireOK(t)
	}
	sessions := func(path string) map[string]bool { // Call-ID + status
		out := map[string]bool{}
		for _, x := range radiusDetail(path) {
			out[x["Softswitch-Call-ID"]+" "+x["Acct-Status-Type"]] = true
		}
		return out
	}
	waitAccounted := func(what, path string, calls *sippResult) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, missing := sessions(path), 0
			for _, id := range callIDs(calls) {
				if !got[id+" Start"] || !got[id+" Stop"] {
					missing++
				}
			}
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d calls without their Start and Stop after 15 s", what, missing)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	configure := func(lines ...string) {
		t.Helper()
		var b strings.Builder
		b.WriteString("expect \"aaarun# \"\nsend \"configure\\r\"\nexpect \"aaarun(config)# \"\n")
		for _, l := range lines {
			fmt.Fprintf(&b, "send \"%s\\r\"\nexpect \"aaarun(config)# \"\n", l)
		}
		b.WriteString("send \"commit\\r\"\nexpect \"committed\"\nsend \"end\\r\"\nexpect \"aaarun# \"\nsend \"exit\\r\"\nexpect eof\n")
		if out, err := expectSSH(t, pc, "ops", "ops-secret-1234", b.String()); err != nil {
			t.Fatalf("configuring %q: %v\n%s", lines, err, out)
		}
	}

	// No AAA server: the local table (which does not know 3003), no
	// accounting.
	registerAs("register-before", "register_rejected.xml")
	before := trunkCalls(t, srv, "before", 3, 20)

	configure("aaa radius rad1 address 127.0.0.1", fmt.Sprintf("aaa radius rad1 auth_port %d", rad1.Auth.Port()),
		fmt.Sprintf("aaa radius rad1 acct_port %d", rad1.Acct.Port()), "aaa radius rad1 secret "+secret1,
		"aaa radius rad1 timeout 500ms", "aaa registration_auth rad1", "aaa accounting rad1")
	registerAs("register-rad1", "register.xml")
	first := trunkCalls(t, srv, "rad1", 3, 20)
	waitAccounted("the calls after the first commit, at rad1", rad1.Detail, first)
	for _, id := range callIDs(before) {
		if got := sessions(rad1.Detail); got[id+" Start"] || got[id+" Stop"] {
			t.Errorf("call %s, made before accounting was configured, was accounted", id)
		}
	}

	configure("aaa radius rad2 address 127.0.0.1", fmt.Sprintf("aaa radius rad2 acct_port %d", rad2.Acct.Port()),
		"aaa radius rad2 secret "+secret2, "aaa accounting rad2", "no aaa registration_auth")
	registerAs("register-local-again", "register_rejected.xml")
	second := trunkCalls(t, srv, "rad2", 3, 20)
	waitAccounted("the calls after the second commit, at rad2", rad2.Detail, second)
	for _, id := range callIDs(second) {
		if got := sessions(rad1.Detail); got[id+" Start"] {
			t.Errorf("call %s went to rad1 after accounting moved to rad2", id)
		}
	}
	if got := softswitchSSH(t, pc, "ops", "ops-secret-1234", "show aaa"); !strings.Contains(got, "rad1") || !strings.Contains(got, "rad2") {
		t.Errorf("show aaa:\n%s", got)
	}

	srv.stop()
	srv.start()
	third := trunkCalls(t, srv, "after-restart", 2, 20)
	waitAccounted("the calls after a restart, at rad2", rad2.Detail, third)
	cfg := softswitchSSH(t, pc, "ops", "ops-secret-1234", "show running-config")
	if !strings.Contains(cfg, "aaa accounting rad2") || strings.Contains(cfg, "registration_auth") {
		t.Errorf("running-config after the restart:\n%s", cfg)
	}
	log, _ := os.ReadFile(srv.LogPath)
	for _, s := range []string{secret1, secret2, "radius-3003"} {
		if strings.Contains(string(log), s) {
			t.Errorf("%q is in the log", s)
		}
	}
}
