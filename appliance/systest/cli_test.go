package systest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// addCLIUser adds a command-line user through the maintenance command,
// the password on standard input.
func addCLIUser(t *testing.T, srv *server, name, level, password string) {
	t.Helper()
	cmd := exec.Command(softswitchBin, "cli-user", "--data-dir", srv.DataDir, "add", name, level)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "saved") {
		t.Fatalf("cli-user add %s: %v\n%s", name, err, out)
	}
}

// expectSSH runs an expect script that logs in over ssh (the real
// client) as user and then does body; it returns the transcript.
func expectSSH(t *testing.T, port int, user, password, body string) (string, error) {
	t.Helper()
	// Every expect fails the script when it times out or the session
	// ends before its pattern (expect's default would carry on).
	script := fmt.Sprintf(`set timeout 10
log_user 1
spawn ssh -tt -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PreferredAuthentications=password -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 %s@127.0.0.1
expect_after {
  timeout { puts "\nEXPECT TIMEOUT"; exit 5 }
  eof { puts "\nEXPECT EOF"; exit 6 }
}
expect {
  "assword:" { send "%s\r" }
  timeout { puts "NO PASSWORD PROMPT"; exit 2 }
}
%s
`, port, user, password, body)
	path := filepath.Join(t.TempDir(), "session.exp")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("expect", path).CombinedOutput()
	return string(out), err
}

