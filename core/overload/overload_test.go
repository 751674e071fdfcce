package overload

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

func refusedShare(c *Controller, n int) float64 {
	r := 0
	for range n {
		if c.RefuseNew() {
			r++
		}
	}
	return float64(r) / float64(n)
}

// load feeds the controller one sample: offered new calls of which
// refused were refused by the SIP stack's queue.
func load(c *Controller, offered, refused int, s Sample) {
	c.offered.Add(int64(offered))
	c.refused.Add(int64(refused))
	c.Update(s)
}

func TestEpisodeStartsAndEnds(t *testing.T) {
	bus := events.New()
	var got []events.Event
	bus.Subscribe(func(e *events.Event) { got = append(got, *e) })
	c := New(Config{QueueTarget: 0.25, AgeTarget: 200 * time.Millisecond, CPUTarget: 0.9, RetryAfterMin: 5, RetryAfterMax: 15}, nil, bus)
	if refusedShare(c, 1000) != 0 || c.Overloaded() || c.Shedding() {
		t.Fatal("refuses without load")
	}
	// One sample over target is no overload (a collection cycle).
	load(c, 100, 0, Sample{Queue: 0.3, CPU: 1})
	if c.Overloaded() || c.Shedding() {
		t.Fatal("an episode after one sample over target")
	}
	load(c, 100, 0, Sample{Queue: 0.3, CPU: 1})
	if !c.Overloaded() || !c.Shedding() || c.Validity() == 0 || c.Loss() < 1 {
		t.Fatalf("no episode after two samples with the receive queue full (loss %d)", c.Loss())
	}
	if len(got) != 1 || got[0].Kind != events.Overload || got[0].State != "start" || got[0].Cause != "receive queue" {
		t.Fatalf("events %+v, want one overload start for the receive queue", got)
	}
	// The queue refuses half the new calls: the share told and the
	// share drawn for other transports follow.
	seq := c.Seq()
	for range 10 {
		load(c, 100, 50, Sample{CPU: 1})
	}
	if l := c.Loss(); l < 45 || l > 55 {
		t.Fatalf("loss %d %% with half the new calls refused", l)
	}
	if c.Seq() <= seq {
		t.Fatal("oc-seq did not grow with the loss")
	}
	if share := refusedShare(c, 20000); share < 0.47 || share > 0.53 {
		t.Fatalf("RefuseNew refused %.2f, the queue half", share)
	}
	// No refusal, but the processor is at its cap: the episode holds
	// (the queue's bound is what keeps the queue short).
	for range 20 {
		load(c, 100, 0, Sample{CPU: 1})
	}
	if !c.Overloaded() {
		t.Fatal("episode ended with the processor at its cap")
	}
	// A second with the processor under its target ends it (read over
	// half a second: under a quota a process at half its budget reads
	// 100 % and 0 in turn).
	for i := range 9 {
		load(c, 100, 0, Sample{CPU: float64(i % 2)})
	}
	if !c.Overloaded() {
		t.Fatal("episode ended before a quiet second")
	}
	for range 5 {
		load(c, 100, 0, Sample{CPU: 1})
		load(c, 100, 0, Sample{CPU: 0})
	}
	if c.Overloaded() || c.Shedding() || c.Loss() != 0 || c.Validity() != 0 || refusedShare(c, 1000) != 0 {
		t.Fatalf("episode did not end after a quiet second (loss %d)", c.Loss())
	}
	if last := got[len(got)-1]; len(got) != 2 || last.State != "end" {
		t.Fatalf("events %+v, want start and end", got)
	}
	for range 100 {
		r := c.RetryAfter()
		if r < 5 || r > 15 {
			t.Fatalf("Retry-After %d outside [5, 15]", r)
		}
	}
}

// A standing queue starts an episode at its third sample with the
// processor at its target; pauses (one sample) never, nor a queue that
// stands with the processor idle (a handler waits on something).
func TestStandingQueue(t *testing.T) {
	c := New(Config{QueueTarget: 0.25, AgeTarget: 200 * time.Millisecond, CPUTarget: 0.9}, nil, nil)
	for range 20 {
		load(c, 100, 0, Sample{Delay: 50 * time.Millisecond, CPU: 0.95})
		load(c, 100, 0, Sample{Delay: time.Millisecond, CPU: 0.95})
	}
	for range 20 {
		load(c, 100, 0, Sample{Delay: 50 * time.Millisecond, CPU: 0.5})
	}
	if c.Overloaded() {
		t.Fatal("an episode on pauses, or with the processor idle")
	}
	for i := 1; i <= 3; i++ {
		load(c, 100, 0, Sample{Delay: 50 * time.Millisecond, CPU: 0.95})
		if on := c.Overloaded(); on != (i == 3) {
			t.Fatalf("episode %v after %d samples of a standing queue, want it at the third", on, i)
		}
	}
}

