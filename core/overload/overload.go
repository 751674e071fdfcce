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
// new calls refused (RFC 7339's "loss", as the server) comes from a model
// of the processor: what a call costs, so what rate of new calls it
// carries at its target, against the rate offered (Update). A cap on
// concurrent calls (max_calls) refuses every new call above it.
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

// cpuCap is the processor share at and above which a sample is taken as
// capped (the process used all it may).
const cpuCap = 0.97

// refusalWeight is a refusal's cost against an admitted call's in the
// model: a tenth is what a refusal from the bytes costs (by hand, half a
// core: 18-23 us against 150-170 us a call near capacity); what refusing
// costs beyond it the call's learnt cost takes in (learn).
const refusalWeight = 0.1

// Controller holds the share of new calls refused.
type Controller struct {
	cfg     Config
	active  func() int
	bus     *events.Bus
	loss    atomic.Uint32 // per mille of new calls refused
	capped  atomic.Bool   // at max_calls
	refused atomic.Int64
	offered atomic.Int64 // new calls that arrived (Offer)
	seq     atomic.Int64 // RFC 7339 oc-seq: rises with every change of the loss share

	// Touched by Update only (one goroutine).
	hot      int // samples in a row over target
	over     bool
	quiet    int     // intervals in a row without load, to end an episode
	cost     float64 // processor share per admitted call a second (smoothed): the switch's cost of a call
	trim     float64 // the model's correction while shedding (1: none)
	lastOff  int64   // offered and refused at the last sample
	lastRef  int64
	win      window  // the samples the model learns from next
	recent   span    // the last half second's calls offered and refused and processor share: what the share admitted is set from
	calm     int     // samples until the correction may be cut again
	young    int     // samples until the span holds only the episode's own
	lastRate float64 // the rate offered in the last sample
	lastAt   time.Time
	clock    func() time.Time // time.Now; a test's own
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
	// The correction starts at 1 whatever starts an episode: one begun
	// before a call's cost was learnt comes to the model mid-way.
	c := &Controller{cfg: cfg, active: active, bus: bus, clock: time.Now, trim: 1}
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
	c.offered.Add(1)
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
// waited too long in its queue, or found its queue full).
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
// The model is the processor: what a call costs (its share of the
// processor per call admitted a second, each refusal at refusalWeight of
// a call) gives the rate of new calls it carries at CPUTarget beside the
// refusals, and while shedding the share admitted is that rate over the
// rate offered: one step, not a search, so that the admitted calls get
// the processor and the excess gets a cheap 503. In an episode the cost
// is taken from the last half second's figures (span: calls offered and
// refused, processor used), so that the share admitted follows what the
// processor did with the share set before; the cost learnt over calmer
// windows (learn) stands in while the span has fewer than 20 calls a
// second, and decides whether a rise in the load is a surge. An episode
// starts when the processor is over its target while work waits, for
// three samples in a row (a collection cycle takes that long at
// thousands of calls a second; a busy processor that keeps up is no
// overload), at once if the load is a surge (surge), or when a queue is
// near its limit or most messages are late (a stall the processor's
// figure does not show), for two. For an episode's first samples the
// share is set against the last two samples' rate offered where that is
// higher than the span's (young: the span still holds the samples from
// before the rise). A correction on the model
// falls while work waits (by a fifth; by 40 % on the hard signals; then
// not again for cutCalm samples, while the backlog drains; never under
// minTrim) so that the queue drains, and comes back to 1 once nothing
// waits. The span, not one sample, because under a quota the process
// stalls for a sample and reads a burst in the next. Without the
// processor's figure (CPUTarget 0) the share falls by a quarter on the
// hard signals and grows back by a tenth once nothing waits. The episode
// ends after a second in which every new call could be admitted; until
// then the model decides each sample.
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

	// The rate offered since the last sample; the window the model
	// learns from.
	off, ref, now := c.offered.Load(), c.refused.Load(), c.clock()
	dt := c.cfg.Interval.Seconds()
	if !c.lastAt.IsZero() {
		// A starved sampler samples late: rates over the real interval.
		dt = max(dt/10, now.Sub(c.lastAt).Seconds())
	}
	c.lastAt = now
	offered, refusedRate, cpu := c.recent.add(float64(off-c.lastOff), float64(ref-c.lastRef), s.CPU, dt)
	c.win.dt += dt
	c.win.cpu += s.CPU * dt
	c.win.off += off - c.lastOff
	c.win.ref += ref - c.lastRef
	c.win.samples++
	if waiting || hard {
		c.win.waited++
	}
	// The rate offered in the last two samples: a step up in the load
	// shows there half a second before the span's mean has it.
	rate := float64(off-c.lastOff) / dt
	rising := max(offered, (rate+c.lastRate)/2)
	c.lastRate = rate
	c.lastOff, c.lastRef = off, ref
	if c.win.dt+1e-9 >= learnWindow.Seconds() { // (ten sums of 0.1 fall short of 1)
		c.learn(c.win)
		c.win = window{}
	}

	l := c.loss.Load()
	admitted := 1 - float64(l)/1000
	switch {
	case l == 0 && !c.over && !(hard && c.hot >= 2 || busy && c.hot >= 3 || busy && c.surge(rising)):
		// No episode: one or two samples over target are none yet.
	case c.cfg.CPUTarget > 0 && c.cost > 0:
		// An episode, or its last second without refusals: the model
		// decides until the episode ends, so that one light sample
		// (fewer offered) does not let everything in until the queues
		// say overload again.
		if !c.over {
			c.trim, c.calm, c.young = 1, 0, spanSamples // an episode starts
		}
		load := offered
		if c.young > 0 {
			// The span still holds samples from before the episode,
			// when fewer calls came: the share refused is set against
			// the rate offered now.
			c.young--
			load = rising
		}
		if c.calm > 0 {
			c.calm--
		}
		switch {
		case (hard || waiting) && c.calm > 0:
			// A cut takes effect on new calls only: what waits already
			// drains over the next samples, and cutting again for it
			// would refuse for a backlog that is going (TCP cuts once a
			// round trip for the same reason).
		case hard:
			c.trim, c.calm = max(minTrim, c.trim*0.6), cutCalm
		case waiting:
			c.trim, c.calm = max(minTrim, c.trim*0.8), cutCalm
		case c.trim < 1:
			// Nothing waits: the backlog the cut was for is gone, the
			// processor's figures decide again within a few samples.
			c.trim = min(1, c.trim*1.25)
		}
		if offered > 0 {
			// What a call cost over the span, from the calls admitted
			// and refused in it and the processor they took: the
			// share admitted follows the figures of the last half
			// second, not a correction grown sample by sample on a
			// figure that lags them (that overshot, the queue filled,
			// the cuts followed, and the loss swung between 3 % and
			// 95 % every few seconds). Above the target it gives
			// fewer calls, under it more, until the processor is at
			// the target. The cost learnt over calmer windows stands
			// in while the span has too few calls to tell.
			cost := c.cost
			if calls := offered - refusedRate; calls >= 20 && cpu > 0.05 {
				cost = costOf(cpu, calls, refusedRate)
			}
			// Calls the processor carries at its target, less what
			// refusing the rest costs.
			admitted = min(1, max(0, carriedAt(c.cfg.CPUTarget, cost, load)/load)*c.trim)
		} else if !waiting && !hard {
			// No new call for half a second and nothing waits:
			// nothing to shed. (The share once stayed until calls
			// came again, and the first of them, after any pause,
			// were refused at the share of a load long gone.)
			admitted = 1
		}
	case hard:
		admitted *= 0.75
	case !waiting:
		admitted = admitted*1.1 + 0.001
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

// costOf is what a call costs (processor share per call a second) when
// admitted calls and refused ones a second took share cpu, a refusal at
// refusalWeight of a call; carriedAt is its inverse.
func costOf(cpu, admitted, refused float64) float64 {
	return cpu / (admitted + refusalWeight*refused)
}

// carriedAt is the rate of new calls a processor carries at its target
// share when a call costs cost (share per call a second) and the rest of
// offered is refused at refusalWeight of a call each.
func carriedAt(target, cost, offered float64) float64 {
	w := refusalWeight
	return (target/cost - w*offered) / (1 - w)
}

// surge reports a load far past what the processor carries: the last
// two samples' rate offered half as much again as the learnt cost of a
// call says it carries. With the processor busy and work waiting, the
// episode then starts at once, not after three samples: at a step to
// twice the capacity those samples queued more than half a second of
// work, the callers' and the switch's own INVITEs were retransmitted
// (T1), and calls the switch had admitted failed. Half as much again,
// not a tenth: the learnt cost is that of a lighter load (a fifth over
// the cost near capacity), and a step to just the capacity must not be
// taken for one.
func (c *Controller) surge(rising float64) bool {
	return c.cfg.CPUTarget > 0 && c.cost > 0 && rising > 1.5*carriedAt(c.cfg.CPUTarget, c.cost, rising)
}

// minTrim is the least correction: cut below it, the model's share
// refuses nearly everything with the processor idle, and climbing back
// from there took seconds.
const minTrim = 0.1

// cutCalm is the fewest samples from one cut of the correction to the
// next (300 ms: a backlog of the half-second T1 drains in it).
const cutCalm = 3

// span is the calls offered and refused and the processor's share over
// the last spanSamples samples: a process starved of its processor for a
// sample reads nothing in it and a burst in the next; taken sample by
// sample, the share admitted swung from all to nearly none (a stalled
// sample's few calls looked light load, and let everything in), and
// samples of 100 ms against a quota period of 100 ms read the processor
// at 70 % and 100 % in turn.
type span struct {
	calls, refused, busy, dt [spanSamples]float64 // per sample: calls offered, refused, processor share x seconds, seconds
	at                       int
}

const spanSamples = 5

// add records a sample (n calls offered, r refused, processor share
// cpu, over dt seconds) and returns the offered and refused rates and
// the processor share over the span.
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

// window sums the samples the model learns from: a second of them, ten
// periods of a cgroup's quota, so that a stall of the process in one
// sample and the backlog it reads in the next fall in one window (taken
// sample by sample, that backlog read as a burst of cheap calls made a
// call look half its cost).
type window struct {
	dt, cpu         float64 // seconds; processor share × seconds
	off, ref        int64   // new calls offered, refused
	samples, waited int     // samples; those in which work waited or a hard signal
}

// learnWindow is how long a window lasts.
const learnWindow = time.Second

// learnBusy: a window in which the processor was under this share of its
// target teaches nothing of a call's cost. At a light load each message
// wakes the process on its own and a call costs twice what it costs near
// capacity, where the messages come in batches (by hand, half a core:
// 300 us of processor a call at 500 calls/s, 150-170 at 2,800), and a
// cost learnt there refused half the calls the processor could carry.
const learnBusy = 0.5

// learn takes what a call costs from a window: the processor share used
// against the calls admitted and refused a second. Not from a light
// window (learnBusy), nor from a window in which work waited in a third of
// the samples or more (the processor then did less than what was offered
// and admitted: a burst at start-up read at full processor made a call
// look a quarter of its cost), nor from one at the processor's cap (the
// figure then says nothing of the demand: what the cap held back waits
// in the kernel's socket buffer, which the message ages do not see).
func (c *Controller) learn(win window) {
	cpu := win.cpu / win.dt
	offered := float64(win.off) / win.dt
	refused := float64(win.ref) / win.dt
	admitted := offered - refused
	if cpu < learnBusy*c.cfg.CPUTarget || admitted < 20 || cpu >= cpuCap || 3*win.waited >= win.samples {
		return
	}
	// What a call costs, each refusal at refusalWeight of a call: in an
	// episode the figure takes in what refusing costs beyond that, so
	// that it is what a call costs at the share refused now, the point
	// the next decisions start from. (Learning the refusal's weight
	// apart from the call's, from the windows of episodes, confounded
	// the two: a call's cost taken too high made refusals look free.)
	if perCall := costOf(cpu, admitted, refused); c.cost == 0 {
		c.cost = perCall
	} else {
		c.cost += 0.3 * (perCall - c.cost)
	}
}

func (c *Controller) publish(state, cause string) {
	if c.bus == nil {
		return
	}
	c.bus.Publish(&events.Event{Kind: events.Overload, State: state, Cause: cause,
		Level: c.Loss(), Status: 503})
}
