package systest

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pairConfigs are two nodes' configurations that replicate to each other
// on 127.0.0.1 (the "virtual address" is 127.0.0.1 too: the roles are
// set by hand, as keepalived's notify hook would).
func pairConfigs(t *testing.T, key string) (a, b ssConfig) {
	pa, pb := freePort(t), freePort(t)
	ha := func(listen, peer int) string {
		return fmt.Sprintf("[ha]\nenabled = true\ninterface = \"lo\"\nvirtual_address = \"127.0.0.1/32\"\n"+
			"replication_listen = \"127.0.0.1:%d\"\npeer = \"127.0.0.1:%d\"\nreplication_key = %q\n\n", listen, peer, key)
	}
	a, b = defaultConfig(), defaultConfig()
	a.Extra, b.Extra = ha(pa, pb), ha(pb, pa)
	return a, b
}

// TestRegistrationsSurviveFailover: the standby follows the active node
// over the replication link; a subscriber registered at the active node
// is called through the standby after the active is killed (SIGKILL) and
// the standby made MASTER, without registering again, by a subscriber
// added on the active node's command line; the standby refuses commits
// of its own. A node with another replication key is given nothing.
func TestRegistrationsSurviveFailover(t *testing.T) {
	t.Parallel()
	const key = "pair-replication-key-0123456789abcdef"
	ca, cb := pairConfigs(t, key)
	pc := freePort(t)
	ca.Extra += fmt.Sprintf("[cli]\nssh_listen = \"127.0.0.1:%d\"\npassword_cost = 10\n\n", pc)
	a, b := startServer(t, ca), startServer(t, cb)
	setRole(t, a, "MASTER")
	setRole(t, b, "BACKUP")
	inStep := func(srv *server) bool {
		return regexpMatch(`in step with the active node\s+true`, softswitchCmd(t, srv, "replication"))
	}
	waitFor(t, 10*time.Second, "the standby in step", func() bool { return inStep(b) })

	// Commits on the active node reach the standby; the standby's own are
	// refused.
	addCLIUser(t, a, "ops", "admin", "ops-secret-1234")
	if out, err := expectSSH(t, pc, "ops", "ops-secret-1234", `
expect "# "
send "configure\r"
expect "(config)# "
send "subscriber 1003 password secret-1003-pw\r"
expect "(config)# "
send "commit\r"
expect "committed"
send "end\r"
expect "# "
send "exit\r"
expect eof
`); err != nil {
		t.Fatalf("configuring on the active node: %v\n%s", err, out)
	}
	revision := func(srv *server) string {
		m := regexp.MustCompile(`revision (\d+)`).FindStringSubmatch(softswitchCmd(t, srv, "replication"))
		if m == nil {
			t.Fatal("no revision in softswitch replication")
		}
		return m[1]
	}
	waitFor(t, 10*time.Second, "the standby at the active's revision", func() bool { return revision(a) == revision(b) })
	cmd := exec.Command(softswitchBin, "cli-user", "--data-dir", b.DataDir, "add", "other", "admin")
	cmd.Stdin = strings.NewReader("other-secret-1234\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "standby") {
		t.Errorf("a commit on the standby: %v\n%s", err, out)
	}

	callee := startUAS(t, "callee-1002", "uas_answer.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, a, "1002", "secret1002", callee.Port)
	waitFor(t, 10*time.Second, "the registration at the standby", func() bool {
		return regexpMatch(`changes applied\s+[1-9]`, softswitchCmd(t, b, "replication"))
	})

	a.kill()
	setRole(t, b, "MASTER")
	time.Sleep(1500 * time.Millisecond) // the role is read each second
	o := callOpts(b, "caller-1003-after-failover", "uac_call_bye.xml", "1002")
	o.AuthUser, o.AuthPass, o.Keys["caller"] = "1003", "secret-1003-pw", "1003"
	r := runSipp(t, o)
	callee.wait().requireOK(t)
	r.expectOK(t)

	// A third node with another key is refused by the new active one.
	cc := defaultConfig()
	peer := strings.SplitN(strings.SplitN(cb.Extra, "replication_listen = \"", 2)[1], "\"", 2)[0]
	cc.Extra = fmt.Sprintf("[ha]\nenabled = true\ninterface = \"lo\"\nvirtual_address = \"127.0.0.1/32\"\n"+
		"replication_listen = \"127.0.0.1:%d\"\npeer = %q\nreplication_key = \"another-key-of-enough-length-0123456789\"\n\n", freePort(t), peer)
	c := startServer(t, cc)
	setRole(t, c, "BACKUP")
	waitLog(t, b, 10*time.Second, "replication: a connection refused")
	if inStep(c) {
		t.Fatal("a node with another key is in step")
	}
}