// TestCLIOverSSH: the command line through OpenSSH's client driven by
// expect: users added by the maintenance command; a wrong password and a
// lockout after five; `?` help and Tab completion; an admin locks a
// gateway (calls then avoid it); a view user may not; one command run
// without a shell (ssh host command).
func TestCLIOverSSH(t *testing.T) {
	t.Parallel()
	pa, pb, pc := freePort(t), freePort(t), freePort(t)
	cfg := defaultConfig()
	// password_cost 10, the lowest: the daemon is race-built, where
	// bcrypt is 15 times slower.
	pt := freePort(t)
	cfg.Extra = fmt.Sprintf("[billing]\nnode = \"clitest\"\n\n[cli]\nssh_listen = \"127.0.0.1:%d\"\ntelnet_listen = \"127.0.0.1:%d\"\n"+
		"sources = [\"127.0.0.0/8\"]\npassword_cost = 10\n\n", pc, pt) +
		huntTOML("", gw("gw-a", pa, 1, 1, ""), gw("gw-b", pb, 2, 1, ""))
	srv := startServer(t, cfg)
	startUAS(t, "gw-a", "uas_answer.xml", sippOpts{Port: pa, Calls: -1, Timeout: 120 * time.Second})
	startUAS(t, "gw-b", "uas_answer.xml", sippOpts{Port: pb, Calls: -1, Timeout: 120 * time.Second})
	addCLIUser(t, srv, "ops", "admin", "ops-secret-1234")
	addCLIUser(t, srv, "watcher", "view", "watch-secret-99")
	prompt := "clitest# " // the node name

	out, err := expectSSH(t, pc, "ops", "ops-secret-1234", fmt.Sprintf(`
expect "%[1]s"
send "show gat?"
expect -re "gateways +gateways: state"
send "\025"
send "sh\t"
expect "show "
send "versio\t\r"
expect "up "
expect "%[1]s"
send "lock gateway gw-a\r"
expect "gateway gw-a locked"
expect "%[1]s"
send "show gateways\r"
expect -re "gw-a +up +locked"
expect "%[1]s"
send "show nonsense\r"
expect "at word 2"
expect "%[1]s"
send "exit\r"
expect eof
`, prompt))
	if err != nil {
		t.Fatalf("admin session: %v\n%s", err, out)
	}
	trunkCalls(t, srv, "while-locked", 3, 20)
	gwAttempts := softswitchSSH(t, pc, "ops", "ops-secret-1234", "show gateways")
	if !strings.Contains(gwAttempts, "gw-b") || !regexpMatch(`gw-a\s+up\s+locked\s+0\s+0\s+0`, gwAttempts) ||
		!regexpMatch(`gw-b\s+up\s+unlocked\s+0\s+0\s+3`, gwAttempts) {
		t.Fatalf("calls while gw-a is locked:\n%s", gwAttempts)
	}

	// A call held through gw-b: show calls lists it, show call tells it.
	held := startSipp(t, sippOpts{Name: "held", Scenario: "uac_trusted_hold.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0305678", Keys: map[string]string{"caller": "0402222", "max_forwards": "70"},
		Calls: 1, Rate: 1, Pause: 30 * time.Second, Timeout: 60 * time.Second})
	var list string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if list = softswitchSSH(t, pc, "ops", "ops-secret-1234", "show calls"); strings.Contains(list, "answered") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("show calls with a call held:\n%s", list)
		}
	}
	m := regexp.MustCompile(`answered\s+\S+\s+0402222\s+0305678\s+gw-b\s+(\S+)`).FindStringSubmatch(list)
	if !strings.Contains(list, "1 calls in progress") || m == nil {
		t.Fatalf("show calls:\n%s", list)
	}
	if detail := softswitchSSH(t, pc, "ops", "ops-secret-1234", "show call "+m[1]); !regexpMatch(`gateway\s+gw-b`, detail) ||
		!strings.Contains(detail, "talking") {
		t.Fatalf("show call %s:\n%s", m[1], detail)
	}
	held.kill()

	for cmd, want := range map[string]string{"show bans": "no bans", "show cdr queue": "not pushed", "show sessions": "ops"} {
		if out := softswitchSSH(t, pc, "ops", "ops-secret-1234", cmd); !strings.Contains(out, want) {
			t.Errorf("%s:\n%s", cmd, out)
		}
	}

	out, err = expectSSH(t, pc, "watcher", "watch-secret-99", `
expect "clitest> "
send "lock gateway gw-b\r"
expect "at word 1"
expect "clitest> "
send "configure\r"
expect "at word 1"
expect "clitest> "
send "show stats\r"
expect "call attempts"
expect "clitest> "
send "exit\r"
expect eof
`)
	if err != nil {
		t.Fatalf("view session: %v\n%s", err, out)
	}

	// Telnet is off until the running configuration turns it on: one
	// line and a commit, no restart.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", pt), 2*time.Second); err == nil {
		c.Close()
		t.Fatal("Telnet answered before it was turned on")
	}
	out, err = expectSSH(t, pc, "ops", "ops-secret-1234", `
expect "clitest# "
send "configure\r"
expect "clitest(config)# "
send "management telnet true\r"
expect "clitest(config)# "
send "commit\r"
expect "committed"
send "end\r"
expect "clitest# "
send "exit\r"
expect eof
`)
	if err != nil {
		t.Fatalf("turning Telnet on: %v\n%s", err, out)
	}

	// The same command line over Telnet (the real client): login, Tab,
	// a command; a wrong password refused.
	for _, c := range []struct{ password, body string }{
		{"ops-secret-1234", `expect "clitest# "
send "sh\t"
expect "show "
send "stat\t\r"
expect "call attempts"
expect "clitest# "
send "exit\r"
expect eof`},
		{"wrong-password-2", `expect "Login refused"
expect eof`},
	} {
		out, err := expectTelnet(t, pt, "ops", c.password, c.body)
		if err != nil {
			t.Fatalf("telnet with %s: %v\n%s", c.password, err, out)
		}
	}

	// A wrong password gets the same refusal as an unknown name; five
	// make even the right one fail for a while.
	for _, who := range [][2]string{{"ops", "wrong-password-1"}, {"nobody", "ops-secret-1234"}} {
		out, err = expectSSH(t, pc, who[0], who[1], `expect {
  "assword:" { puts "ASKED AGAIN"; exit 3 }
  "Permission denied" { exit 0 }
  eof { exit 0 }
}`)
		if err != nil || !strings.Contains(out, "Permission denied") {
			t.Fatalf("%s with %s: %v\n%s", who[0], who[1], err, out)
		}
	}
	for i := 0; i < 4; i++ {
		expectSSH(t, pc, "watcher", "not-the-password", `expect eof`)
	}
	out, _ = expectSSH(t, pc, "watcher", "watch-secret-99", `expect {
  "clitest> " { puts "LOGGED IN"; exit 4 }
  "Permission denied" { exit 0 }
  eof { exit 0 }
}`)
	if !strings.Contains(out, "Permission denied") {
		t.Fatalf("a locked-out user logged in:\n%s", out)
	}
	data, _ := os.ReadFile(srv.LogPath)
	for _, secret := range []string{"ops-secret-1234", "watch-secret-99"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("%q is in the log", secret)
		}
	}
}

