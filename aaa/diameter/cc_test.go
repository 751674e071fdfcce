package diameter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/softswitch/softswitch/aaa/diameter"
	"github.com/softswitch/softswitch/aaa/diameter/testserver"
	"github.com/softswitch/softswitch/core/call"
)

func ccClient(t *testing.T, o *testserver.OCS) *diameter.CreditControl {
	srv := testserver.Start(t, "ocs.test", o.Answer)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, p := runPeer(ctx, srv.Addr)
	waitFor(t, "the peer open", 10*time.Second, p.Open)
	return &diameter.CreditControl{Client: &diameter.Client{Peers: []*diameter.Peer{p}},
		ID: diameter.Identity{OriginHost: "ss1.test", OriginRealm: "test", DestinationRealm: "test"}}
}

// A 5 s balance granted 2 s at a time: Initial (2 s), Update with 2 s
// used (2 s), Update with 2 s used (1 s, final), Termination with 1 s
// used; then a call with no balance left is refused.
func TestCreditControlSession(t *testing.T) {
	o := testserver.NewOCS(map[string]int{"1001": 5}, 2)
	cc := ccClient(t, o)
	ctx := context.Background()
	req := call.AuthzRequest{CallID: "c1", Calling: "1001", Called: "0301234"}
	g, err := cc.Authorize(ctx, req)
	if err != nil || !g.Allow || g.Duration != 2*time.Second || g.Final || g.Session == nil {
		t.Fatalf("initial: %+v %v", g, err)
	}
	s := g.Session
	for i, want := range []call.Grant{{Allow: true, Duration: 2 * time.Second}, {Allow: true, Duration: time.Second, Final: true}} {
		g, err := s.Extend(ctx, 2*time.Second)
		if err != nil || g.Allow != want.Allow || g.Duration != want.Duration || g.Final != want.Final {
			t.Fatalf("update %d: %+v %v", i+1, g, err)
		}
	}
	s.End(time.Second)
	s.End(time.Second) // once only
	got := fmt.Sprint(o.Log())
	left := o.Balance("1001")
	if got != "[1 0 -1 1001 2 1 2 1001 2 2 2 1001 3 3 1 1001]" || left != 0 {
		t.Fatalf("the OCS saw %s, balance %d", got, left)
	}
	g, err = cc.Authorize(ctx, req)
	if err != nil || g.Allow || g.Status != 403 || g.Session != nil {
		t.Fatalf("no balance: %+v %v", g, err)
	}
}

// Failure handling (RFC 4006 §8.14) when the first OCS does not answer
// an update and a second would: TERMINATE asks the first only and fails;
// RETRY_AND_TERMINATE and CONTINUE fail over to the second (T flag set);
// the mode in force is the last answer's, else the local one. Validity-
// Time is read from the answer.
func TestCreditControlFailureHandling(t *testing.T) {
	for _, c := range []struct {
		name     string
		ccfh     int // the server's; -1: none
		failOpen bool
		second   bool // the second OCS asked
		ok       bool
	}{
		{"TERMINATE", 0, true, false, false},
		{"RETRY_AND_TERMINATE", 2, false, true, true},
		{"CONTINUE", 1, false, true, true},
		{"local RETRY_AND_TERMINATE", -1, false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := testserver.NewOCS(map[string]int{"1001": 100}, 10)
			o.FailureHandling, o.Validity = c.ccfh, 3
			first := testserver.Start(t, "ocs1.test", func(m *diam.Message) *diam.Message {
				if testserver.IsUpdate(m) {
					return nil
				}
				return o.Answer(m)
			})
			second := testserver.Start(t, "ocs2.test", o.Answer)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, p1 := runPeer(ctx, first.Addr)
			_, p2 := runPeer(ctx, second.Addr)
			waitFor(t, "the peers open", 10*time.Second, func() bool { return p1.Open() && p2.Open() })
			cc := &diameter.CreditControl{Client: &diameter.Client{Peers: []*diameter.Peer{p1, p2}, Timeout: 300 * time.Millisecond},
				FailOpen: c.failOpen, ID: diameter.Identity{OriginHost: "ss1.test", OriginRealm: "test", DestinationRealm: "test"}}
			g, err := cc.Authorize(ctx, call.AuthzRequest{CallID: "c1", Calling: "1001", Called: "0301234"})
			if err != nil || !g.Allow || g.Validity != 3*time.Second || g.FailOpen != (c.ccfh == 1) {
				t.Fatalf("initial: %+v %v", g, err)
			}
			g2, err := g.Session.Extend(ctx, time.Second)
			if (err == nil) != c.ok || (c.ok && (!g2.Allow || g2.Duration != 10*time.Second)) {
				t.Fatalf("update: %+v %v", g2, err)
			}
			var retransmitted bool
			for _, m := range second.Got() {
				retransmitted = retransmitted || m.Header.CommandFlags&diam.RetransmittedFlag != 0
			}
			if asked := len(second.Got()) > 0; asked != c.second || asked != retransmitted {
				t.Fatalf("the second OCS got %d requests (T flag %v)", len(second.Got()), retransmitted)
			}
			g.Session.End(time.Second)
		})
	}
}
