// Package wheel is a hashed timer wheel: one goroutine and one ticker for
// every transaction timer of the SIP stack, instead of a runtime timer
// each. Insertion and cancellation cost O(1); a timer fires within one
// tick after it is due. Callbacks run on the wheel's goroutine: they must
// be short and must not block (send a datagram, change a state).
package wheel

import (
	"sync"
	"time"

	"github.com/softswitch/softswitch/core/safe"
)

const slots = 1024

// Wheel holds the timers.
type Wheel struct {
	tick  time.Duration
	start time.Time

	mu    sync.Mutex
	now   int64 // ticks processed so far
	slot  [slots]*Timer
	count int
}

// Timer is one scheduled callback.
type Timer struct {
	due  int64 // tick at which it fires
	f    func()
	next *Timer
	prev *Timer
	w    *Wheel
	on   bool // in the wheel (guarded by w.mu)
}

// New returns a wheel ticking every tick (10 ms is fine for SIP: T1 is
// 500 ms); Run drives it.
func New(tick time.Duration) *Wheel {
	return &Wheel{tick: tick, start: time.Now()}
}

// Run fires due timers until stop is closed.
func (w *Wheel) Run(stop <-chan struct{}) {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			w.advance(int64(now.Sub(w.start) / w.tick))
		}
	}
}

// After schedules f to run after d.
func (w *Wheel) After(d time.Duration, f func()) *Timer {
	t := &Timer{f: f, w: w}
	w.mu.Lock()
	w.add(t, d)
	w.mu.Unlock()
	return t
}

// Reset stops t and schedules it again after d (with the same callback).
func (t *Timer) Reset(d time.Duration) {
	w := t.w
	w.mu.Lock()
	if t.on {
		w.remove(t)
	}
	w.add(t, d)
	w.mu.Unlock()
}

// Stop cancels t; false if it had fired or was stopped already.
func (t *Timer) Stop() bool {
	if t == nil {
		return false
	}
	w := t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if !t.on {
		return false
	}
	w.remove(t)
	return true
}

// Len is the number of timers waiting.
func (w *Wheel) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count
}

// add links t into its slot. Caller holds w.mu.
func (w *Wheel) add(t *Timer, d time.Duration) {
	ticks := int64((d + w.tick - 1) / w.tick)
	if ticks < 1 {
		ticks = 1
	}
	// Due relative to the wall clock, not to the ticks processed: a late
	// tick must not make every new timer late too.
	nowTick := int64(time.Since(w.start) / w.tick)
	if nowTick < w.now {
		nowTick = w.now
	}
	t.due = nowTick + ticks
	s := &w.slot[t.due%slots]
	t.prev, t.next = nil, *s
	if *s != nil {
		(*s).prev = t
	}
	*s = t
	t.on = true
	w.count++
}

// remove unlinks t. Caller holds w.mu.
func (w *Wheel) remove(t *Timer) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		w.slot[t.due%slots] = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.next, t.prev, t.on = nil, nil, false
	w.count--
}

// advance fires every timer due up to tick now.
func (w *Wheel) advance(now int64) {
	var due []func()
	w.mu.Lock()
	for w.now < now {
		w.now++
		for t := w.slot[w.now%slots]; t != nil; {
			next := t.next
			if t.due <= w.now {
				w.remove(t)
				due = append(due, t.f)
			}
			t = next
		}
		if w.now+slots < now { // far behind (a stopped machine): jump, every slot is looked at below
			w.now = now - slots
		}
	}
	w.mu.Unlock()
	for _, f := range due {
		fire(f)
	}
}

func fire(f func()) {
	defer safe.Recover("timer")
	f()
}