// softswitchSSH runs one command over ssh without a shell.
func softswitchSSH(t *testing.T, port int, user, password, command string) string {
	t.Helper()
	script := fmt.Sprintf(`set timeout 10
log_user 1
spawn ssh -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PreferredAuthentications=password -o PubkeyAuthentication=no %s@127.0.0.1 %s
expect_after {
  timeout { puts "\nEXPECT TIMEOUT"; exit 5 }
}
expect "assword:"
send "%s\r"
expect eof
`, port, user, command, password)
	path := filepath.Join(t.TempDir(), "exec.exp")
	os.WriteFile(path, []byte(script), 0o600)
	b, err := exec.Command("expect", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh %s: %v\n%s", command, err, b)
	}
	return string(b)
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// expectTelnet logs in over telnet (the real client) and then does body.
func expectTelnet(t *testing.T, port int, user, password, body string) (string, error) {
	t.Helper()
	script := fmt.Sprintf(`set timeout 10
log_user 1
spawn telnet 127.0.0.1 %d
expect_after {
  timeout { puts "\nEXPECT TIMEOUT"; exit 5 }
  eof { puts "\nEXPECT EOF"; exit 6 }
}
expect "Username: "
send "%s\r"
expect "Password: "
send "%s\r"
%s
`, port, user, password, body)
	path := filepath.Join(t.TempDir(), "telnet.exp")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("expect", path).CombinedOutput()
	return string(out), err
}

// TestCLIConfigure: provisioning at run time through the command line
// (OpenSSH's client driven by expect): a subscriber and a route
// configured and committed, then a registration and calls that use them;
// a refused line and a refused commit change nothing; a view user may not
// configure; a restart keeps what was committed; show running-config
// pasted into a fresh switch gives the same running configuration.
func TestCLIConfigure(t *testing.T) {
	t.Parallel()
	pg, pc := freePort(t), freePort(t)
	cliTOML := fmt.Sprintf("[billing]\nnode = \"cfgtest\"\n\n[cli]\nssh_listen = \"127.0.0.1:%d\"\nsources = [\"127.0.0.0/8\"]\npassword_cost = 10\n\n", pc)
	cfg := defaultConfig()
	cfg.Extra = cliTOML
	srv := startServer(t, cfg)
	startUAS(t, "gw", "uas_answer.xml", sippOpts{Port: pg, Calls: -1, Timeout: 120 * time.Second})
	addCLIUser(t, srv, "ops", "admin", "ops-secret-1234")
	addCLIUser(t, srv, "watcher", "view", "watch-secret-99")

	// Before: no route, so a call from the trunk is refused.
	r := runSipp(t, sippOpts{Name: "before", Scenario: "uac_trusted_call.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0301234", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"}, Calls: 1, Rate: 1, Timeout: 15 * time.Second})
	if r.ExitCode == 0 || !strings.Contains(strings.Join(startLines(r.Received()), "\n"), "404") {
		t.Fatalf("before any route was configured: sipp exited %d, got %v", r.ExitCode, startLines(r.Received()))
	}

	out, err := expectSSH(t, pc, "ops", "ops-secret-1234", fmt.Sprintf(`
expect "cfgtest# "
send "configure\r"
expect "cfgtest(config)# "
send "subscriber 1003 password secret-1003-x\r"
expect "cfgtest(config)# "
send "gateway cfg-gw address 127.0.0.1:%d\r"
expect "cfgtest(config)# "
send "gateway cfg-gw max_ch\t"
expect "max_channels "
send "lots\r"
expect "not a whole number"
expect "cfgtest(config)# "
send "group cfg-g member gateway=cfg-gw,priority=1\r"
expect "cfgtest(config)# "
send "analysis 1 prefix 03\r"
expect "cfgtest(config)# "
send "analysis 1 action route\r"
expect "cfgtest(config)# "
send "analysis 1 route cfg-r\r"
expect "cfgtest(config)# "
send "commit\r"
expect -re "not committed, nothing changed: analysis 1 route: no route named .cfg-r."
expect "cfgtest(config)# "
send "route cfg-r group cfg-g\r"
expect "cfgtest(config)# "
send "end\r"
expect "uncommitted changes"
expect "cfgtest(config)# "
send "commit\r"
expect "committed"
expect "cfgtest(config)# "
send "end\r"
expect "cfgtest# "
send "exit\r"
expect eof
`, pg))
	if err != nil {
		t.Fatalf("configure session: %v\n%s", err, out)
	}
	registerContact(t, srv, "1003", "secret-1003-x", 5099)
	trunkCalls(t, srv, "after", 3, 10)

	out, err = expectSSH(t, pc, "watcher", "watch-secret-99", `
expect "cfgtest> "
send "configure\r"
expect "at word 1"
expect "cfgtest> "
send "show running-config\r"
expect "at word 2"
expect "cfgtest> "
send "exit\r"
expect eof
`)
	if err != nil {
		t.Fatalf("view session: %v\n%s", err, out)
	}

	running := func(port int) []string {
		t.Helper()
		text := strings.ReplaceAll(softswitchSSH(t, port, "ops", "ops-secret-1234", "show running-config"), "\r", "")
		_, body, ok := strings.Cut(text, "\nconfigure\n")
		body, _, ok2 := strings.Cut(body, "\ncommit\nend\n")
		if !ok || !ok2 {
			t.Fatalf("show running-config:\n%s", text)
		}
		return strings.Split(strings.TrimSpace(body), "\n")
	}
	before := running(pc)
	for _, want := range []string{" subscriber 1003 ha1_md5 ", " gateway cfg-gw address 127.0.0.1:", " route cfg-r group cfg-g",
		" analysis 1 route cfg-r", " user watcher level view", " trusted_peer 127.0.0.5 name trunk-a"} {
		if !strings.Contains(strings.Join(before, "\n"), want) {
			t.Fatalf("show running-config has no %q:\n%s", want, strings.Join(before, "\n"))
		}
	}
	srv.restart()
	if after := running(pc); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("after a restart:\n%s\n\nbefore:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	registerContact(t, srv, "1003", "secret-1003-x", 5099)
	trunkCalls(t, srv, "after-restart", 2, 10)

	// A fresh switch: no provisioning, one admin; the text pasted.
	fresh := defaultConfig()
	fresh.Subscribers, fresh.TrustedPeers = nil, nil
	pf := freePort(t)
	fresh.Extra = strings.Replace(cliTOML, fmt.Sprint(pc), fmt.Sprint(pf), 1)
	srv2 := startServer(t, fresh)
	addCLIUser(t, srv2, "ops", "admin", "ops-secret-1234")
	text := strings.ReplaceAll(softswitchSSH(t, pc, "ops", "ops-secret-1234", "show running-config"), "\r", "")
	paste := filepath.Join(t.TempDir(), "running-config.txt")
	text = text[strings.Index(text, "!"):]
	text = text[:strings.Index(text, "\nend\n")+5] // what the switch printed, not what ssh says after it
	os.WriteFile(paste, []byte(text+"exit\n"), 0o600)
	script := fmt.Sprintf(`set timeout 20
spawn sh -c "ssh -T -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PreferredAuthentications=password -o PubkeyAuthentication=no ops@127.0.0.1 < %s"
expect_after { timeout { puts "\nEXPECT TIMEOUT"; exit 5 } }
expect "assword:"
send "ops-secret-1234\r"
expect eof
`, pf, paste)
	sp := filepath.Join(t.TempDir(), "paste.exp")
	os.WriteFile(sp, []byte(script), 0o600)
	if b, err := exec.Command("expect", sp).CombinedOutput(); err != nil || strings.Contains(string(b), "% ") {
		t.Fatalf("pasting the running configuration: %v\n%s", err, b)
	}
	if got := running(pf); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Fatalf("the fresh switch after the paste:\n%s\n\nthe original:\n%s", strings.Join(got, "\n"), strings.Join(before, "\n"))
	}
	registerContact(t, srv2, "1003", "secret-1003-x", 5098)

	// The SNMP agent provisioned at run time: started by a commit, a
	// community added then removed, no restart.
	ps := freePort(t)
	agent := fmt.Sprintf("127.0.0.1:%d", ps)
	out, err = expectSSH(t, pc, "ops", "ops-secret-1234", fmt.Sprintf(`
expect "cfgtest# "
send "configure\r"
expect "cfgtest(config)# "
send "snmp listen %s\r"
expect "cfgtest(config)# "
send "snmp community cfg-community-1 sources 127.0.0.0/8\r"
expect "cfgtest(config)# "
send "snmp location \"rack 9\"\r"
expect "cfgtest(config)# "
send "commit\r"
expect "committed"
send "end\r"
expect "cfgtest# "
send "exit\r"
expect eof
`, agent))
	if err != nil {
		t.Fatalf("configuring SNMP: %v\n%s", err, out)
	}
	if got := mustSNMP(t, "snmpget", "-v2c", "-c", "cfg-community-1", agent, ".1.3.6.1.2.1.1.6.0"); !strings.Contains(got, `"rack 9"`) {
		t.Fatalf("sysLocation with the community just committed: %s", got)
	}
	out, err = expectSSH(t, pc, "ops", "ops-secret-1234", `
expect "cfgtest# "
send "configure\r"
expect "cfgtest(config)# "
send "no snmp community cfg-community-1\r"
expect "cfgtest(config)# "
send "snmp community cfg-community-2 sources 127.0.0.0/8\r"
expect "cfgtest(config)# "
send "commit\r"
expect "committed"
send "end\r"
expect "cfgtest# "
send "exit\r"
expect eof
`)
	if err != nil {
		t.Fatalf("changing SNMP: %v\n%s", err, out)
	}
	if got, err := snmpTool(t, "snmpget", "-v2c", "-c", "cfg-community-1", "-t", "1", "-r", "0", agent, ".1.3.6.1.2.1.1.6.0"); err == nil {
		t.Fatalf("the community removed still answers: %s", got)
	}
	mustSNMP(t, "snmpget", "-v2c", "-c", "cfg-community-2", agent, ".1.3.6.1.2.1.1.3.0")

	// The management allow list changed at run time: this source is no
	// longer in it, the next connection is refused before any login.
	out, err = expectSSH(t, pc, "ops", "ops-secret-1234", `
expect "cfgtest# "
send "configure\r"
expect "cfgtest(config)# "
send "management sources 10.99.0.0/16\r"
expect "cfgtest(config)# "
send "commit\r"
expect "committed"
send "end\r"
expect "cfgtest# "
send "exit\r"
expect eof
`)
	if err != nil {
		t.Fatalf("changing the allow list: %v\n%s", err, out)
	}
	out, _ = expectSSH(t, pc, "ops", "ops-secret-1234", `expect eof`)
	if strings.Contains(out, "assword:") || !regexpMatch(`(?i)closed|reset|NO PASSWORD PROMPT`, out) {
		t.Fatalf("a source outside the allow list reached the login:\n%s", out)
	}

	data, _ := os.ReadFile(srv.LogPath)
	for _, secret := range []string{"secret-1003-x", "ops-secret-1234", "cfg-community-1", "cfg-community-2"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("%q is in the log", secret)
		}
	}
	if !strings.Contains(string(data), `command="subscriber 1003 password <hidden>"`) {
		t.Error("the audit log does not show the subscriber's line (with the password hidden)")
	}
}

// TestCLITrafficControl: an operator blocks a prefix and gaps another
// over the command line; calls to them are refused (403/21, 503/42) while
// other calls complete; the controls outlive a restart and are lifted by
// their commands.
func TestCLITrafficControl(t *testing.T) {
	t.Parallel()
	pa, pc := freePort(t), freePort(t)
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[billing]\nnode = \"tctest\"\n\n[cli]\nssh_listen = \"127.0.0.1:%d\"\npassword_cost = 10\n\n", pc) +
		huntTOML("", gw("gw-a", pa, 1, 1, ""))
	srv := startServer(t, cfg)
	startUAS(t, "gw-a", "uas_answer.xml", sippOpts{Port: pa, Calls: -1, Timeout: 120 * time.Second})
	addCLIUser(t, srv, "ops", "operator", "ops-secret-1234")
	ssh := func(cmd string) string { return softswitchSSH(t, pc, "ops", "ops-secret-1234", cmd) }

	if out := ssh("block prefix 0305"); !strings.Contains(out, "prefix 0305 blocked") {
		t.Fatalf("block prefix:\n%s", out)
	}
	if out := ssh("gap prefix 0306 rate 1"); !strings.Contains(out, "gapped at 1 calls a second") {
		t.Fatalf("gap prefix:\n%s", out)
	}
	blocked := func(name string) {
		t.Helper()
		res := trunkRefused(t, srv, name, "0305678", "0401111")
		if res.Status != 403 {
			t.Fatalf("%s: a call to a blocked prefix got %d, want 403", name, res.Status)
		}
		checkReason(t, name, res, 21)
	}
	blocked("blocked")
	trunkCalls(t, srv, "other-prefix", 3, 10)

	// 20 calls at 20 a second to the gapped prefix: about one a second
	// passes (even if sipp is slow to send them, most are refused).
	r := runSipp(t, sippOpts{Name: "gapped", Scenario: "uac_trusted_call_or_503.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0306111", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"}, Calls: 20, Rate: 20, Timeout: 30 * time.Second})
	r.requireOK(t)
	answered, gapped := 0, 0
	final := map[string]bool{} // per call: ReceivedFinals is for one call's run
	for _, f := range r.ReceivedResponses("INVITE") {
		if f.Status < 200 || final[f.Header("Call-ID")] {
			continue
		}
		final[f.Header("Call-ID")] = true
		switch f.Status {
		case 200:
			answered++
		case 503:
			checkReason(t, "gapped", f, 42)
			gapped++
		}
	}
	if answered < 1 || gapped < 10 || answered+gapped != 20 {
		t.Fatalf("20 calls to a prefix gapped at 1 a second: %d answered, %d refused with 503 (%v)", answered, gapped, r.finalStatuses("INVITE"))
	}
	t.Logf("gapped at 1 call a second: %d of 20 answered, %d refused", answered, gapped)
	show := ssh("show traffic-control")
	if !regexpMatch(`0305\s+block\s+-\s+1\b`, show) || !regexpMatch(fmt.Sprintf(`0306\s+gap\s+1\s+%d\b`, gapped), show) {
		t.Fatalf("show traffic-control:\n%s", show)
	}

	srv.restart()
	blocked("blocked-after-restart")
	if out := ssh("unblock prefix 0305"); !strings.Contains(out, "unblocked") {
		t.Fatalf("unblock:\n%s", out)
	}
	if out := ssh("ungap prefix 0306"); !strings.Contains(out, "no longer gapped") {
		t.Fatalf("ungap:\n%s", out)
	}
	r = runSipp(t, sippOpts{Name: "lifted", Scenario: "uac_trusted_call.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0305678", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"}, Calls: 5, Rate: 20, Timeout: 30 * time.Second})
	r.requireOK(t)
	if out := ssh("unblock prefix 0305"); !strings.Contains(out, "not blocked") {
		t.Fatalf("unblock of a prefix not blocked:\n%s", out)
	}
}
