// Package overload is the switch's overload control (R22, RFC 6357):
// it measures its own load and, above what the switch can carry, refuses
// a share of new calls early and cheaply (503 with a randomised
// Retry-After) so that the calls it admits complete, instead of letting
// every call slow down until retransmissions swamp it.
//
// The load is sampled every Interval: the fill of the queues in front of
// the SIP stack (the socket's kernel receive queue, the workers' queues)
// and the share of messages that waited longer than AgeTarget between
// being read and being served. A queue over its target, or most messages
// late (the median age over its target: single pauses do not count),
// raises the share of new calls refused (RFC 7339's "loss" algorithm, as
// the server); well below both it falls again. A cap on concurrent calls
// (max_calls) refuses every new call above it.
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
	QueueTarget   float64       // receive queue fill (0..1) above which new calls are shed
	AgeTarget     time.Duration // message age above which a message counts as late
	RetryAfterMin int           // seconds; Retry-After is drawn from [min, max]
	RetryAfterMax int
	Interval      time.Duration // how often the load is sampled
}

// Sample is one measurement of the load.
type Sample struct {
	Queue  float64 // the fullest queue's fill, 0..1
	Late   float64 // share of the messages served later than AgeTarget, 0..1
	Active int     // calls in progress
}

// Limits of the loss share, per mille.
const (
	maxLoss  = 950 // a few new calls always go through: the load must be measured with them
	stepDown = 10  // per interval once the load is below target (1 % per 100 ms)
)

// Controller holds the share of new calls refused.
type Controller struct {
	cfg     Config
	active  func() int
	bus     *events.Bus
	loss    atomic.Uint32 // per mille of new calls refused
	capped  atomic.Bool   // at max_calls
	refused atomic.Int64
	seq     atomic.Int64 // RFC 7339 oc-seq: rises with every change of the loss share

	// Touched by Update only (one goroutine).
	hot   int // samples in a row over target
	over  bool
	quiet int // intervals in a row without load, to end an episode
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
	c := &Controller{cfg: cfg, active: active, bus: bus}
	c.seq.Store(time.Now().UnixMilli())
	return c
}

// Seq is RFC 7339's oc-seq: it grows whenever Loss changes, so that a
// client applies the newest value it heard of.
func (c *Controller) Seq() int64 { return c.seq.Load() }

// RefuseNew decides for one new call: true means answer 503. It costs an
// atomic load or two and, while shedding, one random draw.
func (c *Controller) RefuseNew() bool {
	if c.cfg.MaxCalls > 0 && c.active() >= c.cfg.MaxCalls || c.shed() {
		c.refused.Add(1)
		return true
	}
	return false
}

// Shedding reports whether RefuseNew may say yes now: two atomic loads,
// for callers that would otherwise do work for every new call before
// asking.
func (c *Controller) Shedding() bool {
	return c.loss.Load() > 0 || c.cfg.MaxCalls > 0 && c.active() >= c.cfg.MaxCalls
}

func (c *Controller) shed() bool {
	l := c.loss.Load()
	return l > 0 && rand.Uint32N(1000) < l
}

// CountRefused counts a new call refused for another reason of load (it
// waited too long in its queue).
func (c *Controller) CountRefused() { c.refused.Add(1) }

// RetryAfter is a Retry-After in seconds, drawn at random so that the
// refused callers do not all come back in the same second.
func (c *Controller) RetryAfter() int {
	return c.cfg.RetryAfterMin + rand.IntN(c.cfg.RetryAfterMax-c.cfg.RetryAfterMin+1)
}

// Loss is the percentage of new calls refused now (RFC 7339 "oc").
func (c *Controller) Loss() int { return int(c.loss.Load()+5) / 10 }

// Validity is how long a client may apply Loss (RFC 7339 "oc-validity"):
// a few sampling intervals while shedding; 0 (stop reducing) otherwise.
func (c *Controller) Validity() time.Duration {
	if c.loss.Load() == 0 {
		return 0
	}
	return 20 * c.cfg.Interval
}

// Refused is the number of new calls refused so far.
func (c *Controller) Refused() int64 { return c.refused.Load() }

// Overloaded reports whether an overload episode is in progress.
func (c *Controller) Overloaded() bool { return c.loss.Load() > 0 || c.capped.Load() }

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

// Update takes one sample: the loss share rises in proportion to how far
// the load is over its target, holds while it is near, and falls slowly
// once it is well below (so that the switch does not swing between
// refusing everything and nothing).
func (c *Controller) Update(s Sample) {
	ratio, cause := 0.0, ""
	if c.cfg.QueueTarget > 0 {
		ratio, cause = s.Queue/c.cfg.QueueTarget, "receive queue"
	}
	if c.cfg.AgeTarget > 0 {
		if r := s.Late / 0.5; r > ratio { // most messages late: the median age is over the target
			ratio, cause = r, "message age"
		}
	}
	l := c.loss.Load()
	if ratio >= 1 {
		c.hot++
	} else {
		c.hot = 0
	}
	switch {
	case ratio >= 1 && c.hot < 2 && l == 0:
		// One sample over target (a collection cycle, a burst) is no
		// overload yet; two in a row are.
	case ratio >= 1:
		l += 20 + uint32(min(ratio-1, 3)*30)
		if l > maxLoss {
			l = maxLoss
		}
	case ratio < 0.8:
		l -= min(l, stepDown)
	}
	if old := c.loss.Swap(l); old != l {
		c.seq.Store(max(c.seq.Load()+1, time.Now().UnixMilli()))
	}
	capped := c.cfg.MaxCalls > 0 && s.Active >= c.cfg.MaxCalls
	c.capped.Store(capped)
	if capped && ratio < 1 {
		cause = "max_calls"
	}

	busy := l > 0 || capped
	switch {
	case busy && !c.over:
		c.over, c.quiet = true, 0
		c.publish("start", cause)
	case busy:
		c.quiet = 0
	case c.over:
		// An episode ends after a second without shedding.
		if c.quiet++; time.Duration(c.quiet)*c.cfg.Interval >= time.Second {
			c.over = false
			c.publish("end", "")
		}
	}
}

func (c *Controller) publish(state, cause string) {
	if c.bus == nil {
		return
	}
	c.bus.Publish(&events.Event{Kind: events.Overload, State: state, Cause: cause,
		Level: c.Loss(), Status: 503})
}
