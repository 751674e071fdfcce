package acct

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/softswitch/softswitch/aaa/diameter"
	"github.com/softswitch/softswitch/aaa/diameter/testserver"
)

// Accounting as Diameter ACRs: a Start and a Stop per answered call, with
// the record id in Session-Id and Acct-Session-Id; while the server
// refuses (an error Result-Code), the records wait and go again.
func TestAccountingOverDiameter(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	srv := testserver.Start(t, "acct.test", func(m *diam.Message) *diam.Message {
		if refuse.Load() {
			a := m.Answer(diam.UnableToDeliver)
			a.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity("acct.test"))
			a.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity("test"))
			return a
		}
		return testserver.Success(m, "acct.test")
	})
	b := openBilling(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	p := diameter.NewPeer(diameter.Config{Addr: srv.Addr, OriginHost: "n1.test", OriginRealm: "test", AcctApps: []uint32{3},
		Watchdog: time.Hour, Log: quiet})
	go p.Run(ctx)
	waitFor(t, "the peer open", p.Open)
	go (&Sender{Name: "radius", Box: b, Log: quiet, T: &Diameter{Client: &diameter.Client{Peers: []*diameter.Peer{p}},
		ID: diameter.Identity{OriginHost: "n1.test", OriginRealm: "test", DestinationRealm: "test"}}}).Run(ctx)

	call(b, "c1", true)
	waitFor(t, "a refused ACR", func() bool { return len(srv.Got()) >= 1 })
	refuse.Store(false)
	waitFor(t, "Start and Stop delivered", func() bool { return empty(b) })
	var kinds []string
	for _, m := range srv.Got() {
		rt, _ := m.FindAVP(avp.AccountingRecordType, 0)
		sid, _ := m.FindAVP(avp.SessionID, 0)
		if string(sid.Data.(datatype.UTF8String)) != "n1.test;n1-0" {
			t.Fatalf("Session-Id %v", sid.Data)
		}
		kinds = append(kinds, map[datatype.Enumerated]string{2: "start", 4: "stop"}[rt.Data.(datatype.Enumerated)])
	}
	if n := len(kinds); n < 3 || kinds[n-2] != "start" || kinds[n-1] != "stop" {
		t.Fatalf("ACRs %v (the first refused, then Start, Stop)", kinds)
	}
}
