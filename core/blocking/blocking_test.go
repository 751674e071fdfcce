package blocking

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// oneProc runs the test with GOMAXPROCS 1, as on a switch given one CPU.
func oneProc(t *testing.T) {
	if fixed {
		t.Skip("GOMAXPROCS is set in the environment: Do leaves it alone")
	}
	runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.SetDefaultGOMAXPROCS() })
}

func TestDoLendsAProcessorWhileItRuns(t *testing.T) {
	oneProc(t)
	var during, procs int
	err := Do(func() error {
		during = runtime.GOMAXPROCS(0)
		procs = Procs()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if during != 2 {
		t.Errorf("GOMAXPROCS inside Do = %d, want 2", during)
	}
	if procs != 1 {
		t.Errorf("Procs inside Do = %d, want 1 (the lent processor does not count)", procs)
	}
	if lent || inside != 0 {
		t.Errorf("after Do: lent %v, inside %d; want false, 0", lent, inside)
	}
}

func TestOverlappingDoKeepTheLoanUntilTheLast(t *testing.T) {
	oneProc(t)
	first := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = Do(func() error { close(first); <-release; return nil })
	}()
	<-first
	var inner int
	_ = Do(func() error { inner = runtime.GOMAXPROCS(0); return nil })
	if inner != 2 {
		t.Errorf("GOMAXPROCS in a second Do = %d, want 2", inner)
	}
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS after the second Do returned while the first runs = %d, want 2", got)
	}
	close(release)
	wg.Wait()
	if lent || inside != 0 {
		t.Errorf("after both: lent %v, inside %d; want false, 0", lent, inside)
	}
}

func TestDoLeavesMoreProcessorsAlone(t *testing.T) {
	if fixed {
		t.Skip("GOMAXPROCS is set in the environment")
	}
	runtime.GOMAXPROCS(3)
	t.Cleanup(func() { runtime.SetDefaultGOMAXPROCS() })
	var during int
	_ = Do(func() error { during = runtime.GOMAXPROCS(0); return nil })
	if during != 3 || runtime.GOMAXPROCS(0) != 3 || lent {
		t.Errorf("GOMAXPROCS 3: %d inside Do, %d after, lent %v; want 3, 3, false", during, runtime.GOMAXPROCS(0), lent)
	}
}

func TestPanicGivesTheProcessorBack(t *testing.T) {
	oneProc(t)
	func() {
		defer func() { _ = recover() }()
		_ = Do(func() error { panic("boom") })
	}()
	if lent || inside != 0 {
		t.Errorf("after a panic in Do: lent %v, inside %d", lent, inside)
	}
}

// A goroutine waiting on the network runs at the first Yield of a busy
// goroutine on one processor; runtime.Gosched in Yield's place leaves it
// waiting for the runtime's monitor (up to 10 ms) and fails this.
func TestYieldLetsTheNetworkIn(t *testing.T) {
	oneProc(t)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 16)
		if _, _, err := conn.ReadFrom(buf); err == nil {
			got.Store(true)
		}
	}()
	time.Sleep(10 * time.Millisecond) // the reader is parked in the poller
	out, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	yields := 0
	for !got.Load() && yields < 3 {
		spin()
		Yield()
		yields++
	}
	if !got.Load() {
		t.Errorf("the datagram's reader did not run within %d yields of a busy goroutine", yields)
	}
	conn.Close()
	<-done
}

var sink int

// spin is a little work that does not yield.
func spin() {
	for i := range 20000 {
		sink += i
	}
}
