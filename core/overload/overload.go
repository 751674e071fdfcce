// Package overload is the switch's overload control (R22, RFC 6357):
// it measures its own load and, above what the switch can carry, refuses
// a share of new calls early and cheaply (503 with a randomised
// Retry-After) so that the calls it admits complete, instead of letting
// every call slow down until retransmissions swamp it.
//
// The load is sampled every Interval: the processor time used over what
// the process may use, the fill of the queues in front of the SIP stack
// (the socket's kernel receive queue, the workers' queues), the mean age
// of the messages served and the share served later than AgeTarget. The
// processor over its target while work waits, or a queue near its limit,
// or most messages late, start an episode; while it lasts the share of
// new calls refused (RFC 7339's "loss", as the server) follows the
// queues: raised while work waits, lowered while nothing does (Update).
// A cap on concurrent calls (max_calls) refuses every new call above it.
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
	CPUTarget     float64       // share (0..1) of the processor the switch may use above which, with work waiting, new calls are shed
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

// maxLoss limits the loss share (per mille): a few new calls always go
// through, the load must be measured with them.
const maxLoss = 950

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

// Offer counts a new call that arrived (the rate offered, which the
// control compares with the rate the processor can carry) and reports
// whether RefuseNew may say yes now.
func (c *Controller) Offer() bool {
	return c.Shedding()
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

// delayTarget is the least message age in a sample above which work is
// said to wait (a tenth of AgeTarget: 20 ms by default). Below it the
// switch keeps up, however busy its processor is.
func (c *Controller) delayTarget() time.Duration { return c.cfg.AgeTarget / 10 }

// Update takes one sample and sets the share of new calls admitted.
//
// An episode starts when the processor is over its target while work
// waits, for three samples in a row (a collection cycle takes that long
// at thousands of calls a second; a busy processor that keeps up is no
// overload), or when a queue is near its limit or most messages are late
// (a stall the processor's figure does not show), for two. While it
// lasts the share admitted follows the queue, AIMD-like: cut by 30 % on
// a hard signal and by 10 % while work waits (a standing queue: even the
// quickest message waited), raised by 3 % and a little while nothing
// waits (by 15 % with the processor well under its target). The processor's figure starts an episode but does not steer
// it: what a call costs is not linear in the call rate (at a low rate
// the process sleeps and wakes for every datagram, at a high one it
// reads them in batches; on a virtual machine a wake-up can cost more
// than the message), so a model of the processor learnt at one rate
// refused at twice the load most of what the switch could carry, while
// the queue says directly whether the switch keeps up. The episode ends
// after a second in which every new call could be admitted.
func (c *Controller) Update(s Sample) {
	hard, cause := false, ""
	if c.cfg.QueueTarget > 0 && s.Queue >= c.cfg.QueueTarget {
		hard, cause = true, "receive queue"
	}
	if c.cfg.AgeTarget > 0 && s.Late >= 0.5 { // the median age is over the target
		hard, cause = true, "message age"
	}
	waiting := c.cfg.AgeTarget > 0 && s.Delay >= c.delayTarget() ||
		c.cfg.QueueTarget > 0 && s.Queue >= c.cfg.QueueTarget/4
	busy := c.cfg.CPUTarget > 0 && s.CPU >= c.cfg.CPUTarget && waiting
	if busy && cause == "" {
		cause = "processor"
	}
	if hard || busy {
		c.hot++
	} else {
		c.hot = 0
	}

	l := c.loss.Load()
	admitted := 1 - float64(l)/1000
	switch {
	case l == 0 && !c.over && !(hard && c.hot >= 2 || busy && c.hot >= 3):
		// No episode: one or two samples over target are none yet.
	case hard:
		admitted *= 0.7
	case waiting:
		admitted *= 0.9
	case c.cfg.CPUTarget > 0 && s.CPU < 0.8*c.cfg.CPUTarget:
		// Nothing waits and the processor is well under its target:
		// the cut was deeper than the load (a passing burst): make it
		// up within a second or two.
		admitted = admitted*1.15 + 0.005
	default:
		// Nothing waits: admit a little more each sample (a third more
		// a second), probing for what the switch carries.
		admitted = admitted*1.03 + 0.002
	}
	switch {
	case admitted >= 0.99:
		l = 0
	case admitted < 1-maxLoss/1000.0:
		l = maxLoss
	default:
		l = uint32(1000 - admitted*1000)
	}
	if old := c.loss.Swap(l); old != l {
		c.seq.Store(max(c.seq.Load()+1, time.Now().UnixMilli()))
	}
	capped := c.cfg.MaxCalls > 0 && s.Active >= c.cfg.MaxCalls
	c.capped.Store(capped)
	if capped && cause == "" {
		cause = "max_calls"
	}

	on := l > 0 || capped
	switch {
	case on && !c.over:
		c.over, c.quiet = true, 0
		c.publish("start", cause)
	case on:
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
