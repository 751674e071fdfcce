package diameter_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/softswitch/softswitch/aaa/diameter"
	"github.com/softswitch/softswitch/aaa/diameter/testserver"
	"github.com/softswitch/softswitch/billing/cdr"
)

func strAVP(t *testing.T, m *diam.Message, code uint32) string {
	t.Helper()
	a, err := m.FindAVP(code, 0)
	if err != nil {
		t.Fatalf("no AVP %d in %v", code, m)
	}
	switch v := a.Data.(type) {
	case datatype.UTF8String:
		return string(v)
	case datatype.OctetString:
		return string(v)
	case datatype.Enumerated:
		return string(rune('0' + v))
	case datatype.Unsigned32:
		return string(rune('0' + v))
	}
	return a.Data.String()
}

// An ACR goes to the first peer; one that does not answer in time sends
// it to the next with the T flag and the same End-to-End Identifier.
func TestClientFailoverWithTFlag(t *testing.T) {
	silent := testserver.Start(t, "one.test", func(m *diam.Message) *diam.Message { return nil })
	second := testserver.Start(t, "two.test", func(m *diam.Message) *diam.Message { return testserver.Success(m, "two.test") })
	var peers []*diameter.Peer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, s := range []*testserver.Server{silent, second} {
		_, p := runPeer(ctx, s.Addr)
		peers = append(peers, p)
	}
	for _, p := range peers {
		waitFor(t, "peers open", 10*time.Second, p.Open)
	}
	c := &diameter.Client{Peers: peers, Timeout: 300 * time.Millisecond}
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	r := &cdr.Record{ID: "ss1-7", Source: "1001", Answer: at, Release: at.Add(time.Minute)}
	m := diameter.AccountingRequest(diameter.RecordStop, r, at.Add(time.Minute), 0,
		diameter.Identity{OriginHost: "ss1.test", OriginRealm: "test", DestinationRealm: "test"})
	a, err := c.Send(context.Background(), m)
	if err != nil || diameter.ResultCode(a) != 2001 {
		t.Fatalf("%v %v", a, err)
	}
	g1, g2 := silent.Got(), second.Got()
	if len(g1) != 1 || len(g2) != 1 {
		t.Fatalf("first got %d, second %d", len(g1), len(g2))
	}
	if g1[0].Header.CommandFlags&diam.RetransmittedFlag != 0 || g2[0].Header.CommandFlags&diam.RetransmittedFlag == 0 ||
		g1[0].Header.EndToEndID != g2[0].Header.EndToEndID {
		t.Fatalf("flags %08b then %08b, end-to-end %x then %x", g1[0].Header.CommandFlags, g2[0].Header.CommandFlags,
			g1[0].Header.EndToEndID, g2[0].Header.EndToEndID)
	}
	if sid := strAVP(t, g2[0], avp.SessionID); sid != "ss1.test;ss1-7" {
		t.Fatalf("Session-Id %q", sid)
	}
	if rt, _ := g2[0].FindAVP(avp.AccountingRecordType, 0); rt.Data.(datatype.Enumerated) != diameter.RecordStop {
		t.Fatalf("record type %v", rt)
	}
}

func runPeer(ctx context.Context, addr string) (chan struct{}, *diameter.Peer) {
	p := diameter.NewPeer(diameter.Config{Addr: addr, OriginHost: "ss1.test", OriginRealm: "test",
		AcctApps: []uint32{3}, Watchdog: time.Hour, ReconnectMin: 100 * time.Millisecond})
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	return done, p
}
