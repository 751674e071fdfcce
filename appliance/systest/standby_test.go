package systest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/softswitch/softswitch/aaa/radius/freeradius"
)

// setRole records a keepalived role for srv as its notify hook does.
func setRole(t *testing.T, srv *server, role string) {
	t.Helper()
	path := filepath.Join(srv.DataDir, "ha-role")
	if err := os.WriteFile(path+".tmp", []byte(role+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countContaining is how many of msgs contain part.
func countContaining(msgs []string, part string) int {
	n := 0
	for _, m := range msgs {
		if strings.Contains(m, part) {
			n++
		}
	}
	return n
}

// TestStandbySendsNothing: a node of a pair that is not the active one
// sends nothing to the outside (count at the peers): no trunk REGISTER,
// no OPTIONS probe, no CDR file over FTP, no accounting; its CDRs wait.
// Once keepalived makes it MASTER it does all of it, the waiting CDRs and
// accounting records included; made BACKUP again, it stops.
func TestStandbySendsNothing(t *testing.T) {
	t.Parallel()
	rad := freeradius.Start(t, freeradius.Options{Secret: "standby-secret-0123456789", Dictionary: "../../docs/dictionary.softswitch"})
	ftpd := startVsftpd(t, false)
	registrar, probed := startUDPSink(t), startUDPSink(t)
	pg := freePort(t)
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[ha]\nenabled = true\ninterface = \"lo\"\nvirtual_address = \"127.0.0.1/32\"\n\n"+
		"[billing]\nnode = \"standby1\"\nrotate_records = 2\n\n"+
		"[billing.push]\nservers = [%q]\nuser = \"anonymous\"\npassword = \"cdr@example.net\"\ndir = \"incoming\"\nretry_min = \"1s\"\n\n"+
		"[aaa]\naccounting = [\"rad1\"]\n\n[[aaa.radius]]\nname = \"rad1\"\naddress = \"127.0.0.1\"\nacct_port = %d\n"+
		"secret = \"standby-secret-0123456789\"\ntimeout = \"300ms\"\n\n"+
		"[[registration]]\nname = \"carrier-x\"\nregistrar = \"127.0.0.1:%d\"\ndomain = \"carrier.test\"\nuser = \"sw\"\n"+
		"password = \"trunk-secret-1\"\nexpires = 60\n\n", ftpd.Addr, rad.Acct.Port(), registrar.Port) +
		huntTOML("", gw("gw-ok", pg, 1, 1, ""), gw("gw-probed", probed.Port, 2, 1, "probe = true\nprobe_interval = \"200ms\""))
	srv := startServer(t, cfg)
	startUAS(t, "gw", "uas_answer.xml", sippOpts{Port: pg, Calls: -1, Timeout: 120 * time.Second})
	cdrDir := filepath.Join(srv.DataDir, "cdr")

	// No role yet, then BACKUP: a standby.
	calls := trunkCalls(t, srv, "on-standby", 4, 20)
	setRole(t, srv, "BACKUP")
	time.Sleep(3 * time.Second) // 15 probe intervals, 3 role polls
	registrar.requireSilent(t, "the trunk registrar, while standby")
	probed.requireSilent(t, "the probed gateway, while standby")
	if files := closedFiles(cdrDir); len(files) < 2 {
		t.Fatalf("%d closed CDR files on the standby, want 2 (4 calls, 2 a file)", len(files))
	}
	if got := closedFiles(ftpd.Incoming); len(got) > 0 {
		t.Errorf("the standby pushed %v", got)
	}
	if got := radiusDetail(rad.Detail); len(got) > 0 {
		t.Errorf("the standby sent %d accounting requests", len(got))
	}

	// MASTER: all of it, the CDRs and accounting that waited included.
	setRole(t, srv, "MASTER")
	waitDelivered(t, cdrDir, ftpd.Incoming, 4, 20*time.Second) // 2 files and their sidecars
	waitFor(t, 15*time.Second, "the Start and Stop of the calls made on the standby", func() bool {
		seen := map[string]bool{}
		for _, x := range radiusDetail(rad.Detail) {
			seen[x["Softswitch-Call-ID"]+" "+x["Acct-Status-Type"]] = true
		}
		for _, id := range callIDs(calls) {
			if !seen[id+" Start"] || !seen[id+" Stop"] {
				return false
			}
		}
		return true
	})
	waitFor(t, 10*time.Second, "a trunk REGISTER and an OPTIONS probe from the active node", func() bool {
		return countContaining(registrar.Messages(), "REGISTER ") > 0 && countContaining(probed.Messages(), "OPTIONS ") > 0
	})

	// BACKUP again: it stops (what was under way may finish: counted after
	// a settling second).
	setRole(t, srv, "BACKUP")
	time.Sleep(2500 * time.Millisecond)
	regs, probes, files, acct := len(registrar.Messages()), len(probed.Messages()), len(closedFiles(ftpd.Incoming)), len(radiusDetail(rad.Detail))
	trunkCalls(t, srv, "standby-again", 2, 20)
	time.Sleep(3 * time.Second)
	if n := len(registrar.Messages()); n != regs {
		t.Errorf("%d REGISTERs after the node became standby again", n-regs)
	}
	if n := len(probed.Messages()); n != probes {
		t.Errorf("%d OPTIONS probes after the node became standby again", n-probes)
	}
	if n := len(closedFiles(ftpd.Incoming)); n != files {
		t.Errorf("%d CDR files pushed after the node became standby again", n-files)
	}
	if n := len(radiusDetail(rad.Detail)); n != acct {
		t.Errorf("%d accounting requests after the node became standby again", n-acct)
	}
}
