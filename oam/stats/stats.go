// Package stats keeps the traffic counters (R21) by subscribing to the
// call-control event bus.
package stats

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

// Counters are monotonically increasing except Active and Registrations.
type Counters struct {
	Attempts      atomic.Int64
	Answers       atomic.Int64
	Releases      atomic.Int64
	Failed        atomic.Int64 // released without answer
	Active        atomic.Int64 // calls between attempt and release
	Peak          atomic.Int64 // the most Active since the start
	Registrations atomic.Int64 // current bindings
	// Causes counts releases by their Q.850 cause (1..127; 0: none given).
	Causes [128]atomic.Int64

	window window

	mu     sync.Mutex
	states map[string]string // "aaa ADDR": up/down; "cdr-delivery": failing/ok
}

// State is the last state an event reported for key ("aaa " + a
// server's address, "cdr-delivery"); "" when none yet.
func (c *Counters) State(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.states[key]
}

func (c *Counters) setState(key, state string) {
	c.mu.Lock()
	if c.states == nil {
		c.states = map[string]string{}
	}
	c.states[key] = state
	c.mu.Unlock()
}

// window counts attempts and answers per second over the last hour, for
// the rolling figures (BHCA, ASR over 15 minutes, calls per second).
type window struct {
	mu       sync.Mutex
	sec      [3600]int64 // the unix second each slot holds
	attempts [3600]int32
	answers  [3600]int32
}

func (w *window) add(now int64, attempt bool) {
	i := now % 3600
	w.mu.Lock()
	if w.sec[i] != now {
		w.sec[i], w.attempts[i], w.answers[i] = now, 0, 0
	}
	if attempt {
		w.attempts[i]++
	} else {
		w.answers[i]++
	}
	w.mu.Unlock()
}

// sum adds up the last n seconds before now (now's own second excluded:
// it is not over yet).
func (w *window) sum(now int64, n int) (attempts, answers int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := now - int64(n); s < now; s++ {
		if i := ((s % 3600) + 3600) % 3600; w.sec[i] == s {
			attempts += int64(w.attempts[i])
			answers += int64(w.answers[i])
		}
	}
	return attempts, answers
}

// Rolling figures at now.
type Rolling struct {
	BusyHourAttempts int64   // attempts in the last 60 minutes
	ASR15            float64 // answers per attempt over the last 15 minutes, 0 to 1 (0 when none)
	ASR60            float64 // the same over the last 60 minutes
	CallsPerSecond   float64 // attempts per second over the last 10 seconds
}

// Rolling reads the windowed figures.
func (c *Counters) Rolling(now time.Time) Rolling {
	t := now.Unix()
	var r Rolling
	var an int64
	if r.BusyHourAttempts, an = c.window.sum(t, 3600); r.BusyHourAttempts > 0 {
		r.ASR60 = float64(an) / float64(r.BusyHourAttempts)
	}
	if at, an := c.window.sum(t, 900); at > 0 {
		r.ASR15 = float64(an) / float64(at)
	}
	at, _ := c.window.sum(t, 10)
	r.CallsPerSecond = float64(at) / 10
	return r
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
		for a := c.Active.Add(1); ; {
			p := c.Peak.Load()
			if a <= p || c.Peak.CompareAndSwap(p, a) {
				break
			}
		}
		c.window.add(time.Now().Unix(), true)
	case events.CallAnswer:
		c.Answers.Add(1)
		c.window.add(time.Now().Unix(), false)
	case events.CallRelease:
		c.Releases.Add(1)
		c.Active.Add(-1)
		if !e.Answered {
			c.Failed.Add(1)
		}
		c.Causes[min(max(e.Q850, 0), 127)].Add(1)
	case events.Registered, events.Unregistered:
		c.Registrations.Add(int64(e.Delta))
	case events.AAAServer:
		c.setState("aaa "+e.Source, e.State)
	case events.CDRDelivery:
		c.setState("cdr-delivery", e.State)
	}
}

// Snapshot reads all counters.
func (c *Counters) Snapshot() Snapshot {
	return Snapshot{
		Attempts: c.Attempts.Load(), Answers: c.Answers.Load(), Releases: c.Releases.Load(),
		Failed: c.Failed.Load(), Active: c.Active.Load(), Registrations: c.Registrations.Load(),
	}
}
