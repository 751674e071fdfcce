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
	bus.Publish(&events.Event{Kind: events.CallRelease, Answered: true, Q850: 16})
	bus.Publish(&events.Event{Kind: events.CallRelease, Q850: 17})
	bus.Publish(&events.Event{Kind: events.Registered, Delta: 2})
	bus.Publish(&events.Event{Kind: events.Unregistered, Delta: -1})
	s := c.Snapshot()
	want := Snapshot{Attempts: 2, Answers: 1, Releases: 2, Failed: 1, Active: 0, Registrations: 1}
	if s != want {
		t.Fatalf("got %+v want %+v", s, want)
	}
	if c.Causes[16].Load() != 1 || c.Causes[17].Load() != 1 || c.Causes[0].Load() != 0 {
		t.Fatal("releases by cause")
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
	if r.BusyHourAttempts != 41 || r.CallsPerSecond != 3 || r.ASR15 != 0.25 || r.ASR60 != 10.0/41 {
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

// States follow the events that report them.
func TestStates(t *testing.T) {
	bus := events.New()
	c := &Counters{}
	c.Attach(bus)
	if c.State("aaa 192.0.2.1:1812") != "" {
		t.Fatal("a state before any event")
	}
	bus.Publish(&events.Event{Kind: events.AAAServer, Source: "192.0.2.1:1812", State: "down"})
	bus.Publish(&events.Event{Kind: events.CDRDelivery, State: "failing"})
	bus.Publish(&events.Event{Kind: events.CDRDelivery, State: "ok"})
	if c.State("aaa 192.0.2.1:1812") != "down" || c.State("cdr-delivery") != "ok" {
		t.Fatalf("%q %q", c.State("aaa 192.0.2.1:1812"), c.State("cdr-delivery"))
	}
}

// The last complete minute's mean and 99th percentile; the minute in
// progress and older ones do not count.
func TestDelay(t *testing.T) {
	var d Delay
	base := time.Unix(1_000_000*60, 0)
	for i := 0; i < 990; i++ {
		d.Record(100*time.Microsecond, base)
	}
	for i := 0; i < 10; i++ {
		d.Record(50*time.Millisecond, base.Add(30*time.Second))
	}
	d.Record(time.Second, base.Add(time.Minute)) // the next minute: not yet reported
	mean, p99, n := d.LastMinute(base.Add(time.Minute + time.Second))
	if n != 1000 || mean != 599*time.Microsecond || p99 < 100*time.Microsecond || p99 > 125*time.Microsecond {
		t.Fatalf("mean %v p99 %v n %d", mean, p99, n)
	}
	for i := 0; i < 200; i++ { // with the 1 s one: 201, the slowest is the 1 %
		d.Record(50*time.Millisecond, base.Add(time.Minute))
	}
	if _, p99, _ := d.LastMinute(base.Add(2 * time.Minute)); p99 < 50*time.Millisecond || p99 > 63*time.Millisecond {
		t.Fatalf("p99 %v", p99)
	}
	if _, _, n := d.LastMinute(base.Add(5 * time.Minute)); n != 0 {
		t.Fatalf("an old minute reported: %d", n)
	}
	for us := uint64(0); us < 1<<20; us = us*5/4 + 1 {
		if i := delayBucket(us); bucketTop(i) <= us || (i > 0 && bucketTop(i-1) > us) {
			t.Fatalf("%d µs in bucket %d (top %d)", us, i, bucketTop(i))
		}
	}
}
