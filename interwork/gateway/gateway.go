// Package gateway holds the interworking gateways (R8-R10): gateway groups
// hunted by priority then weight, per-gateway channel and call-rate
// limits, in/out counters, the up/down/locked state that OPTIONS probing
// drives, and the routes that point at groups. The tables are compiled
// from provisioning data into an immutable Set; a new Set takes over the
// live state (channels in use, probe state, counters) of gateways that
// keep their name.
package gateway

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/numbering"
)

// State of a gateway.
type State int32

const (
	Up     State = iota // in service
	Down                // failed its probes
	Locked              // taken out of service by the operator
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	case Locked:
		return "locked"
	}
	return "?"
}

// live is the state of a gateway that outlives table reloads.
type live struct {
	down     atomic.Bool
	active   atomic.Int64 // channels in use
	in, out  atomic.Int64 // calls received from / sent to it
	rejected atomic.Int64 // attempts skipped for its limits
	answered atomic.Int64 // calls it answered
	failed   atomic.Int64 // calls it failed (its final answer, or none in time)
	lastFail atomic.Int32 // the SIP status of its last failure
	okRun    atomic.Int32 // probe results in a row
	failRun  atomic.Int32

	mu     sync.Mutex // the call-rate window
	second int64
	count  int

	// RFC 7339 overload control the gateway asked for: shed ocLoss per
	// cent of new calls to it until ocUntil (unix nanoseconds).
	ocMu    sync.Mutex
	ocLoss  atomic.Int32
	ocUntil atomic.Int64
	ocSeq   int64
}

// Gateway is one compiled gateway.
type Gateway struct {
	Name       string
	Host       string // IP or domain name
	Port       int    // 0: from DNS (SRV) or 5060
	Transport  string // udp, tcp, or "" (DNS decides, udp by default)
	IsName     bool   // Host needs DNS (RFC 3263)
	CalledOps  []numbering.Op
	CallingOps []numbering.Op
	spec       GatewaySpec
	probeEvery time.Duration
	live       *live
}

// Spec is the provisioning data of the gateway.
func (g *Gateway) Spec() GatewaySpec { return g.spec }

// State is the gateway's state now.
func (g *Gateway) State() State {
	switch {
	case g.spec.Locked:
		return Locked
	case g.live.down.Load():
		return Down
	}
	return Up
}

// RecordOutcome counts a call's final answer from the gateway (the switch
// makes one up, 408, when it gives the gateway up).
func (g *Gateway) RecordOutcome(status int) {
	if status >= 200 && status < 300 {
		g.live.answered.Add(1)
		return
	}
	g.live.failed.Add(1)
	g.live.lastFail.Store(int32(status))
}

// Outcomes: calls answered and failed by the gateway, and the SIP status
// of its last failure (0: none yet).
func (g *Gateway) Outcomes() (answered, failed int64, lastStatus int) {
	return g.live.answered.Load(), g.live.failed.Load(), int(g.live.lastFail.Load())
}

// Down tells whether the gateway failed its probes (whatever its lock).
func (g *Gateway) Down() bool { return g.live.down.Load() }

// Counters of a gateway.
type Counters struct {
	Active, In, Out, Rejected int64
}

// Counters now.
func (g *Gateway) Counters() Counters {
	return Counters{Active: g.live.active.Load(), In: g.live.in.Load(), Out: g.live.out.Load(), Rejected: g.live.rejected.Load()}
}

// CountIn records a call received from this gateway.
func (g *Gateway) CountIn() { g.live.in.Add(1) }

// Acquire takes a channel and a call-rate slot, or says no.
func (g *Gateway) Acquire(now time.Time) bool {
	l := g.live
	if max := int64(g.spec.MaxChannels); max > 0 {
		if l.active.Add(1) > max {
			l.active.Add(-1)
			l.rejected.Add(1)
			return false
		}
	} else {
		l.active.Add(1)
	}
	if max := g.spec.MaxCPS; max > 0 {
		sec := now.Unix()
		l.mu.Lock()
		if l.second != sec {
			l.second, l.count = sec, 0
		}
		ok := l.count < max
		if ok {
			l.count++
		}
		l.mu.Unlock()
		if !ok {
			l.active.Add(-1)
			l.rejected.Add(1)
			return false
		}
	}
	l.out.Add(1)
	return true
}

// Feedback takes the gateway's RFC 7339 overload control from a response:
// shed loss per cent of new calls to it for validity (0: stop). A value
// older (lower seq) than the one in force is ignored.
func (g *Gateway) Feedback(loss int, validity time.Duration, seq int64, now time.Time) {
	l := g.live
	l.ocMu.Lock()
	defer l.ocMu.Unlock()
	if seq < l.ocSeq && now.UnixNano() < l.ocUntil.Load() {
		return
	}
	l.ocSeq = seq
	loss = min(max(loss, 0), 100)
	if validity <= 0 || loss == 0 {
		l.ocLoss.Store(0)
		l.ocUntil.Store(0)
		return
	}
	l.ocLoss.Store(int32(loss))
	l.ocUntil.Store(now.Add(validity).UnixNano())
}

// Shed reports whether a new call is to skip this gateway for the
// overload control it asked for; skipped calls count as rejected.
func (g *Gateway) Shed(now time.Time) bool {
	l := g.live
	loss := l.ocLoss.Load()
	if loss == 0 || now.UnixNano() >= l.ocUntil.Load() {
		return false
	}
	if loss < 100 && rand.Int32N(100) >= loss {
		return false
	}
	l.rejected.Add(1)
	return true
}

// Release gives back a channel.
func (g *Gateway) Release() { g.live.active.Add(-1) }

// Addr is host:port when the gateway needs no DNS.
func (g *Gateway) Addr() string {
	p := g.Port
	if p == 0 {
		p = 5060
	}
	return net.JoinHostPort(g.Host, strconv.Itoa(p))
}

type member struct {
	gw       *Gateway
	priority int
	weight   int
}

// Group is a compiled gateway group.
type Group struct {
	Name          string
	members       []member // sorted by priority
	failover      map[int]bool
	InviteTimeout time.Duration
}

// Failover reports whether a final status from one gateway moves the
// call to the next: 503, 408 (our own timeout) and the listed codes.
func (g *Group) Failover(status int) bool {
	return status == 503 || status == 408 || g.failover[status]
}

// Route is a compiled route.
type Route struct {
	Name       string
	Group      *Group
	CalledOps  []numbering.Op
	CallingOps []numbering.Op
}

// order returns the group's gateways in hunting order: by priority, and
// among equal priorities a weighted random order (each next pick with
// probability weight / remaining weight). Gateways that are down or
// locked are left out.
func (g *Group) order(r *rand.Rand) []*Gateway {
	out := make([]*Gateway, 0, len(g.members))
	var tier []member
	flush := func() {
		for len(tier) > 0 {
			total := 0
			for _, m := range tier {
				total += m.weight
			}
			x := r.IntN(total)
			i := 0
			for ; x >= tier[i].weight; i++ {
				x -= tier[i].weight
			}
			out = append(out, tier[i].gw)
			tier = append(tier[:i], tier[i+1:]...)
		}
	}
	for i, m := range g.members {
		if i > 0 && m.priority != g.members[i-1].priority {
			flush()
		}
		if m.gw.State() == Up {
			tier = append(tier, m)
		}
	}
	flush()
	return out
}
