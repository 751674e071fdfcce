package failover

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/softswitch/softswitch/appliance/netlab"
	"github.com/softswitch/softswitch/appliance/testenv"
)

// TestReleaseAtTheCrash: the active node dies at the worst moment of a
// call's release, with the call's end not yet at the standby, which
// takes the call on as well. Two runs, each by a failpoint of the switch
// built with them (core/failpoint):
//
//   - cdr-release-journalled: the caller's BYE released the call and
//     its CDR is journalled, but nothing of it was sent: the caller
//     retransmits its BYE, the new active node releases the call (its
//     record); the old node, back, drops its own record when it settles.
//   - call-end-unstreamed: the release was recorded and its BYE and 200
//     sent, only its end never streamed (the node dies 300 ms later):
//     its record, committed meanwhile, reached the standby (the copy of
//     what the node had not delivered), so the new active node does not
//     take the call on (no ghost); were the record too late, it holds a
//     ghost and ends it without a record when the old node, back, keeps
//     its own.
//   - bye-answer-unsent: the release was recorded, its end streamed and
//     the BYE on the other leg sent, but the 200 to the caller's BYE
//     never left: its retransmission reaches the new active node, which
//     knows the call ended there and answers 200 (not 481); the old
//     node, back, keeps its record.
//
// Either way every call has exactly one record.
func TestReleaseAtTheCrash(t *testing.T) {
	testenv.RequireRoot(t, "network namespaces, keepalived")
	root := netlab.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "softswitch")
	sh(t, "go", "build", "-C", root, "-tags", "failpoints", "-o", bin, "./cmd/softswitch")
	for _, point := range []string{"cdr-release-journalled", "call-end-unstreamed", "bye-answer-unsent"} {
		t.Run(point, func(t *testing.T) { releaseAtTheCrash(t, bin, point) })
	}
}

func releaseAtTheCrash(t *testing.T, bin, point string) {
	const calls = 5
	l := newLab(t, bin, "g", "bc")
	incoming := l.vsftpd("bc", extraIP["bc"])
	l.pair(pushTOML() + callsTOML())

	scen := filepath.Join(netlab.RepoRoot(t), "appliance", "systest", "scenarios")
	uas := l.Start("sipp-gw", "g", "sipp", "-sf", filepath.Join(scen, "uas_answer.xml"), "-i", extraIP["g"], "-p", "5060",
		"-m", strconv.Itoa(calls), "-key", "user", "gw", "-nostdin", "-timeout", "90s", "-trace_err")
	time.Sleep(500 * time.Millisecond)
	uac := l.Start("sipp-callers", "c", "sipp", vip+":5060", "-sf", filepath.Join(scen, "uac_trusted_hold.xml"),
		"-i", clientIP, "-p", "5080", "-s", "0401111", "-key", "caller", "0301234", "-key", "max_forwards", "70",
		"-r", "10", "-m", strconv.Itoa(calls), "-l", strconv.Itoa(calls), "-d", "6000",
		"-nostdin", "-timeout", "90s", "-trace_err")
	waitUntil(t, 5*time.Second, "every call replicated to node b", func() bool {
		out, _ := l.In("b", bin, "replication", "--data-dir", filepath.Join(l.Dir, "data-b"))
		return strings.Contains(out, fmt.Sprintf("calls in progress replicated  %d\n", calls))
	})
	// The first release on node a kills it there.
	if err := os.WriteFile(filepath.Join(l.Dir, "data-a", "cdr", ".failpoint-"+point), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait("softswitch-a", 15*time.Second); err != nil {
		t.Fatalf("the failpoint did not fire: %v", err)
	}
	l.waitVIP("b", 10*time.Second)
	// The other calls' BYEs (and the first's, retransmitted, in the first
	// run) reach node b.
	if err := l.Wait("sipp-callers", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait("sipp-gw", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if c, g := uac.ProcessState.ExitCode(), uas.ProcessState.ExitCode(); c != 0 || g != 0 {
		t.Errorf("sipp exited %d (callers), %d (gateway): not every call released on both legs", c, g)
	}

	// Node a comes back, follows b, and settles.
	l.Start("softswitch-a-again", "a", bin, "--config", filepath.Join(l.Dir, "node-a.toml"), "--data-dir", filepath.Join(l.Dir, "data-a"))
	l.waitInStep("a", 20*time.Second)
	want := map[string]string{
		"cdr-release-journalled": "written_by_the_other_node=1",
		"call-end-unstreamed":    "written_by_the_other_node=0",
		"bye-answer-unsent":      "written_by_the_other_node=0",
	}[point]
	waitUntil(t, 10*time.Second, "node a settles the call it released", func() bool {
		data, _ := os.ReadFile(filepath.Join(l.Dir, "softswitch-a-again.log"))
		return strings.Contains(string(data), "settled with the pair's other node") && strings.Contains(string(data), want)
	})
	ghostEnded := func() bool {
		data, _ := os.ReadFile(filepath.Join(l.Dir, "softswitch-b.log"))
		return strings.Contains(string(data), "ended here, its record is the other node's")
	}
	// The ghost: not taken on when its record reached node b (the commit
	// of a's spool, within 100 ms, came before the kill, 300 ms after the
	// release: the usual case), else taken on and ended at the settling.
	ghostRefused := func() bool {
		data, _ := os.ReadFile(filepath.Join(l.Dir, "softswitch-b.log"))
		return strings.Contains(string(data), "is not taken on: no ghost")
	}
	if point == "call-end-unstreamed" && !ghostEnded() && !ghostRefused() {
		t.Error("node b did not end (or refuse) the ghost of the call node a had released")
	}
	if point != "call-end-unstreamed" && ghostRefused() {
		t.Error("node b refused a call node a had not released")
	}
	if point != "call-end-unstreamed" && ghostEnded() {
		t.Error("node b ended a call it had released itself")
	}

	// One record per call, answered: at the billing centre (node a's
	// files reach it through node b).
	var rows []map[string]string
	waitUntil(t, 30*time.Second, "every call's record at the billing centre", func() bool {
		_, rows = readCDRs(t, incoming)
		return len(rows) >= calls
	})
	time.Sleep(3 * time.Second) // a duplicate would come now
	_, rows = readCDRs(t, incoming)
	seen := map[string]int{}
	for _, r := range rows {
		seen[r["caller_call_id"]]++
		if r["answer"] == "" || r["end_reason"] != "normal" {
			t.Errorf("record %s: answer %q end %q", r["record_id"], r["answer"], r["end_reason"])
		}
	}
	if len(rows) != calls || len(seen) != calls {
		t.Errorf("%d records of %d calls at the billing centre, want %d of %d", len(rows), len(seen), calls, calls)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("call %s has %d records", id, n)
		}
	}
	l.noPanics("softswitch-a-again")
	l.noPanics("softswitch-b")
}
