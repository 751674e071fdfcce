package wheel

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestFiresInOrderAndStops(t *testing.T) {
	w := New(time.Millisecond)
	stop := make(chan struct{})
	defer close(stop)
	go w.Run(stop)
	got := make(chan int, 10)
	w.After(30*time.Millisecond, func() { got <- 3 })
	w.After(10*time.Millisecond, func() { got <- 1 })
	x := w.After(20*time.Millisecond, func() { got <- 2 })
	if !x.Stop() || x.Stop() {
		t.Fatal("Stop: first true, then false")
	}
	long := w.After(1500*time.Millisecond, func() { got <- 4 }) // more than a revolution
	for _, want := range []int{1, 3} {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("fired %d, want %d", v, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("timer %d did not fire", want)
		}
	}
	if w.Len() != 1 {
		t.Fatalf("Len %d, want 1", w.Len())
	}
	select {
	case v := <-got:
		if v != 4 {
			t.Fatalf("fired %d", v)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("timer beyond one revolution did not fire")
	}
	if long.Stop() {
		t.Fatal("stopped a fired timer")
	}
}

func TestResetAndPanics(t *testing.T) {
	w := New(time.Millisecond)
	stop := make(chan struct{})
	defer close(stop)
	go w.Run(stop)
	var n atomic.Int32
	w.After(time.Millisecond, func() { panic("boom") })
	tm := w.After(5*time.Millisecond, func() { n.Add(1) })
	tm.Reset(50 * time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if n.Load() != 0 {
		t.Fatal("reset timer fired at its old time")
	}
	deadline := time.Now().Add(2 * time.Second)
	for n.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n.Load() != 1 {
		t.Fatal("reset timer did not fire (or a panicking callback stopped the wheel)")
	}
}

func BenchmarkAfterStop(b *testing.B) {
	w := New(10 * time.Millisecond)
	f := func() {}
	b.ReportAllocs()
	for b.Loop() {
		w.After(time.Second, f).Stop()
	}
}
