package failover

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/softswitch/softswitch/appliance/netlab"
	"github.com/softswitch/softswitch/appliance/testenv"
)

// soakFailovers is how many times the active node is killed, the nodes
// taking turns.
const soakFailovers = 20

// TestFailoverSoak (make test-long): 20 failovers back and forth under a
// steady load of new calls (10 a second, each held 3 s, from a trusted
// caller through the virtual address to a gateway). Three times in four
// the active node's switch is killed with SIGKILL, the other takes over,
// and the killed one is started again and follows; every fourth is the
// operator's switchover (the old active node hands its calls over). Every call the caller saw
// answered has exactly one record (at the billing centre or still on a
// node), and every record is of a call the caller saw answered or tried;
// the calls that failed are counted by what the caller got.
func TestFailoverSoak(t *testing.T) {
	if os.Getenv("SOFTSWITCH_TEST_LONG") == "" {
		t.Skip("a soak of several minutes: make test-long runs it")
	}
	testenv.RequireRoot(t, "network namespaces, keepalived")
	bin := buildBinary(t)
	l := newLab(t, bin, "g", "bc")
	incoming := l.vsftpd("bc", extraIP["bc"])
	// Debug: a call that goes wrong can be followed in the nodes' logs.
	extra := pushTOML() + callsTOML() + "\n[log]\nlevel = \"debug\"\n"
	l.pair(extra)

	scen := filepath.Join(netlab.RepoRoot(t), "appliance", "systest", "scenarios")
	l.Start("sipp-gw", "g", "sipp", "-sf", filepath.Join(scen, "uas_answer.xml"), "-i", extraIP["g"], "-p", "5060",
		"-key", "user", "gw", "-nostdin", "-timeout", "600s", "-trace_stat", "-stf", filepath.Join(l.Dir, "gw.csv"), "-fd", "1")
	time.Sleep(500 * time.Millisecond)
	const rate, hold = 10, 3 * time.Second
	total := rate * (soakFailovers*9 + 20)
	trace := filepath.Join(l.Dir, "callers-messages.log")
	uac := l.Start("sipp-callers", "c", "sipp", vip+":5060", "-sf", filepath.Join(scen, "uac_trusted_hold.xml"),
		"-i", clientIP, "-p", "5080", "-s", "0401111", "-key", "caller", "0301234", "-key", "max_forwards", "70",
		"-r", strconv.Itoa(rate), "-m", strconv.Itoa(total), "-d", strconv.Itoa(int(hold/time.Millisecond)),
		"-recv_timeout", "20000", "-nostdin", "-timeout", "900s", "-trace_msg", "-message_file", trace)
	time.Sleep(5 * time.Second)

	active, standby := "a", "b"
	current := map[string]string{"a": softswitchName("a", -1), "b": softswitchName("b", -1)}
	var takeovers []string
	for i := 1; i <= soakFailovers; i++ {
		killed := time.Now()
		if i%4 == 0 {
			// Every fourth, the operator's switchover instead: the old
			// active node hands its calls over and stays up.
			sh(t, "ip", "netns", "exec", l.NS(active), bin, "switchover", "--data-dir", filepath.Join(l.Dir, "data-"+active))
			l.waitVIP(standby, 15*time.Second)
			takeovers = append(takeovers, "switchover "+time.Since(killed).Round(100*time.Millisecond).String())
		} else {
			l.Stop(current[active], syscall.SIGKILL)
			l.waitVIP(standby, 15*time.Second)
			takeovers = append(takeovers, time.Since(killed).Round(100*time.Millisecond).String())
			current[active] = softswitchName(active, i)
			l.Start(current[active], active, bin, "--config", filepath.Join(l.Dir, "node-"+active+".toml"),
				"--data-dir", filepath.Join(l.Dir, "data-"+active))
		}
		l.waitInStep(active, 30*time.Second)
		time.Sleep(3 * time.Second) // new calls through the new active node
		active, standby = standby, active
	}
	t.Logf("%d failovers; the address moved %v after each kill (or switchover)", soakFailovers, takeovers)
	if err := l.Wait("sipp-callers", 600*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("the callers' sipp exited %d", uac.ProcessState.ExitCode())
	// The last active node pushes what it closed; the standby keeps its own.
	time.Sleep(8 * time.Second)

	answered, tried, got := callerOutcomes(t, trace)
	records := map[string]int{}
	answeredRecords := map[string]int{}
	rowsOf := map[string][]string{}
	for _, r := range allRecords(t, incoming, filepath.Join(l.Dir, "data-a", "cdr"), filepath.Join(l.Dir, "data-b", "cdr"),
		filepath.Join(l.Dir, "data-a", "cdr", "relay"), filepath.Join(l.Dir, "data-b", "cdr", "relay")) {
		records[r["caller_call_id"]]++
		if r["answer"] != "" {
			answeredRecords[r["caller_call_id"]]++
		}
		rowsOf[r["caller_call_id"]] = append(rowsOf[r["caller_call_id"]], fmt.Sprintf("%s seizure %s answer %s release %s end %q side %s",
			r["record_id"], r["seizure"], r["answer"], r["release"], r["end_reason"], r["release_side"]))
	}
	defer func() {
		// What the records of a call that went wrong say (none: lost),
		// and the nodes' log lines about it and about their settling.
		logs, _ := filepath.Glob(filepath.Join(l.Dir, "softswitch-*.log"))
		grep := func(match func(string) bool) {
			for _, p := range logs {
				data, _ := os.ReadFile(p)
				for _, line := range strings.Split(string(data), "\n") {
					if match(line) {
						t.Logf("%s: %s", filepath.Base(p), line)
					}
				}
			}
		}
		shown := 0
		for id := range tried {
			if shown == 3 || len(rowsOf[id]) == 1 && (!answered[id] || answeredRecords[id] == 1) {
				continue
			}
			shown++
			t.Logf("call %s: records\n  %s", id, strings.Join(rowsOf[id], "\n  "))
			grep(func(line string) bool { return strings.Contains(line, id) })
			// Where its Call-ID is on the nodes' disks (a spool, a
			// journal, a relayed file not yet pushed...).
			for _, n := range []string{"a", "b"} {
				filepath.WalkDir(filepath.Join(l.Dir, "data-"+n), func(p string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						if data, err := os.ReadFile(p); err == nil && strings.Contains(string(data), id) {
							t.Logf("call %s is in %s", id, strings.TrimPrefix(p, l.Dir+"/"))
						}
					}
					return nil
				})
			}
		}
		if shown > 0 {
			grep(func(line string) bool {
				return strings.Contains(line, "settled") || strings.Contains(line, "took on") || strings.Contains(line, "failpoint") ||
					strings.Contains(line, "in step") || strings.Contains(line, "HA role")
			})
		}
	}()
	lost, twice := 0, 0
	for id := range answered {
		switch n := answeredRecords[id]; {
		case n == 0:
			lost++
			if lost <= 5 {
				t.Errorf("call %s answered, no answered record (%d records)", id, records[id])
			}
		case n > 1 || records[id] > 1:
			twice++
			if twice <= 5 {
				t.Errorf("call %s has %d records", id, records[id])
			}
		}
	}
	for id := range answeredRecords {
		if !answered[id] {
			t.Errorf("a record of call %s answered, which the caller never saw answered", id)
		}
	}
	for id := range records {
		if !tried[id] {
			t.Errorf("a record of call %s, which the caller never made", id)
		}
	}
	// Every attempt has one record; one not answered was refused (a final
	// response), never left half set up.
	for id := range tried {
		if records[id] != 1 {
			t.Errorf("call %s has %d records", id, records[id])
		}
		if answered[id] {
			continue
		}
		refused := false
		for _, g := range got[id] {
			if code, _ := strconv.Atoi(strings.Fields(g)[0]); code >= 300 && strings.HasSuffix(g, " INVITE") {
				refused = true
			}
		}
		if !refused {
			t.Errorf("call %s was not answered and got no final response: %v", id, got[id])
		}
	}
	// What the calls that failed got, by kind.
	kinds := map[string]int{}
	for id := range tried {
		seq := strings.Join(got[id], ",")
		if answered[id] && strings.Contains(seq, "200 BYE") {
			continue
		}
		kinds["["+seq+"]"]++
	}
	t.Logf("calls not completed, by what the caller got: %v", kinds)
	failed := len(tried) - len(answered)
	t.Logf("calls tried %d, answered %d (each with one record: lost %d, twice %d), not answered %d", len(tried), len(answered), lost, twice, failed)
	for _, n := range []string{"a", "b"} {
		for i := soakFailovers; i >= -1; i-- {
			if _, err := os.Stat(filepath.Join(l.Dir, softswitchName(n, i)+".log")); err == nil {
				l.noPanics(softswitchName(n, i))
			}
		}
	}
}

