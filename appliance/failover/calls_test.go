package failover

import (
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/softswitch/softswitch/aaa/radius/freeradius"
	"github.com/softswitch/softswitch/appliance/netlab"
	"github.com/softswitch/softswitch/appliance/testenv"
)

// callsHeld is how many calls are up through the virtual address when
// the active node dies, and holdFor how long each caller holds before it
// hangs up (long enough for the takeover, at 50 calls a second).
const (
	callsHeld = 100
	holdFor   = 16 * time.Second
)

// TestCallsSurviveFailover: a subscriber's phone registers (in c), then
// 100 calls from a trusted caller (sipp, in c)
// through the virtual address to a gateway (sipp, in g), accounted at
// FreeRADIUS and billed to vsftpd (both in bc). The active node fails
// while every call is up (three runs: its switch killed with SIGKILL, its
// keepalived stopped, its link cut); then the callers hang up. Every call is released on both legs (both sipps count 100 calls
// whole), the billing centre gets exactly one complete record for each
// (answered before the failover, released after, the old node's record
// id) in files whose sequence numbers have no gap, and FreeRADIUS gets a
// Stop for each, with the Start's session id. The phone, registered at
// the old active node, is called through the new one without
// registering again.
func TestCallsSurviveFailover(t *testing.T) {
	testenv.RequireRoot(t, "network namespaces, keepalived")
	for _, tool := range []string{"keepalived", "sipp", "ip", "vsftpd", "freeradius"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (.ci/deps.sh installs it)", tool)
		}
	}
	bin := buildBinary(t)
	for _, mode := range []string{"softswitch-killed", "keepalived-stopped", "link-down"} {
		t.Run(mode, func(t *testing.T) { callsAcrossFailover(t, bin, mode) })
	}
}

