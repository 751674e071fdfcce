// Package overload is the switch's overload control (R22, RFC 6357):
// it measures its own load and, above what the switch can carry, has new
// calls refused early and cheaply (503 with a randomised Retry-After) so
// that the calls it admits complete, instead of letting every call slow
// down until retransmissions swamp it.
//
// The load is sampled every Interval: the processor time used over what
// the process may use, the fill of the queues in front of the SIP stack
// (the socket's kernel receive queue, the workers' queues), the least
// age of the messages served (a standing queue) and the share served
// later than AgeTarget. A standing queue with the processor over its
// target, a queue near its limit or most messages late start an
// episode; a second with the processor under its target ends it. While
// it lasts the SIP stack refuses a new call from its bytes once the new
// calls waiting in its queues make a standing queue (core/sipudp,
// QueueShed: 64 of them, the last one taken having waited 50 ms): the
// switch takes new calls as fast as it serves them. The admission is
// clocked by the service itself, not set from a model of the processor:
// what a call costs here moves by half between two runs of the same
// binary (docs/performance.md), and a share set from it refused calls
// the switch could carry, or let in more than it could. The share the
// queue refused is what the controller reports (RFC 7339's "loss" for
// clients that offer overload control, the events' level) and the share
// refused of new calls that reach the switch by other transports. A cap
// on concurrent calls (max_calls) refuses every new call above it.
//
// Only new calls (INVITE without a To tag) are refused: in-dialog
// requests, ACK, CANCEL, BYE, REGISTER and OPTIONS keepalives keep
// flowing, so that calls in progress end well and peers do not mark the
// switch down.
package overload

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

// Config sets the targets.
type Config struct {
	MaxCalls      int           // concurrent calls at most; 0: no cap
	QueueTarget   float64       // receive queue fill (0..1) that starts an episode; a quarter of it counts as a standing queue
	AgeTarget     time.Duration // message age above which a message counts as late; a tenth of it, the least age of a standing queue
	CPUTarget     float64       // processor share (0..1): a standing queue over it starts an episode, a second under it ends one
	RetryAfterMin int           // seconds; Retry-After is drawn from [min, max]
	RetryAfterMax int
	Interval      time.Duration // how often the load is sampled
}

// Sample is one measurement of the load.
type Sample struct {
	Queue  float64       // the fullest queue's fill, 0..1
	Late   float64       // share of the messages served later than AgeTarget, 0..1
	Delay  time.Duration // the least message age (read to served) in the interval: a standing queue
	Active int           // calls in progress
	CPU    float64       // share of the processors the process may use that it used, 0..1
}

// maxLoss limits the share drawn for calls by other transports (per
// mille): a few new calls always go through.
const maxLoss = 950

// Controller says when the switch is in an overload episode and what
// share of new calls it refuses.
type Controller struct {
	cfg     Config
	active  func() int
	bus     *events.Bus
	on      atomic.Bool   // an episode: new calls are held to a short queue
	share   atomic.Uint32 // per mille of new calls refused lately (the span), in an episode
	loss    atomic.Uint32 // per mille told to clients (RFC 7339 loss)
	capped  atomic.Bool   // at max_calls
	refused atomic.Int64
	offered atomic.Int64 // new calls that arrived (Offer)
	seq     atomic.Int64 // RFC 7339 oc-seq: rises with every change of loss

	// Touched by Update only (one goroutine).
	hot, hard int // samples in a row with a standing queue; with a hard signal
	quiet     int // samples in a row of an episode without refusals nor a standing queue
	cause     string
	told      float64 // the share refused, smoothed, 0..1
	over      bool    // an episode or max_calls: the events' state
	capQuiet  int     // samples since the last of either
	lastOff   int64   // offered and refused at the last sample
	lastRef   int64
	recent    span // the last half second's calls offered and refused, and processor share
	lastAt    time.Time
	clock     func() time.Time // time.Now; a test's own
}

// New returns a controller; active reports the calls in progress; bus
// (may be nil) gets Overload events.
func New(cfg Config, active func() int, bus *events.Bus) *Controller {
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.RetryAfterMin < 1 {
		cfg.RetryAfterMin = 1
	}
	if cfg.RetryAfterMax < cfg.RetryAfterMin {
		cfg.RetryAfterMax = cfg.RetryAfterMin
	}
	if active == nil {
		active = func() int { return 0 }
	}
	c := &Controller{cfg: cfg, active: active, bus: bus, clock: time.Now}
	c.seq.Store(time.Now().UnixMilli())
	return c
}

// Seq is RFC 7339's oc-seq: it grows whenever Loss changes, so that a
// client applies the newest value it heard of.
func (c *Controller) Seq() int64 { return c.seq.Load() }

