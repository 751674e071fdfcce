package gateway

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/safe"

	"github.com/softswitch/softswitch/core/events"
)

// PingFunc sends one SIP OPTIONS to a gateway and returns the final
// status, or an error when nothing came back in time.
type PingFunc func(ctx context.Context, g *Gateway) (int, error)

// Prober keeps probed gateways' state: DownAfter failed probes in a row
// mark a gateway down, UpAfter answered ones mark it up again. Any final
// answer but 503 counts as alive (a gateway may well refuse OPTIONS with
// 405 and still take calls). A standby server of an HA pair must not
// probe: SetEnabled(false) stops it without losing the state.
type Prober struct {
	Set     func() *Set // the current set
	Ping    PingFunc
	Bus     *events.Bus
	Log     *slog.Logger
	Tick    time.Duration // scheduling granularity; 100ms by default
	enabled atomic.Bool

	mu       sync.Mutex
	next     map[string]time.Time
	inFlight map[string]bool
}

// SetEnabled switches probing on or off.
func (p *Prober) SetEnabled(on bool) { p.enabled.Store(on) }

// Enabled reports whether probing is on.
func (p *Prober) Enabled() bool { return p.enabled.Load() }

// Run probes until ctx ends.
func (p *Prober) Run(ctx context.Context) {
	tick := p.Tick
	if tick == 0 {
		tick = 100 * time.Millisecond
	}
	p.next = map[string]time.Time{}
	p.inFlight = map[string]bool{}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if !p.enabled.Load() {
				continue
			}
			set := p.Set()
			if set == nil {
				continue
			}
			for _, g := range set.Gateways() {
				if !g.spec.Probe || g.spec.Locked {
					continue
				}
				p.mu.Lock()
				due := !p.inFlight[g.Name] && !now.Before(p.next[g.Name])
				if due {
					p.inFlight[g.Name] = true
					p.next[g.Name] = now.Add(g.probeEvery)
				}
				p.mu.Unlock()
				if due {
					safe.Go("gateway probe", func() { p.probe(ctx, g) })
				}
			}
		}
	}
}

func (p *Prober) probe(ctx context.Context, g *Gateway) {
	defer func() {
		p.mu.Lock()
		delete(p.inFlight, g.Name)
		p.mu.Unlock()
	}()
	// Wait at most one interval (and never more than 5 s) for the answer.
	wait := min(g.probeEvery, 5*time.Second)
	pctx, cancel := context.WithTimeout(ctx, wait)
	status, err := p.Ping(pctx, g)
	cancel()
	if ctx.Err() != nil {
		return
	}
	p.Record(g, err == nil && status >= 200 && status != 503)
}

// Record counts one probe result and changes the state when a threshold
// is reached. Exported for the CLI's "probe now" and for tests.
func (p *Prober) Record(g *Gateway, ok bool) {
	l := g.live
	if ok {
		l.failRun.Store(0)
		if n := l.okRun.Add(1); l.down.Load() && int(n) >= g.spec.UpAfter {
			if l.down.CompareAndSwap(true, false) {
				p.changed(g, Up)
			}
		}
		return
	}
	l.okRun.Store(0)
	if n := l.failRun.Add(1); !l.down.Load() && int(n) >= g.spec.DownAfter {
		if l.down.CompareAndSwap(false, true) {
			p.changed(g, Down)
		}
	}
}

// Adopt sets g down or up as the active node of the pair found it
// (replication, on the standby, which does not probe): announced like a
// probe's finding, so alarms and statistics follow; the probe runs start
// again from it.
func (p *Prober) Adopt(g *Gateway, down bool) {
	l := g.live
	l.okRun.Store(0)
	l.failRun.Store(0)
	if l.down.CompareAndSwap(!down, down) {
		state := Up
		if down {
			state = Down
		}
		p.changed(g, state)
	}
}

func (p *Prober) changed(g *Gateway, s State) {
	if p.Log != nil {
		p.Log.Warn("gateway state", "gateway", g.Name, "state", s.String())
	}
	if p.Bus != nil {
		p.Bus.Publish(&events.Event{Kind: events.GatewayState, Gateway: g.Name, State: s.String()})
	}
}
