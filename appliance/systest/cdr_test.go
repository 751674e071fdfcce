package systest

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// cdrFiles reads the closed CDR files of dir in sequence order: it checks
// each file's SHA-256 sidecar and that the sequence numbers run 1, 2, ...
// without a gap, and returns the records by caller Call-ID (a Call-ID
// seen twice fails the test).
func cdrFiles(t *testing.T, dir string) map[string]map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("CDR directory: %v", err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".csv") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	byCall := map[string]map[string]string{}
	ids := map[string]bool{}
	seqs := map[string]int{} // each node's files in its own sequence
	for _, n := range names {
		node, _, _ := strings.Cut(n, "_")
		seqs[node]++
		if want := fmt.Sprintf("%s_%010d_", node, seqs[node]); !strings.HasPrefix(n, want) {
			t.Fatalf("CDR file %d of %s is %s: the sequence has a gap or a repeat (%v)", seqs[node], node, n, names)
		}
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		side, err := os.ReadFile(filepath.Join(dir, n+".sha256"))
		sum := sha256.Sum256(data)
		if err != nil || string(side) != hex.EncodeToString(sum[:])+"  "+n+"\n" {
			t.Fatalf("%s: sidecar %q does not match (%v)", n, side, err)
		}
		rows, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
		if err != nil || len(rows) < 2 {
			t.Fatalf("%s: %d rows, %v", n, len(rows), err)
		}
		head := rows[0]
		for _, row := range rows[1:] {
			rec := map[string]string{"file": n}
			for j, h := range head {
				rec[h] = row[j]
			}
			if ids[rec["record_id"]] {
				t.Errorf("record id %s twice", rec["record_id"])
			}
			ids[rec["record_id"]] = true
			if byCall[rec["caller_call_id"]] != nil {
				t.Errorf("Call-ID %s has two records", rec["caller_call_id"])
			}
			byCall[rec["caller_call_id"]] = rec
		}
	}
	return byCall
}

// callIDs are the Call-IDs of the initial INVITEs a sipp run sent.
func callIDs(r *sippResult) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range r.SentRequests("INVITE") {
		if id := m.Header("Call-ID"); id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// TestCDRsSurviveKill: answered calls and a refused one get their records;
// calls held when the daemon is killed (kill -9) get theirs at the next
// start, "ended by restart"; after a clean stop every attempt is in a
// closed file, once, in an unbroken file sequence.
func TestCDRsSurviveKill(t *testing.T) {
	t.Parallel()
	srv := billingBed(t, "[billing]\nnode = \"sys1\"\nrotate_records = 25\n\n"+
		"[[analysis]]\nprefix = \"0399\"\naction = \"refuse\"\nstatus = 404\n")
	done := trunkCalls(t, srv, "calls", 60, 30)
	// Refused by number analysis after it passed authentication: a record too.
	refused := runSipp(t, sippOpts{Name: "refused", Scenario: "uac_rejected.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "03991234", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"}, Timeout: 10 * time.Second})

	held := startSipp(t, sippOpts{Name: "held", Scenario: "uac_trusted_hold.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0305678", Keys: map[string]string{"caller": "0402222", "max_forwards": "70"},
		Calls: 10, Rate: 20, Pause: 60 * time.Second, Timeout: 90 * time.Second})
	// Held: answered on both sides; then the daemon dies.
	time.Sleep(3 * time.Second)
	srv.kill()
	held.kill()
	srv.start()
	srv.stop() // closes the current file

	recs := cdrFiles(t, filepath.Join(srv.DataDir, "cdr"))
	for _, id := range callIDs(done) {
		r := recs[id]
		if r == nil {
			t.Errorf("answered call %s has no record", id)
			continue
		}
		if r["end_reason"] != "normal" || r["release_status"] != "200" || r["gateway"] != "gw-ok" ||
			r["source"] != "trunk-a" || r["answer"] == "" || r["billable_ms"] == "0" || r["callee_call_id"] == "" {
			t.Errorf("answered call record %v", r)
		}
	}
	for _, id := range callIDs(refused) {
		if r := recs[id]; r == nil || r["end_reason"] != "rejected" || r["answer"] != "" || r["release_status"] != "404" {
			t.Errorf("refused call %s: record %v", id, r)
		}
	}
	heldIDs := callIDs(held.res)
	if len(heldIDs) == 0 {
		t.Fatal("the held calls never started")
	}
	answered := map[string]bool{} // the caller got the 200: the record must have the answer
	for _, m := range held.res.ReceivedResponses("INVITE") {
		if m.Status == 200 {
			answered[m.Header("Call-ID")] = true
		}
	}
	for _, id := range heldIDs {
		r := recs[id]
		if r == nil {
			t.Errorf("call %s held through the kill has no record", id)
			continue
		}
		if r["end_reason"] != "ended by restart" || answered[id] && r["answer"] == "" || r["release"] < r["answer"] {
			t.Errorf("held call record %v (the caller got a 200: %v)", r, answered[id])
		}
	}
	if len(answered) == 0 {
		t.Error("no held call was answered before the kill")
	}
	want := len(callIDs(done)) + len(callIDs(refused)) + len(heldIDs)
	if len(recs) != want {
		t.Errorf("%d records, want %d (one per attempt)", len(recs), want)
	}
}