// softswitchName is the process name of node n's switch in its run i (-1:
// the first).
func softswitchName(n string, i int) string {
	if i < 0 {
		return "softswitch-" + n
	}
	return fmt.Sprintf("softswitch-%s-%d", n, i)
}

var (
	callIDHdr = regexp.MustCompile(`(?mi)^Call-ID: *(\S+)`)
	cseqHdr   = regexp.MustCompile(`(?mi)^CSeq: *(\d+) +(\w+)`)
)

// callerOutcomes reads the callers' message trace: the calls whose INVITE
// got a 200, and every call sent.
func callerOutcomes(t *testing.T, path string) (answered, tried map[string]bool, got map[string][]string) {
	t.Helper()
	answered, tried, got = map[string]bool{}, map[string]bool{}, map[string][]string{}
	for _, m := range netlab.Messages(t, path) {
		msg := m.Text
		id := callIDHdr.FindStringSubmatch(msg)
		cs := cseqHdr.FindStringSubmatch(msg)
		if id == nil || cs == nil {
			continue
		}
		if m.Received && strings.HasPrefix(msg, "SIP/2.0 ") && len(msg) >= 11 {
			got[id[1]] = append(got[id[1]], msg[8:11]+" "+strings.ToUpper(cs[2]))
		} else if m.Received {
			got[id[1]] = append(got[id[1]], strings.SplitN(msg, " ", 2)[0])
		}
		switch {
		case !m.Received && strings.HasPrefix(msg, "INVITE "):
			tried[id[1]] = true
		case m.Received && strings.HasPrefix(msg, "SIP/2.0 200") && strings.EqualFold(cs[2], "INVITE"):
			answered[id[1]] = true
		}
	}
	return answered, tried, got
}

// allRecords reads the CSV files of dirs, each file once by its name (a
// delivered file is at the billing centre and on its node).
func allRecords(t *testing.T, dirs ...string) []map[string]string {
	t.Helper()
	seen := map[string]bool{}
	var out []map[string]string
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			n := e.Name()
			if !strings.HasSuffix(n, ".csv") || strings.HasPrefix(n, ".") || seen[n] {
				continue
			}
			seen[n] = true
			out = append(out, csvRows(t, filepath.Join(d, n))...)
		}
	}
	return out
}