// Refusals do not hold an episode while the processor has room (the
// queue's bound refuses bursts at any load); without the processor's
// figure they do, until fewer than one in a hundred for a second.
func TestRefusalsAndTheEnd(t *testing.T) {
	c := New(Config{QueueTarget: 0.25, AgeTarget: 200 * time.Millisecond, CPUTarget: 0.9}, nil, nil)
	load(c, 100, 0, Sample{Late: 1})
	load(c, 100, 0, Sample{Late: 1})
	if !c.Overloaded() {
		t.Fatal("no episode with every message late")
	}
	for range 10 {
		load(c, 100, 5, Sample{CPU: 0.6})
	}
	if c.Overloaded() {
		t.Fatal("episode held by refusals with the processor at 60 %")
	}

	c = New(Config{QueueTarget: 0.25, AgeTarget: 200 * time.Millisecond}, nil, nil)
	load(c, 100, 0, Sample{Late: 1})
	load(c, 100, 0, Sample{Late: 1})
	for range 50 {
		load(c, 100, 5, Sample{})
	}
	if !c.Overloaded() {
		t.Fatal("no processor figure: episode ended while the queue refused 5 % of new calls")
	}
	for range 15 {
		load(c, 1000, 0, Sample{})
	}
	if c.Overloaded() {
		t.Fatal("no processor figure: episode still on")
	}
}

func TestMaxCalls(t *testing.T) {
	active := 0
	bus := events.New()
	var got []events.Event
	bus.Subscribe(func(e *events.Event) { got = append(got, *e) })
	c := New(Config{MaxCalls: 3}, func() int { return active }, bus)
	for active = range 3 {
		if c.RefuseNew() {
			t.Fatalf("refused with %d calls of 3", active)
		}
	}
	active = 3
	if !c.RefuseNew() || c.Refused() != 1 {
		t.Fatal("not refused at max_calls")
	}
	c.Update(Sample{Active: 3})
	if len(got) != 1 || got[0].State != "start" || got[0].Cause != "max_calls" {
		t.Fatalf("events %+v", got)
	}
	for range 11 {
		c.Update(Sample{Active: 1})
	}
	if got[len(got)-1].State != "end" {
		t.Fatalf("events %+v", got)
	}
}

func TestProbeMeasuresTheQueue(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.UDPConn).SetReadBuffer(64 << 10)
	p := NewProbe(conn)
	if q := p.Sample().Queue; q != 0 {
		t.Fatalf("empty queue measured %.2f", q)
	}
	out, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	msg := make([]byte, 1000)
	for range 200 {
		out.Write(msg)
	}
	if q := p.Sample().Queue; q < 0.5 {
		t.Fatalf("queue of unread datagrams measured %.2f, want well filled", q)
	}
	// The stack's own queues count too.
	p.Stack = func() (float64, float64, time.Duration) { return 0.9, 0.7, time.Millisecond }
	if s := p.Sample(); s.Queue < 0.9 || s.Late != 0.7 {
		t.Fatalf("sample %+v", s)
	}
}

// simSwitch is a switch of known capacity under the controller: each
// admitted call costs cost of processor time, a refusal a tenth of it;
// work beyond the processor waits (the delay the controller sees).
func TestCPUMeter(t *testing.T) {
	if c := cpuCapacity(); c <= 0 || c > float64(runtime.NumCPU()) {
		t.Fatalf("capacity %.2f processors, have %d", c, runtime.NumCPU())
	}
	m := newCPUMeter()
	before := processCPU()
	for deadline := time.Now().Add(5 * time.Second); processCPU()-before < 50*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatal("no processor time counted after 5 s of a busy loop")
		}
	}
	if share := m.share(time.Now()); share <= 0 || share > 1 {
		t.Fatalf("share %.2f after a busy loop, want 0..1", share)
	}
}
