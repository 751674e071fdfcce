package stats

import (
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

func TestCounters(t *testing.T) {
	bus := events.New()
	c := &Counters{}
	c.Attach(bus)
	bus.Publish(&events.Event{Kind: events.CallAttempt})
	bus.Publish(&events.Event{Kind: events.CallAttempt})
	bus.Publish(&events.Event{Kind: events.CallAnswer})
	bus.Publish(&events.Event{Kind: events.CallRelease, Answered: true})
	bus.Publish(&events.Event{Kind: events.CallRelease})
	bus.Publish(&events.Event{Kind: events.Registered, Delta: 2})
	bus.Publish(&events.Event{Kind: events.Unregistered, Delta: -1})
	s := c.Snapshot()
	want := Snapshot{Attempts: 2, Answers: 1, Releases: 2, Failed: 1, Active: 0, Registrations: 1}
	if s != want {
		t.Fatalf("got %+v want %+v", s, want)
	}
}

// The windows count what happened in their span, not before; the peak
// stays at the most calls at once.
func TestRollingAndPeak(t *testing.T) {
	c := &Counters{}
	now := time.Now().Unix()
	for i := 0; i < 30; i++ {
		c.window.add(now-5, true) // 30 attempts 5 s ago
	}
	for i := 0; i < 10; i++ {
		c.window.add(now-600, true) // 10 attempts and answers 10 minutes ago
		c.window.add(now-600, false)
	}
	c.window.add(now-1800, true) // half an hour ago: in the hour only
	c.window.add(now-3700, true) // over an hour ago: nowhere
	r := c.Rolling(time.Unix(now, 0))
	if r.BusyHourAttempts != 41 || r.CallsPerSecond != 3 || r.ASR15 != 0.25 {
		t.Fatalf("%+v", r)
	}
	bus := events.New()
	c.Attach(bus)
	for i := 0; i < 3; i++ {
		bus.Publish(&events.Event{Kind: events.CallAttempt})
	}
	bus.Publish(&events.Event{Kind: events.CallRelease})
	bus.Publish(&events.Event{Kind: events.CallAttempt})
	if c.Peak.Load() != 3 || c.Active.Load() != 3 {
		t.Fatalf("peak %d active %d", c.Peak.Load(), c.Active.Load())
	}
}
