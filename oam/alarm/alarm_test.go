package alarm

import (
	"sync"
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

// Raise once, clear once, per type and resource; a repeated raise is not
// a second alarm; what clears nothing notifies nothing.
func TestRaiseAndClear(t *testing.T) {
	bus := events.New()
	m := New()
	var mu sync.Mutex
	var got []Notice
	m.Notify = func(n Notice) { mu.Lock(); got = append(got, n); mu.Unlock() }
	m.Attach(bus)
	stop := make(chan struct{})
	defer close(stop)
	go m.Run(stop)
	for _, e := range []*events.Event{
		{Kind: events.GatewayState, Gateway: "gw-a", State: "down"},
		{Kind: events.GatewayState, Gateway: "gw-a", State: "down"}, // again: the same alarm
		{Kind: events.GatewayState, Gateway: "gw-b", State: "up"},   // nothing to clear
		{Kind: events.AAAServer, Source: "192.0.2.9:1812", Cause: "radius", State: "down"},
		{Kind: events.CallAttempt}, // not an alarm's
		{Kind: events.GatewayState, Gateway: "gw-a", State: "up"},
	} {
		bus.Publish(e)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notices %+v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	notices := append([]Notice(nil), got...)
	mu.Unlock()
	got = notices
	if len(got) != 3 || got[0].Type != GatewayDown || got[0].Resource != "gw-a" || got[0].Severity != Major || got[0].Clear ||
		got[1].Type != AAAServerDown || got[1].Resource != "radius 192.0.2.9:1812" ||
		!got[2].Clear || got[2].ID != got[0].ID || got[2].Severity != Cleared {
		t.Fatalf("notices %+v", got)
	}
	act := m.Active()
	if len(act) != 1 || act[0].Type != AAAServerDown {
		t.Fatalf("active %+v", act)
	}
	if !m.Clear(act[0].ID) || len(m.Active()) != 0 || m.Clear(act[0].ID) {
		t.Fatal("a clear by hand")
	}
	if h := m.History(); len(h) != 4 {
		t.Fatalf("history %+v", h)
	}
}
