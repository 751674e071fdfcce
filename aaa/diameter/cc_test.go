package diameter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
