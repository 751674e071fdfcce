package diameter_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/fiorix/go-diameter/v4/diam/dict"

	"github.com/softswitch/softswitch/aaa/diameter"
	"github.com/softswitch/softswitch/aaa/diameter/freediameter"
)

// syncBuf is a log destination safe for the peer's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type states struct {
	mu  sync.Mutex
	got []bool
}

func (s *states) on(_ string, open bool) { s.mu.Lock(); s.got = append(s.got, open); s.mu.Unlock() }
func (s *states) count(open bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.got {
		if o == open {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
	}
}

func startPeer(t *testing.T, addr string, watchdog time.Duration) (*diameter.Peer, *states, *syncBuf, context.CancelFunc, chan struct{}) {
	st, logs := &states{}, &syncBuf{}
	p := diameter.NewPeer(diameter.Config{Addr: addr, OriginHost: "ss1.test", OriginRealm: "test",
		AuthApps: []uint32{4}, AcctApps: []uint32{3}, Watchdog: watchdog, ReconnectMin: 200 * time.Millisecond,
		ReconnectMax: time.Second, Log: slog.New(slog.NewTextHandler(logs, nil)), OnState: st.on})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	return p, st, logs, cancel, done
}

// Capabilities exchange, watchdog, a request answered (freeDiameter
// routes no credit control: 3002, with its E bit), the peer killed and
// back (reconnect), the peer's own DPR at its stop answered, and our DPR
// at ours.
func TestPeerWithFreeDiameter(t *testing.T) {
	fd := freediameter.Start(t)
	p, st, logs, cancel, done := startPeer(t, fd.Addr, 500*time.Millisecond)
	defer cancel()
	waitFor(t, "the peer open", 10*time.Second, p.Open)
	if !fd.WaitLog(10*time.Second, "STATE_OPEN", "ss1.test") {
		t.Fatalf("freeDiameter did not open ss1.test:\n%s", fd.Log())
	}
	time.Sleep(2 * time.Second) // four watchdog rounds
	if st.count(false) != 0 || !p.Open() {
		t.Fatalf("the connection did not survive the watchdog: %v\n%s", st.got, logs)
	}

	ccr := diam.NewRequest(diam.CreditControl, 4, dict.Default)
	ccr.NewAVP(avp.SessionID, avp.Mbit, 0, datatype.UTF8String("ss1.test;1;1"))
	ccr.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity("ss1.test"))
	ccr.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity("test"))
	ccr.NewAVP(avp.DestinationRealm, avp.Mbit, 0, datatype.DiameterIdentity("test"))
	ccr.NewAVP(avp.AuthApplicationID, avp.Mbit, 0, datatype.Unsigned32(4))
	ccr.NewAVP(avp.CCRequestType, avp.Mbit, 0, datatype.Enumerated(1))
	ccr.NewAVP(avp.CCRequestNumber, avp.Mbit, 0, datatype.Unsigned32(0))
	ctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
	ans, err := p.Send(ctx, ccr)
	c2()
	if err != nil {
		t.Fatalf("CCR: %v", err)
	}
	rc, err := ans.FindAVP(avp.ResultCode, 0)
	if err != nil || rc.Data.(datatype.Unsigned32) != 3002 || ans.Header.CommandFlags&diam.ErrorFlag == 0 {
		t.Fatalf("CCA %v (%v)", ans, err)
	}

	fd.Kill()
	waitFor(t, "the loss seen", 10*time.Second, func() bool { return st.count(false) >= 1 })
	if _, err := p.Send(context.Background(), ccr); err == nil {
		t.Fatal("a request went through a peer that is down")
	}
	fd.Restart()
	waitFor(t, "the peer open again", 15*time.Second, func() bool { return st.count(true) >= 2 && p.Open() })

	// freeDiameter stops: it sends DPR, we answer, it goes at once.
	fd.Stop()
	if !strings.Contains(logs.String(), "said goodbye (DPR)") {
		t.Fatalf("no DPR from the stopping peer:\n%s\n%s", logs, fd.Log())
	}
	fd.Restart()
	waitFor(t, "the peer open after its restart", 15*time.Second, func() bool { return st.count(true) >= 3 && p.Open() })
	if !fd.WaitLog(15*time.Second, "-> 'STATE_OPEN'", "ss1.test") {
		t.Fatalf("freeDiameter did not reopen ss1.test:\n%s", fd.Log())
	}

	// Our stop: DPR, its DPA.
	cancel()
	<-done
	if strings.Contains(logs.String(), "no DPA") {
		t.Fatalf("our DPR got no DPA:\n%s\n%s", logs, fd.Log())
	}
	if !fd.WaitLog(5*time.Second, "Peer 'ss1.test' sent a DPR with cause: REBOOTING") {
		t.Fatalf("freeDiameter saw no DPR from us:\n%s", fd.Log())
	}
}
