// Package alarm turns call control's events into alarms: raised with a
// severity, kept in the active list until cleared, remembered in a
// history, and handed to whoever notifies (SNMP traps, the CLI). It
// subscribes to the event bus like billing and statistics do.
package alarm

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/safe"
)

// Severity as ITU-T X.733 ranks it.
type Severity int

// Severities; Cleared only in the notice that clears an alarm.
const (
	Critical Severity = iota + 1
	Major
	Minor
	Warning
	Cleared
)

func (s Severity) String() string {
	return [...]string{"?", "critical", "major", "minor", "warning", "cleared"}[min(int(s), 5)]
}

// Type is what an alarm is about; each has its raise and its clear.
type Type string

// Alarm types (docs/snmp.md lists them with their notifications).
const (
	GatewayDown     Type = "gateway-down"
	TrunkRegLost    Type = "trunk-registration-lost"
	AAAServerDown   Type = "aaa-server-down"
	CDRDelivery     Type = "cdr-delivery-failed"
	DiskThreshold   Type = "disk-threshold"
	Overload        Type = "overload"
	AuthBan         Type = "auth-ban"
	CDRSpoolFailing Type = "cdr-spool-failing"
)

// Alarm is one raised alarm.
type Alarm struct {
	ID       uint32 // unique since the start, from 1
	Type     Type
	Severity Severity
	Resource string // a gateway's name, a server's address, a source
	Text     string
	Raised   time.Time
	Cleared  time.Time // zero while active
}

// Notice is a raise or a clear, as notified.
type Notice struct {
	Alarm
	Clear bool
}

// Manager keeps the alarms. Events come in on the bus (never blocking it:
// a bounded queue, drained by Run); notices go out to Notify.
type Manager struct {
	Notify func(Notice) // called on Run's goroutine, one at a time
	queue  chan *events.Event
	lost   atomic.Int64

	mu      sync.Mutex
	next    uint32
	active  map[key]*Alarm
	history []Alarm // the last HistoryLen ended or raised, oldest first
}

// HistoryLen bounds the alarm history.
const HistoryLen = 500

type key struct {
	t        Type
	resource string
}

// New makes a manager; Attach it to the bus and Run it.
func New() *Manager {
	return &Manager{queue: make(chan *events.Event, 1024), active: map[key]*Alarm{}}
}

// Attach subscribes m to the bus.
func (m *Manager) Attach(bus *events.Bus) {
	bus.Subscribe(func(e *events.Event) {
		if _, _, _, ok := classify(e); !ok {
			return
		}
		select {
		case m.queue <- e:
		default: // a storm of changes: the queue is full; counted
			m.lost.Add(1)
		}
	})
}

// Lost is how many events were dropped for a full queue.
func (m *Manager) Lost() int64 { return m.lost.Load() }

// Run handles queued events until stop closes.
func (m *Manager) Run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case e := <-m.queue:
			safe.Func("alarm event", func() { m.handle(e) })()
		}
	}
}

// kinds says which events raise and clear which alarm: the State that
// raises, the States that clear.
var kinds = map[events.Kind]struct {
	t      Type
	sev    Severity
	raise  string
	clears []string
}{
	events.GatewayState:      {GatewayDown, Major, "down", []string{"up", "locked"}},
	events.TrunkRegistration: {TrunkRegLost, Major, "failed", []string{"registered"}},
	events.AAAServer:         {AAAServerDown, Major, "down", []string{"up", "removed"}},
	events.CDRDelivery:       {CDRDelivery, Major, "failing", []string{"ok"}},
	events.CDRSpool:          {CDRSpoolFailing, Critical, "failing", []string{"ok"}},
	events.CDRDisk:           {DiskThreshold, Critical, "high", []string{"ok"}},
	events.Overload:          {Overload, Major, "start", []string{"end"}},
	events.AuthBan:           {AuthBan, Warning, "banned", []string{"unbanned"}},
}

// classify maps an event to an alarm: its type, severity, and whether it
// raises (else clears). ok false: not an alarm's event.
func classify(e *events.Event) (t Type, sev Severity, raise bool, ok bool) {
	k, found := kinds[e.Kind]
	if !found || e.State != k.raise && !slices.Contains(k.clears, e.State) {
		return "", 0, false, false
	}
	return k.t, k.sev, e.State == k.raise, true
}

func resource(e *events.Event) string {
	switch e.Kind {
	case events.GatewayState, events.TrunkRegistration:
		return e.Gateway
	case events.AAAServer:
		return e.Cause + " " + e.Source
	case events.AuthBan:
		if e.AOR != "" && e.Source != "" {
			return e.AOR + " from " + e.Source
		}
		return e.AOR + e.Source
	case events.CDRDelivery, events.CDRSpool, events.CDRDisk:
		return "cdr"
	}
	return "switch"
}

func text(e *events.Event, t Type, raise bool) string {
	if !raise {
		return string(t) + " cleared"
	}
	switch e.Kind {
	case events.GatewayState:
		return "the gateway does not answer its OPTIONS probes"
	case events.TrunkRegistration:
		return "the registration was refused or not answered"
	case events.AAAServer:
		return "the server does not answer"
	case events.CDRDisk:
		return "the CDR file system is fuller than its threshold"
	case events.AuthBan:
		return "banned for failed authentications"
	}
	if e.Cause != "" {
		return e.Cause
	}
	return string(t)
}

func (m *Manager) handle(e *events.Event) {
	t, sev, raise, _ := classify(e)
	k := key{t, resource(e)}
	now := e.Time
	if now.IsZero() {
		now = time.Now()
	}
	var n *Notice
	m.mu.Lock()
	a := m.active[k]
	switch {
	case raise && a == nil:
		m.next++
		a = &Alarm{ID: m.next, Type: t, Severity: sev, Resource: k.resource, Text: text(e, t, true), Raised: now}
		m.active[k] = a
		m.remember(*a)
		n = &Notice{Alarm: *a}
	case !raise && a != nil:
		delete(m.active, k)
		a.Cleared = now
		m.remember(*a)
		c := *a
		c.Severity, c.Text = Cleared, text(e, t, false)
		n = &Notice{Alarm: c, Clear: true}
	}
	m.mu.Unlock()
	if n != nil && m.Notify != nil {
		m.Notify(*n)
	}
}

// remember appends to the history. Caller holds m.mu.
func (m *Manager) remember(a Alarm) {
	if len(m.history) == HistoryLen {
		copy(m.history, m.history[1:])
		m.history = m.history[:HistoryLen-1]
	}
	m.history = append(m.history, a)
}

// Active lists the active alarms by ID.
func (m *Manager) Active() []Alarm {
	m.mu.Lock()
	out := make([]Alarm, 0, len(m.active))
	for _, a := range m.active {
		out = append(out, *a)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// History lists raises and clears, oldest first.
func (m *Manager) History() []Alarm {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Alarm(nil), m.history...)
}

// Clear ends an active alarm by hand (the operator's clear); false when
// there is no such alarm.
func (m *Manager) Clear(id uint32) bool {
	var n *Notice
	m.mu.Lock()
	for k, a := range m.active {
		if a.ID == id {
			delete(m.active, k)
			a.Cleared = time.Now()
			m.remember(*a)
			c := *a
			c.Severity, c.Text = Cleared, "cleared by the operator"
			n = &Notice{Alarm: c, Clear: true}
		}
	}
	m.mu.Unlock()
	if n != nil && m.Notify != nil {
		m.Notify(*n)
	}
	return n != nil
}