// RefuseNew decides for one new call that came by a path with no queue
// of its own to clock it (TCP, TLS, or a UDP request read before the
// episode began): refused at max_calls and, in an episode, at the share
// the SIP stack's queue refuses. True means answer 503; it is counted.
func (c *Controller) RefuseNew() bool {
	if c.atCap() || c.on.Load() && rand.Uint32N(1000) < min(c.share.Load(), maxLoss) {
		c.refused.Add(1)
		return true
	}
	return false
}

// RefuseAtCap refuses (and counts) a new call at max_calls: the check
// for a call the SIP stack's queue admitted in an episode.
func (c *Controller) RefuseAtCap() bool {
	if c.atCap() {
		c.refused.Add(1)
		return true
	}
	return false
}

func (c *Controller) atCap() bool { return c.cfg.MaxCalls > 0 && c.active() >= c.cfg.MaxCalls }

// Offer counts a new call that arrived and reports whether it may be
// refused now (Shedding).
func (c *Controller) Offer() bool {
	c.offered.Add(1)
	return c.Shedding()
}

// Shedding reports whether new calls may be refused now: an episode, or
// at max_calls. An atomic load or two, for callers that would otherwise
// do work for every new call before asking.
func (c *Controller) Shedding() bool { return c.on.Load() || c.atCap() }

// CountRefused counts a new call refused for a reason of load (its
// queue held enough new calls, or it waited there too long).
func (c *Controller) CountRefused() { c.refused.Add(1) }

// RetryAfter is a Retry-After in seconds, drawn at random so that the
// refused callers do not all come back in the same second.
func (c *Controller) RetryAfter() int {
	return c.cfg.RetryAfterMin + rand.IntN(c.cfg.RetryAfterMax-c.cfg.RetryAfterMin+1)
}

// Loss is the percentage of their new calls clients should not send now
// (RFC 7339 "oc"; 0 outside an episode).
func (c *Controller) Loss() int { return int(c.loss.Load()+5) / 10 }

// Validity is how long a client may apply Loss (RFC 7339 "oc-validity"):
// a few sampling intervals in an episode; 0 (stop reducing) otherwise.
func (c *Controller) Validity() time.Duration {
	if !c.on.Load() {
		return 0
	}
	return 20 * c.cfg.Interval
}

// Refused is the number of new calls refused so far.
func (c *Controller) Refused() int64 { return c.refused.Load() }

// Overloaded reports whether an overload episode is in progress.
func (c *Controller) Overloaded() bool { return c.on.Load() || c.capped.Load() }

// Run samples the load every Interval with probe until ctx ends.
func (c *Controller) Run(ctx context.Context, probe func() Sample) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := probe()
			s.Active = c.active()
			c.Update(s)
		}
	}
}

// AgeTarget is the message age above which a message counts as late.
func (c *Controller) AgeTarget() time.Duration { return c.cfg.AgeTarget }

// delayTarget is the least message age in a sample above which a queue
// is said to stand (a tenth of AgeTarget: 20 ms by default). Bursts and
// a CPU quota's pauses delay some messages, not all.
func (c *Controller) delayTarget() time.Duration { return c.cfg.AgeTarget / 10 }

// Samples in a row that start an episode: a queue near its limit or most
// messages late (hard); a standing queue with the processor at its
// target (a collection cycle holds the queue for two at thousands of
// calls a second). A standing queue with the processor under its target
// is no overload of the switch (a handler waits on something): refusing
// calls would not help it.
const (
	hardSamples = 2
	busySamples = 3
)

// quietTime is how long an episode lasts past its last sample with the
// processor at its target over the last half second (or, without the processor's figure, its last
// refusal and standing queue). Not past its last refusal alone: the
// queue's bound refuses a burst (a quota's pause, a collection) at any
// load, and an episode held by those refusals outlived its load.
const quietTime = time.Second

