package stats

import (
	"testing"

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