// callsAcrossFailover is TestCallsSurviveFailover with node a failed by
// mode: its switch killed with SIGKILL (then started again), its
// keepalived stopped, or its link cut.
func callsAcrossFailover(t *testing.T, bin, mode string) {
	l := newLab(t, bin, "g", "bc")
	rad := freeradius.Start(t, freeradius.Options{Secret: "failover-radius-secret-0123", Dictionary: filepath.Join(netlab.RepoRoot(t), "docs", "dictionary.softswitch"),
		Namespace: l.NS("bc"), Address: extraIP["bc"], Clients: "10.200.0.0/24"})
	incoming := l.vsftpd("bc", extraIP["bc"])
	extra := pushTOML() + fmt.Sprintf(`[aaa]
accounting = ["rad1"]

[[aaa.radius]]
name = "rad1"
address = "%s"
acct_port = 1813
secret = "failover-radius-secret-0123"
timeout = "500ms"

`, extraIP["bc"]) + callsTOML()
	l.pair(extra)

	scen := filepath.Join(netlab.RepoRoot(t), "appliance", "systest", "scenarios")
	// A subscriber's phone in the client namespace registers through the
	// service address before the failover (digest, at node a).
	phone := l.Start("sipp-phone", "c", "sipp", "-sf", filepath.Join(scen, "uas_answer.xml"), "-i", clientIP, "-p", "5062",
		"-m", "1", "-key", "user", "1001", "-nostdin", "-timeout", "120s", "-trace_err")
	reg := l.Start("sipp-register", "c", "sipp", vip+":5060", "-sf", filepath.Join(scen, "register.xml"), "-i", clientIP, "-p", "5064",
		"-s", "1001", "-au", "1001", "-ap", phonePassword, "-key", "contact", "<sip:1001@"+clientIP+":5062>", "-key", "expires", "3600",
		"-m", "1", "-nostdin", "-timeout", "15s", "-trace_err")
	if err := l.Wait("sipp-register", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if c := reg.ProcessState.ExitCode(); c != 0 {
		t.Fatalf("the phone's registration through node a: sipp exited %d", c)
	}
	uas := l.Start("sipp-gw", "g", "sipp", "-sf", filepath.Join(scen, "uas_answer.xml"), "-i", extraIP["g"], "-p", "5060",
		"-m", strconv.Itoa(callsHeld), "-key", "user", "gw", "-nostdin", "-timeout", "120s", "-trace_err")
	time.Sleep(500 * time.Millisecond)
	uac := l.Start("sipp-callers", "c", "sipp", vip+":5060", "-sf", filepath.Join(scen, "uac_trusted_hold.xml"),
		"-i", clientIP, "-p", "5080", "-s", "0401111", "-key", "caller", "0301234", "-key", "max_forwards", "70",
		"-r", "50", "-m", strconv.Itoa(callsHeld), "-l", strconv.Itoa(callsHeld), "-d", strconv.Itoa(int(holdFor/time.Millisecond)),
		"-nostdin", "-timeout", "120s", "-trace_err", "-trace_stat", "-stf", filepath.Join(l.Dir, "callers.csv"))

	// Every call up and held by the standby for a takeover.
	deadline := time.Now().Add(holdFor / 2)
	for {
		out, _ := l.In("b", bin, "replication", "--data-dir", filepath.Join(l.Dir, "data-b"))
		if strings.Contains(out, fmt.Sprintf("calls in progress replicated  %d\n", callsHeld)) || time.Now().After(deadline) {
			t.Logf("node b before the failover: %s", firstLine(out, "calls"))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the ACKs' changes
	failedAt := time.Now().UTC()
	switch mode {
	case "softswitch-killed":
		l.Stop("softswitch-a", syscall.SIGKILL)
	case "keepalived-stopped":
		l.Stop("keepalived-a", syscall.SIGTERM)
	case "link-down":
		sh(t, "ip", "-n", l.NS("a"), "link", "set", "eth0", "down")
	}
	l.waitVIP("b", 10*time.Second)
	t.Logf("%s: node b holds the address %v after the failure", mode, time.Since(failedAt).Round(10*time.Millisecond))

	// The phone registered at a is called through b, without registering
	// again.
	toPhone := l.Start("sipp-to-phone", "c", "sipp", vip+":5060", "-sf", filepath.Join(scen, "uac_trusted_call.xml"),
		"-i", clientIP, "-p", "5066", "-s", "1001", "-key", "caller", "0301234", "-key", "max_forwards", "70",
		"-m", "1", "-nostdin", "-timeout", "20s", "-trace_err")
	if err := l.Wait("sipp-to-phone", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait("sipp-phone", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if c, p := toPhone.ProcessState.ExitCode(), phone.ProcessState.ExitCode(); c != 0 || p != 0 {
		t.Errorf("a call to the phone registered before the failover: caller's sipp exited %d, phone's %d", c, p)
	}

	if err := l.Wait("sipp-callers", 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait("sipp-gw", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if c := uac.ProcessState.ExitCode(); c != 0 {
		t.Errorf("the callers' sipp exited %d: not every call was set up and released (BYE answered 200)", c)
	}
	if c := uas.ProcessState.ExitCode(); c != 0 {
		t.Errorf("the gateway's sipp exited %d: not every call reached it and was released by BYE", c)
	}

	// The billing centre: one complete record per call, from the old
	// node's ids, in gapless files of node b (and the phone's call, made
	// on b).
	var rows []map[string]string
	var files []string
	waitUntil(t, 40*time.Second, "the records of every call at the billing centre", func() bool {
		files, rows = readCDRs(t, incoming)
		return len(rows) >= callsHeld+1
	})
	time.Sleep(3 * time.Second) // anything more (a duplicate) would come now
	files, rows = readCDRs(t, incoming)
	if len(rows) != callsHeld+1 {
		t.Errorf("%d records at the billing centre, want %d", len(rows), callsHeld+1)
	}
	seen, phoneRecords := map[string]int{}, 0
	for _, r := range rows {
		if r["called_received"] == "1001" {
			phoneRecords++
			if r["answer"] == "" || !strings.HasPrefix(r["record_id"], "node-b-") {
				t.Errorf("the phone's call's record: %v", r)
			}
			continue
		}
		seen[r["caller_call_id"]]++
		ans, err1 := time.Parse(time.RFC3339, r["answer"])
		rel, err2 := time.Parse(time.RFC3339, r["release"])
		if err1 != nil || err2 != nil || !ans.Before(failedAt) || !rel.After(failedAt) || r["end_reason"] != "normal" ||
			!strings.HasPrefix(r["record_id"], "node-a-") {
			t.Errorf("record %s: answer %q release %q (failover %s) end %q", r["record_id"], r["answer"], r["release"],
				failedAt.Format(time.RFC3339Nano), r["end_reason"])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("call %s has %d records", id, n)
		}
	}
	if phoneRecords != 1 {
		t.Errorf("%d records of the call to the phone", phoneRecords)
	}
	for i, f := range files {
		want := fmt.Sprintf("node-b_%010d_", i+1)
		if !strings.HasPrefix(f, want) {
			t.Errorf("CDR files %v: file %d is not %s... (a gap, or another node's)", files, i+1, want)
			break
		}
	}

	// FreeRADIUS: a Start (from a) and a Stop (from b) for every call,
	// with the same session id.
	var starts, stops map[string]int
	waitUntil(t, 30*time.Second, "a Stop for every call at FreeRADIUS", func() bool {
		starts, stops = map[string]int{}, map[string]int{}
		for _, r := range freeradius.Detail(rad.Detail) {
			if !strings.HasPrefix(r["Acct-Session-Id"], "node-a-") {
				continue // the phone's call, made on b
			}
			switch r["Acct-Status-Type"] {
			case "Start":
				starts[r["Acct-Session-Id"]]++
			case "Stop":
				stops[r["Acct-Session-Id"]]++
			}
		}
		return len(stops) >= callsHeld
	})
	if len(starts) != callsHeld || len(stops) != callsHeld {
		t.Errorf("FreeRADIUS has %d sessions started and %d stopped, want %d each", len(starts), len(stops), callsHeld)
	}
	for id, n := range stops {
		if n != 1 || starts[id] != 1 {
			t.Errorf("session %s: %d Start, %d Stop", id, starts[id], n)
		}
	}

	if mode != "softswitch-killed" {
		// Node a handed its calls over when it lost the address: no
		// record of them there (checked above: 101 records in all).
		l.noPanics("softswitch-a")
		l.noPanics("softswitch-b")
		return
	}
	// The old active node comes back: it joins as standby, follows b,
	// and lets go of the calls it had (b carried them on) instead of
	// recording them "ended by restart". Switched back to it, it sends
	// the billing centre nothing more.
	l.Start("softswitch-a-again", "a", bin, "--config", filepath.Join(l.Dir, "node-a.toml"), "--data-dir", filepath.Join(l.Dir, "data-a"))
	l.waitInStep("a", 20*time.Second)
	waitUntil(t, 10*time.Second, "node a settles the calls it held", func() bool {
		data, _ := os.ReadFile(filepath.Join(l.Dir, "softswitch-a-again.log"))
		return strings.Contains(string(data), "carried_on_by_the_other_node=100 ended_by_restart=0")
	})
	sh(t, "ip", "netns", "exec", l.NS("b"), bin, "switchover", "--data-dir", filepath.Join(l.Dir, "data-b"))
	l.waitVIP("a", 15*time.Second)
	time.Sleep(5 * time.Second) // a's push, were there anything to push
	if files, rows := readCDRs(t, incoming); len(rows) != callsHeld+1 {
		t.Errorf("after the switch back: %d records at the billing centre in %v, want %d", len(rows), files, callsHeld+1)
	}
	l.noPanics("softswitch-a-again")
	l.noPanics("softswitch-b")
	if t.Failed() {
		out, _ := l.In("b", bin, "replication", "--data-dir", filepath.Join(l.Dir, "data-b"))
		t.Logf("node b: %s", out)
	}
}

// pair starts both nodes with extra in their configuration and waits
// until A is active and B follows it in step.
func (l *lab) pair(extra string) {
	l.t.Helper()
	l.node("a", 150, extra)
	l.node("b", 100, extra)
	l.waitVIP("a", 15*time.Second)
	time.Sleep(1500 * time.Millisecond) // B settles as backup
	l.waitInStep("b", 15*time.Second)
}

// pushTOML pushes CDR files to the billing centre's vsftpd (namespace bc).
func pushTOML() string {
	return fmt.Sprintf("[billing.push]\nservers = [\"%s:21\"]\nuser = \"anonymous\"\npassword = \"cdr@example.net\"\n"+
		"dir = \"incoming\"\nretry_min = \"1s\"\nretry_max = \"2s\"\n\n", extraIP["bc"])
}

// callsTOML routes every call from the callers (namespace c, a trusted
// peer) to the gateway (namespace g).
func callsTOML() string {
	return netlab.RouteAllTOML(clientIP, extraIP["g"]+":5060") + fmt.Sprintf(`
[[analysis]]
prefix = "1001"
action = "local"

[[subscriber]]
number = "1001"
password = "%s"
`, phonePassword)
}

// phonePassword is subscriber 1001's, whose phone registers in the client
// namespace.
const phonePassword = "failover-phone-1001"

// vsftpd runs Debian's vsftpd in namespace n on ip:21 (anonymous uploads
// into incoming/) and returns that directory.
func (l *lab) vsftpd(n, ip string) string {
	l.t.Helper()
	ftpUser, err := user.Lookup("ftp")
	if err != nil {
		l.t.Fatalf("the ftp user (made by Debian's vsftpd package): %v", err)
	}
	uid, _ := strconv.Atoi(ftpUser.Uid)
	gid, _ := strconv.Atoi(ftpUser.Gid)
	dir := filepath.Join(l.Dir, "ftp")
	root, empty, incoming := filepath.Join(dir, "root"), filepath.Join(dir, "empty"), filepath.Join(dir, "root", "incoming")
	for _, d := range []string{root, empty, incoming} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			l.t.Fatal(err)
		}
	}
	os.Chmod(root, 0o555) // vsftpd refuses a writable anonymous root
	if err := os.Chown(incoming, uid, gid); err != nil {
		l.t.Fatal(err)
	}
	conf := filepath.Join(dir, "vsftpd.conf")
	cfg := fmt.Sprintf("listen=YES\nlisten_ipv6=NO\nlisten_address=%[1]s\nlisten_port=21\nbackground=NO\nanonymous_enable=YES\n"+
		"local_enable=NO\nwrite_enable=YES\nanon_upload_enable=YES\nanon_mkdir_write_enable=YES\nanon_other_write_enable=YES\n"+
		"anon_world_readable_only=NO\nno_anon_password=YES\nanon_root=%[2]s\nanon_umask=022\npasv_enable=YES\n"+
		"pasv_address=%[1]s\npasv_min_port=30000\npasv_max_port=30100\nsecure_chroot_dir=%[3]s\nseccomp_sandbox=NO\n"+
		"isolate=NO\nisolate_network=NO\nftp_username=ftp\n", ip, root, empty)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		l.t.Fatal(err)
	}
	l.Start("vsftpd", n, "vsftpd", conf)
	waitUntil(l.t, 5*time.Second, "vsftpd listening", func() bool {
		_, err := l.In(n, "bash", "-c", "exec 3<>/dev/tcp/"+ip+"/21")
		return err == nil
	})
	return incoming
}

// readCDRs reads the CSV files delivered to dir (names in order) and
// their records, each a map from column to value.
func readCDRs(t *testing.T, dir string) ([]string, []map[string]string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".csv") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var rows []map[string]string
	for _, n := range names {
		rows = append(rows, csvRows(t, filepath.Join(dir, n))...)
	}
	return names, rows
}

// csvRows reads a CSV file of records (a header line, then rows), each
// row a map from column to value.
func csvRows(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("CDR file %s: %v", path, err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, col := range recs[0] {
			if i < len(rec) {
				row[col] = rec[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// noPanics fails the test when the process's log shows a recovered
// panic or a crash.
func (l *lab) noPanics(name string) {
	l.t.Helper()
	data, err := os.ReadFile(filepath.Join(l.Dir, name+".log"))
	if err != nil {
		l.t.Fatal(err)
	}
	for _, bad := range []string{"recovered panic", "panic:", "fatal error:", "DATA RACE"} {
		if strings.Contains(string(data), bad) {
			l.t.Errorf("%s logged %q", name, bad)
		}
	}
}

func waitUntil(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func firstLine(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), prefix) {
			return strings.TrimSpace(line)
		}
	}
	return strings.TrimSpace(out)
}

// TestSplitBrainCDRs: the pair's link is cut while both nodes run (node
// b drops everything from node a, and from the billing centre until the
// end): both take
// the address; each carries calls alone (sent to its own address) and
// writes them under its own node name. When the link heals, b goes back
// to standby, follows a and hands over the files it could not push; the
// billing centre ends with every call's record exactly once, no two
// records or files sharing an id or a name, each node's files in
// sequence without a gap.
func TestSplitBrainCDRs(t *testing.T) {
	testenv.RequireRoot(t, "network namespaces, keepalived, nftables")
	bin := buildBinary(t)
	l := newLab(t, bin, "g", "bc")
	incoming := l.vsftpd("bc", extraIP["bc"])
	extra := pushTOML() + callsTOML()
	l.pair(extra)
	scen := filepath.Join(netlab.RepoRoot(t), "appliance", "systest", "scenarios")
	l.Start("sipp-gw", "g", "sipp", "-sf", filepath.Join(scen, "uas_answer.xml"), "-i", extraIP["g"], "-p", "5060",
		"-key", "user", "gw", "-nostdin", "-timeout", "120s")

	// Two tables: the link to a heals first, the billing centre stays out
	// of b's reach (so that b's files can only go through a).
	table := func(name, ip string) string {
		return fmt.Sprintf("table inet %[1]s {\n chain in { type filter hook input priority 0; ip saddr %[2]s drop; }\n"+
			" chain out { type filter hook output priority 0; ip daddr %[2]s drop; }\n}\n", name, ip)
	}
	split := table("split", nodeIP["a"]) + table("nobc", extraIP["bc"])
	rules := filepath.Join(l.Dir, "split.nft")
	if err := os.WriteFile(rules, []byte(split), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "netns", "exec", l.NS("b"), "nft", "-f", rules)
	l.waitVIP("b", 15*time.Second)
	if !l.hasVIP("a") {
		t.Fatal("node a gave up the address: not a split")
	}
	calls := map[string]int{"a": 4, "b": 6}
	for _, n := range []string{"a", "b"} {
		name := "sipp-calls-" + n
		cmd := l.Start(name, "c", "sipp", nodeIP[n]+":5060", "-sf", filepath.Join(scen, "uac_trusted_call.xml"),
			"-i", clientIP, "-p", "5090", "-s", "0401111", "-key", "caller", "0301234", "-key", "max_forwards", "70",
			"-r", "10", "-m", strconv.Itoa(calls[n]), "-nostdin", "-timeout", "30s", "-trace_msg",
			"-message_file", filepath.Join(l.Dir, "calls-"+n+"-messages.log"))
		if err := l.Wait(name, 40*time.Second); err != nil {
			t.Fatal(err)
		}
		if c := cmd.ProcessState.ExitCode(); c != 0 {
			t.Fatalf("calls to node %s during the split: sipp exited %d", n, c)
		}
	}
	time.Sleep(3 * time.Second) // both close their files (rotate_interval 2 s); b cannot push its own

	sh(t, "ip", "netns", "exec", l.NS("b"), "nft", "delete", "table", "inet", "split")
	waitUntil(t, 15*time.Second, "node b standby again", func() bool {
		role, _ := os.ReadFile(filepath.Join(l.Dir, "data-b", "ha-role"))
		return strings.TrimSpace(string(role)) == "BACKUP" && !l.hasVIP("b")
	})
	l.waitInStep("b", 20*time.Second)

	want := map[string]bool{}
	for _, n := range []string{"a", "b"} {
		_, tried, _ := callerOutcomes(t, filepath.Join(l.Dir, "calls-"+n+"-messages.log"))
		for id := range tried {
			want[id] = true
		}
	}
	var files []string
	var rows []map[string]string
	waitUntil(t, 30*time.Second, "every call's record at the billing centre", func() bool {
		files, rows = readCDRs(t, incoming)
		return len(rows) >= len(want)
	})
	time.Sleep(2 * time.Second)
	files, rows = readCDRs(t, incoming)
	ids, per := map[string]bool{}, map[string]int{}
	for _, r := range rows {
		if ids[r["record_id"]] {
			t.Errorf("record id %s twice", r["record_id"])
		}
		ids[r["record_id"]] = true
		per[r["caller_call_id"]]++
	}
	for id := range want {
		if per[id] != 1 {
			t.Errorf("call %s has %d records", id, per[id])
		}
	}
	if len(rows) != len(want) {
		t.Errorf("%d records for %d calls", len(rows), len(want))
	}
	seq := map[string]int{}
	for _, f := range files {
		node, rest, _ := strings.Cut(f, "_")
		seq[node]++
		if !strings.HasPrefix(rest, fmt.Sprintf("%010d_", seq[node])) {
			t.Errorf("files %v: %s out of its node's sequence", files, f)
		}
	}
	if seq["node-a"] == 0 || seq["node-b"] == 0 {
		t.Errorf("files %v: not both nodes'", files)
	}
	if data, _ := os.ReadFile(filepath.Join(l.Dir, "softswitch-a.log")); !strings.Contains(string(data), "handed over by the other node of the pair") {
		t.Error("node a pushed none of b's files: b's came another way")
	}
	l.noPanics("softswitch-a")
	l.noPanics("softswitch-b")
}