// Update takes one sample: it starts and ends episodes and sets the
// shares refused and told.
func (c *Controller) Update(s Sample) {
	hard, cause := false, ""
	if c.cfg.QueueTarget > 0 && s.Queue >= c.cfg.QueueTarget {
		hard, cause = true, "receive queue"
	}
	if c.cfg.AgeTarget > 0 && s.Late >= 0.5 { // the median age is over the target
		hard, cause = true, "message age"
	}
	standing := c.cfg.AgeTarget > 0 && s.Delay >= c.delayTarget() ||
		c.cfg.QueueTarget > 0 && s.Queue >= c.cfg.QueueTarget/4
	// Without the processor's figure a standing queue is taken as the
	// processor's.
	busy := standing && (c.cfg.CPUTarget <= 0 || s.CPU >= c.cfg.CPUTarget)
	if cause == "" {
		cause = "processor"
	}
	if hard {
		c.hard++
	} else {
		c.hard = 0
	}
	if busy || hard {
		c.hot++
	} else {
		c.hot = 0
	}

	off, ref, now := c.offered.Load(), c.refused.Load(), c.clock()
	dt := c.cfg.Interval.Seconds()
	if !c.lastAt.IsZero() {
		// A starved sampler samples late: rates over the real interval.
		dt = max(dt/10, now.Sub(c.lastAt).Seconds())
	}
	c.lastAt = now
	offered, refusedRate, cpu := c.recent.add(float64(off-c.lastOff), float64(ref-c.lastRef), s.CPU, dt)
	c.lastOff, c.lastRef = off, ref

	capped := c.cfg.MaxCalls > 0 && s.Active >= c.cfg.MaxCalls
	c.capped.Store(capped)
	on := c.on.Load()
	if !on && (c.hard >= hardSamples || busy && c.hot >= busySamples) {
		on = true
		c.on.Store(true)
		c.quiet, c.cause = 0, cause
	}
	share := 0.0
	if offered > 0 {
		share = min(1, refusedRate/offered)
	}
	ended := false
	if on {
		// Quiet: the processor had room over the span, or (without its
		// figure) nothing stands in the queues and (almost) no new call
		// was refused in the span. The span's share, not the sample's:
		// under a quota a process at half its budget reads 100 % in the
		// samples where it used its period's quota, and 0 in the next.
		if !hard && (c.cfg.CPUTarget > 0 && cpu < c.cfg.CPUTarget || c.cfg.CPUTarget <= 0 && !standing && share < 0.01) {
			c.quiet++
		} else {
			c.quiet = 0
		}
		if time.Duration(c.quiet)*c.cfg.Interval >= quietTime {
			on, ended = false, true
			c.on.Store(false)
		}
	}
	c.setShares(on, share)

	// Events: an episode or max_calls reached; the end of a cap alone
	// waits a quiet second too, so that calls ending and starting at
	// the cap do not raise an alarm each.
	switch ev := on || capped; {
	case ev && !c.over:
		c.over, c.capQuiet = true, 0
		if !on {
			c.cause = "max_calls"
		}
		c.publish("start", c.cause)
	case ev:
		c.capQuiet = 0
	case c.over:
		if c.capQuiet++; ended || time.Duration(c.capQuiet)*c.cfg.Interval >= quietTime {
			c.over = false
			c.publish("end", "")
		}
	}
}

// setShares sets the share refused (for RefuseNew) and the loss told to
// clients: the share refused, smoothed (half a sample's change), at
// least 1 % in an episode. Clients that honour it send less, the switch
// then refuses less and tells less: the share settles where the
// switch's queue still refuses a little.
func (c *Controller) setShares(on bool, share float64) {
	var told uint32
	if on {
		c.share.Store(uint32(share * 1000))
		c.told += 0.5 * (share - c.told)
		told = uint32(min(maxLoss/1000.0, max(0.01, c.told)) * 1000)
	} else {
		c.share.Store(0)
		c.told = 0
	}
	if old := c.loss.Swap(told); old != told {
		c.seq.Store(max(c.seq.Load()+1, time.Now().UnixMilli()))
	}
}

// span is the calls offered and refused over the last spanSamples
// samples: a process starved of its processor for a sample reads nothing
// in it and a burst in the next.
type span struct {
	calls, refused, busy, dt [spanSamples]float64 // per sample: calls offered, refused, processor share x seconds, seconds
	at                       int
}

const spanSamples = 5

// add records a sample (n calls offered, r refused, processor share cpu,
// over dt seconds) and returns the offered and refused rates and the
// processor share over the span.
func (s *span) add(n, r, cpu, dt float64) (rate, refused, share float64) {
	s.calls[s.at], s.refused[s.at], s.busy[s.at], s.dt[s.at] = n, r, cpu*dt, dt
	s.at = (s.at + 1) % spanSamples
	var calls, refs, busy, secs float64
	for i := range spanSamples {
		calls += s.calls[i]
		refs += s.refused[i]
		busy += s.busy[i]
		secs += s.dt[i]
	}
	if secs <= 0 {
		return 0, 0, 0
	}
	return calls / secs, refs / secs, busy / secs
}

func (c *Controller) publish(state, cause string) {
	if c.bus == nil {
		return
	}
	c.bus.Publish(&events.Event{Kind: events.Overload, State: state, Cause: cause,
		Level: c.Loss(), Status: 503})
}
