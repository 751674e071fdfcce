// Package stats keeps the traffic counters (R21) by subscribing to the
// call-control event bus.
package stats

import (
	"sync/atomic"

	"github.com/softswitch/softswitch/core/events"
)

// Counters are monotonically increasing except Active and Registrations.
type Counters struct {
	Attempts      atomic.Int64
	Answers       atomic.Int64
	Releases      atomic.Int64
	Failed        atomic.Int64 // released without answer
	Active        atomic.Int64 // calls between attempt and release
	Registrations atomic.Int64 // current bindings
}

// Snapshot is a copy of the counters at one instant.
type Snapshot struct {
	Attempts, Answers, Releases, Failed, Active, Registrations int64
}

// Attach subscribes c to bus.
func (c *Counters) Attach(bus *events.Bus) { bus.Subscribe(c.handle) }

func (c *Counters) handle(e *events.Event) {
	switch e.Kind {
	case events.CallAttempt:
		c.Attempts.Add(1)
		c.Active.Add(1)
	case events.CallAnswer:
		c.Answers.Add(1)
	case events.CallRelease:
		c.Releases.Add(1)
		c.Active.Add(-1)
		if !e.Answered {
			c.Failed.Add(1)
		}
	case events.Registered, events.Unregistered:
		c.Registrations.Add(int64(e.Delta))
	}
}

// Snapshot reads all counters.
func (c *Counters) Snapshot() Snapshot {
	return Snapshot{
		Attempts: c.Attempts.Load(), Answers: c.Answers.Load(), Releases: c.Releases.Load(),
		Failed: c.Failed.Load(), Active: c.Active.Load(), Registrations: c.Registrations.Load(),
	}
}
