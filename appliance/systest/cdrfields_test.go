package systest

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestCDRFieldsPerReleaseKind: one call per kind of release (caller and
// callee hang up, busy, cancelled, unknown number, no answer, all gateways
// down, session timer, switch shutdown), its record compared field by
// field with what the caller's sipp saw.
func TestCDRFieldsPerReleaseKind(t *testing.T) {
	t.Parallel()
	pAns, pBye, pBusy, pRing := freePort(t), freePort(t), freePort(t), freePort(t)
	pNoAns, pHold, pDead, pST := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg := defaultConfig()
	cfg.NoAnswerTimeout = "3s"
	cfg.SessionExpires, cfg.MinSE = 10, 5 // the session timer call ends after 10 s
	cfg.Extra = "[billing]\nnode = \"fld1\"\n\n" +
		gatewayTOML("gw-answer", pAns, "") + gatewayTOML("gw-bye", pBye, "") +
		gatewayTOML("gw-busy", pBusy, "") + gatewayTOML("gw-ring", pRing, "") +
		gatewayTOML("gw-noans", pNoAns, "") + gatewayTOML("gw-hold", pHold, "") +
		gatewayTOML("gw-dead", pDead, "probe = true\nprobe_interval = \"200ms\"\nprobe_failures = 2\n") +
		gatewayTOML("gw-st", pST, "") +
		"[[analysis]]\nprefix = \"037\"\naction = \"route\"\nroute = \"gw-dead\"\n\n" +
		"[[analysis]]\nprefix = \"038\"\naction = \"route\"\nroute = \"gw-st\"\n\n" +
		"[[analysis]]\nprefix = \"035\"\naction = \"route\"\nroute = \"gw-noans\"\n\n" +
		"[[analysis]]\nprefix = \"036\"\naction = \"route\"\nroute = \"gw-hold\"\n\n" +
		"[[analysis]]\nprefix = \"031\"\naction = \"route\"\nroute = \"gw-answer\"\n\n" +
		"[[analysis]]\nprefix = \"034\"\naction = \"route\"\nroute = \"gw-bye\"\n\n" +
		"[[analysis]]\nprefix = \"032\"\naction = \"route\"\nroute = \"gw-busy\"\n\n" +
		"[[analysis]]\nprefix = \"033\"\naction = \"route\"\nroute = \"gw-ring\"\n\n" +
		"[[analysis]]\nprefix = \"0399\"\naction = \"refuse\"\nstatus = 404\n\n"
	srv := startServer(t, cfg)
	startUAS(t, "gw-answer", "uas_answer.xml", sippOpts{Port: pAns})
	startUAS(t, "gw-bye", "uas_answer_bye.xml", sippOpts{Port: pBye})
	startUAS(t, "gw-busy", "uas_busy.xml", sippOpts{Port: pBusy})
	startUAS(t, "gw-ring", "uas_ring.xml", sippOpts{Port: pRing})
	startUAS(t, "gw-noans", "uas_ring.xml", sippOpts{Port: pNoAns})
	startUAS(t, "gw-hold", "uas_answer.xml", sippOpts{Port: pHold})
	gwST := startUAS(t, "gw-st", "uas_session_timer.xml", sippOpts{Port: pST, Keys: map[string]string{"user": "0381234"},
		Timeout: 60 * time.Second})
	// Nothing answers gw-dead's probes: it is marked down.
	waitLog(t, srv, 10*time.Second, "gateway state", "gateway=gw-dead", "state=down")
	// Nobody refreshes this call: the switch ends it after 10 s, while the
	// other calls are made.
	stOpts := callOpts(srv, "session timer", "uac_session_timer.xml", "0381234")
	stOpts.Timeout = 60 * time.Second
	stCall := startSipp(t, stOpts)

	type want struct {
		name, scenario, number                 string
		end, side, status, q850, gateway, kind string
		answered, rang                         bool
	}
	cases := []want{
		{"caller hangs up", "uac_call_bye.xml", "0311234", "normal", "caller", "200", "16", "gw-answer", "", true, false},
		{"callee hangs up", "uac_call_recv_bye.xml", "0341234", "normal", "callee", "200", "16", "gw-bye", "", true, false},
		{"busy", "uac_rejected.xml", "0321234", "rejected", "callee", "486", "17", "gw-busy", "", false, false},
		{"cancelled", "uac_cancel.xml", "0331234", "cancelled", "caller", "487", "", "gw-ring", "", false, true},
		{"unknown number", "uac_rejected.xml", "03991234", "rejected", "switch", "404", "1", "", "", false, false},
		{"no answer", "uac_rejected.xml", "0351234", "no answer", "switch", "480", "19", "gw-noans", "", false, true},
		{"all gateways down", "uac_rejected.xml", "0371234", "rejected", "switch", "503", "34", "", "", false, false},
	}
	results := map[string]*sippResult{}
	for _, c := range cases {
		results[c.name] = runSipp(t, callOpts(srv, c.name, c.scenario, c.number))
	}
	results["session timer"] = stCall.wait()
	gwST.wait().expectOK(t)
	cases = append(cases, want{"session timer", "", "0381234", "session timer", "switch", "408", "102", "gw-st", "", true, false})
	// A call up when the switch is stopped: BYE to both sides, cause 41.
	held := startSipp(t, callOpts(srv, "shutdown", "uac_call_recv_bye.xml", "0361234"))
	time.Sleep(2 * time.Second)
	srv.stop()
	results["shutdown"] = held.wait()
	cases = append(cases, want{"shutdown", "", "0361234", "switch shutdown", "switch", "503", "41", "gw-hold", "", true, false})
	recs := cdrFiles(t, filepath.Join(srv.DataDir, "cdr"))
	if len(recs) != len(cases) {
		t.Errorf("%d records, want %d", len(recs), len(cases))
	}
	for _, c := range cases {
		res := results[c.name]
		ids := callIDs(res)
		if len(ids) != 1 {
			t.Errorf("%s: sipp sent %d Call-IDs", c.name, len(ids))
			continue
		}
		r := recs[ids[0]]
		if r == nil {
			t.Errorf("%s: no record for %s", c.name, ids[0])
			continue
		}
		check := func(field, want string) {
			if r[field] != want {
				t.Errorf("%s: %s = %q, want %q", c.name, field, r[field], want)
			}
		}
		check("end_reason", c.end)
		check("release_side", c.side)
		check("release_status", c.status)
		if c.q850 != "" {
			check("q850_cause", c.q850)
		}
		check("gateway", c.gateway)
		switch c.name {
		case "all gateways down":
			check("route", "gw-dead")
			check("gateway_attempts", "0")
		case "caller hangs up":
			check("route", "gw-answer")
			check("gateway_attempts", "1")
		}
		check("source_kind", "subscriber")
		check("source", "1001")
		check("calling_received", "1001")
		check("called_received", c.number)
		check("node", "fld1")
		if (r["answer"] != "") != c.answered {
			t.Errorf("%s: answer %q, answered %v", c.name, r["answer"], c.answered)
		}
		if c.rang && r["ringing"] == "" {
			t.Errorf("%s: no ringing time", c.name)
		}
		if c.answered {
			if r["callee_call_id"] == "" || r["media_answered"] == "" || r["billable_ms"] == "0" {
				t.Errorf("%s: answered call record %v", c.name, r)
			}
		} else if r["billable_ms"] != "0" {
			t.Errorf("%s: unanswered call bills %s ms", c.name, r["billable_ms"])
		}
		if r["media_offered"] == "" {
			t.Errorf("%s: no offered media in %v", c.name, r)
		}
		// What the caller saw: the final status of its (last) INVITE.
		if fin := res.finalStatuses("INVITE"); len(fin) > 0 {
			if got := strconv.Itoa(fin[len(fin)-1]); !c.answered && got != c.status {
				t.Errorf("%s: the caller got %s, the record says %s", c.name, got, c.status)
			}
		}
		d, _ := strconv.Atoi(r["duration_ms"])
		if d < 0 || time.Duration(d)*time.Millisecond > 30*time.Second || c.answered && d == 0 {
			t.Errorf("%s: duration %d ms", c.name, d)
		}
	}
}
