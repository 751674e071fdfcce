package systest

import (
	"fmt"
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
