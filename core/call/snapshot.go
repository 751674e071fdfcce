package call

import (
	"sort"
	"time"
)

// Info is what an operator sees of a call in progress.
type Info struct {
	CallID     string // the caller leg's
	Calling    string
	Called     string // as received
	CalledSent string // after number analysis
	Account    string
	Trunk      string // the trusted peer it came from; "" for a subscriber
	Route      string
	Gateway    string // the answering fork's gateway, or the last one tried
	State      string // setup, answered
	Setup      time.Time
	Answered   time.Time // zero while not answered
	Forks      int       // B legs tried or ringing
}

// Snapshot lists up to max calls in progress, oldest first, and how many
// there are. Each call's lock is held only to copy its fields; it is for
// the command line, not the message path.
func (m *Manager) Snapshot(max int) ([]Info, int) {
	calls := m.tab.calls()
	out := make([]Info, 0, min(len(calls), max))
	for _, c := range calls {
		c.mu.Lock()
		if c.st == ended {
			c.mu.Unlock()
			continue
		}
		in := Info{CallID: c.a.callID, Calling: c.calling, Called: c.called, CalledSent: c.calledSent, Account: c.account,
			Trunk: c.trunk, Route: c.route, Setup: c.setup, Answered: c.answered, Forks: len(c.forks), State: "setup"}
		if c.st == confirmed {
			in.State = "answered"
		}
		switch {
		case c.b != nil:
			in.Gateway = c.b.gateway
		case len(c.forks) > 0:
			in.Gateway = c.forks[len(c.forks)-1].gateway
		}
		c.mu.Unlock()
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Setup.Before(out[j].Setup) })
	n := len(out)
	if len(out) > max {
		out = out[:max]
	}
	return out, n
}
