package acct

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	ourradius "github.com/softswitch/softswitch/aaa/radius"
	"github.com/softswitch/softswitch/aaa/radius/freeradius"
	"github.com/softswitch/softswitch/core/events"
)

func detailRecords(t *testing.T, path string) []map[string]string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("detail file: %v", err)
	}
	return freeradius.Detail(path)
}

// One answered call, accounted to a real FreeRADIUS: its Start and Stop
// in the detail file, compared field by field with the CDR.
func TestAccountingToFreeRADIUS(t *testing.T) {
	srv := freeradius.Start(t, freeradius.Options{Secret: "acct-s3cret", Dictionary: "../../docs/dictionary.softswitch"})
	b := openBilling(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	cl := ourradius.New([]ourradius.Server{{Addr: srv.Acct, Secret: []byte("acct-s3cret")}})
	defer cl.Close()
	s := &Sender{Name: "radius", Box: b, Log: quiet,
		T: &RADIUS{Client: cl, NAS: ourradius.NAS{Identifier: "n1", IP: netip.MustParseAddr("127.0.0.1")}}}
	go s.Run(ctx)

	b.Handle(&events.Event{Kind: events.CallAttempt, Time: t0, Setup: t0, CallID: "call-1@test", Calling: "0401234",
		Called: "0305678", CalledSent: "305678", CallingSent: "401234", Trunk: "peer-a", Account: "acc-7"})
	b.Handle(&events.Event{Kind: events.CallAnswer, Time: t0.Add(2 * time.Second), Answer: t0.Add(2 * time.Second),
		CallID: "call-1@test", Gateway: "gw-1"})
	b.Handle(&events.Event{Kind: events.CallRelease, Time: t0.Add(62*time.Second + 300*time.Millisecond), CallID: "call-1@test",
		Cause: "BYE", Status: 200, Q850: 16, Side: events.SideCallee, Answered: true, Gateway: "gw-1", Attempts: 1})
	waitFor(t, "Start and Stop delivered", func() bool { return empty(b) && strings.Count(readFile(srv.Detail), "Acct-Status-Type") == 2 })

	recs := detailRecords(t, srv.Detail)
	if len(recs) != 2 {
		t.Fatalf("%d detail records", len(recs))
	}
	start, stop := recs[0], recs[1]
	common := map[string]string{"Acct-Session-Id": "n1-0", "User-Name": "acc-7", "Calling-Station-Id": "0401234",
		"Called-Station-Id": "0305678", "NAS-Identifier": "n1", "NAS-IP-Address": "127.0.0.1",
		"Softswitch-Gateway": "gw-1", "Softswitch-Called-Sent": "305678", "Softswitch-Calling-Sent": "401234",
		"Softswitch-Call-ID": "call-1@test"}
	for k, v := range common {
		if start[k] != v || stop[k] != v {
			t.Errorf("%s: start %q, stop %q, want %q", k, start[k], stop[k], v)
		}
	}
	want := map[string]map[string]string{
		"start": {"Acct-Status-Type": "Start", "Event-Timestamp": "Dec  2 2026 10:00:02 UTC"},
		"stop": {"Acct-Status-Type": "Stop", "Event-Timestamp": "Dec  2 2026 10:01:02 UTC", "Acct-Session-Time": "61",
			"Acct-Terminate-Cause": "User-Request", "Softswitch-Q850-Cause": "16", "Softswitch-SIP-Status": "200",
			"Softswitch-Release-Side": "callee"},
	}
	for name, rec := range map[string]map[string]string{"start": start, "stop": stop} {
		for k, v := range want[name] {
			if rec[k] != v {
				t.Errorf("%s %s = %q, want %q", name, k, rec[k], v)
			}
		}
		if rec["Acct-Delay-Time"] == "" {
			t.Errorf("%s has no Acct-Delay-Time: %v", name, rec)
		}
	}
	if t.Failed() {
		t.Logf("detail:\n%s", readFile(srv.Detail))
	}
	if _, ok := start["Acct-Session-Time"]; ok {
		t.Error("a Start with a session time")
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// Interim-Update every interval for an answered call, with the session
// time so far, until its Stop.
func TestInterimToFreeRADIUS(t *testing.T) {
	srv := freeradius.Start(t, freeradius.Options{Secret: "acct-s3cret"})
	b := openBilling(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	cl := ourradius.New([]ourradius.Server{{Addr: srv.Acct, Secret: []byte("acct-s3cret")}})
	defer cl.Close()
	go (&Sender{Name: "radius", Box: b, Log: quiet, Interim: time.Second,
		T: &RADIUS{Client: cl, NAS: ourradius.NAS{Identifier: "n1"}}}).Run(ctx)

	now := time.Now().UTC()
	b.Handle(&events.Event{Kind: events.CallAttempt, Time: now, Setup: now, CallID: "held@test", Calling: "1001", Called: "1002"})
	b.Handle(&events.Event{Kind: events.CallAnswer, Time: now, Answer: now, CallID: "held@test"})
	waitFor(t, "two Interim-Updates", func() bool {
		return strings.Count(readFile(srv.Detail), "Acct-Status-Type = Interim-Update") >= 2
	})
	b.Handle(&events.Event{Kind: events.CallRelease, Time: time.Now().UTC(), CallID: "held@test", Cause: "BYE",
		Status: 200, Q850: 16, Answered: true})
	waitFor(t, "the Stop", func() bool { return strings.Contains(readFile(srv.Detail), "Acct-Status-Type = Stop") })
	var kinds []string
	for _, r := range detailRecords(t, srv.Detail) {
		kinds = append(kinds, r["Acct-Status-Type"])
		if r["Acct-Status-Type"] == "Interim-Update" && (r["Acct-Session-Time"] == "" || r["Acct-Session-Id"] != "n1-0") {
			t.Errorf("interim %v", r)
		}
	}
	if kinds[0] != "Start" || kinds[len(kinds)-1] != "Stop" {
		t.Fatalf("order %v", kinds)
	}
	// No interim after the Stop.
	time.Sleep(1500 * time.Millisecond)
	if n := len(detailRecords(t, srv.Detail)); n != len(kinds) {
		t.Fatalf("%d requests after the Stop, had %d", n, len(kinds))
	}
}
