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
	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/core/events"
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
	b := diameterBed(t, srv, 0)

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

// Interim accounting over Diameter: INTERIM_RECORDs every interval for an
// answered call, numbered in order between the START (0) and the STOP,
// each with Acct-Interim-Interval; none after the STOP.
func TestInterimOverDiameter(t *testing.T) {
	srv := testserver.Start(t, "acct.test", func(m *diam.Message) *diam.Message { return testserver.Success(m, "acct.test") })
	b := diameterBed(t, srv, time.Second)

	now := time.Now().UTC()
	b.Handle(&events.Event{Kind: events.CallAttempt, Time: now, Setup: now, CallID: "held@test", Calling: "1001", Called: "1002"})
	b.Handle(&events.Event{Kind: events.CallAnswer, Time: now, Answer: now, CallID: "held@test"})
	kinds := func() (k []int, numbers []int) {
		for _, m := range srv.Got() {
			rt, _ := m.FindAVP(avp.AccountingRecordType, 0)
			rn, _ := m.FindAVP(avp.AccountingRecordNumber, 0)
			k = append(k, int(rt.Data.(datatype.Enumerated)))
			numbers = append(numbers, int(rn.Data.(datatype.Unsigned32)))
			if rt.Data.(datatype.Enumerated) == diameter.RecordInterim {
				if iv, err := m.FindAVP(avp.AcctInterimInterval, 0); err != nil || iv.Data.(datatype.Unsigned32) != 1 {
					t.Errorf("an INTERIM_RECORD without Acct-Interim-Interval 1: %v", m)
				}
			}
		}
		return k, numbers
	}
	waitFor(t, "two INTERIM_RECORDs", func() bool {
		k, _ := kinds()
		n := 0
		for _, x := range k {
			if x == diameter.RecordInterim {
				n++
			}
		}
		return n >= 2
	})
	b.Handle(&events.Event{Kind: events.CallRelease, Time: time.Now().UTC(), CallID: "held@test", Cause: "BYE",
		Status: 200, Q850: 16, Answered: true})
	waitFor(t, "the STOP", func() bool { k, _ := kinds(); return k[len(k)-1] == diameter.RecordStop })
	k, numbers := kinds()
	if k[0] != diameter.RecordStart || numbers[0] != 0 {
		t.Fatalf("the first ACR: type %d number %d", k[0], numbers[0])
	}
	for i := 1; i < len(numbers); i++ {
		if numbers[i] <= numbers[i-1] {
			t.Fatalf("Accounting-Record-Numbers %v not increasing (types %v)", numbers, k)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	if n := len(srv.Got()); n != len(k) {
		t.Fatalf("%d ACRs after the STOP, had %d", n, len(k))
	}
}

// diameterBed is a billing with a Diameter accounting sender to srv,
// interim records every interim (0: none), until the test ends.
func diameterBed(t *testing.T, srv *testserver.Server, interim time.Duration) *billing.Billing {
	b := openBilling(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go b.Run(ctx)
	p := diameter.NewPeer(diameter.Config{Addr: srv.Addr, OriginHost: "n1.test", OriginRealm: "test", AcctApps: []uint32{3},
		Watchdog: time.Hour, Log: quiet})
	go p.Run(ctx)
	waitFor(t, "the peer open", p.Open)
	go (&Sender{Name: "radius", Box: b, Log: quiet, Interim: interim, T: &Diameter{Client: &diameter.Client{Peers: []*diameter.Peer{p}},
		Interval: interim, ID: diameter.Identity{OriginHost: "n1.test", OriginRealm: "test", DestinationRealm: "test"}}}).Run(ctx)
	return b
}
