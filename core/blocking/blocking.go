// Package blocking runs work that blocks its thread in the kernel (a
// disk sync) without stopping the rest of the switch when it was given
// one processor.
//
// A goroutine in a system call keeps its P (the runtime's right to run
// Go code) until the call returns or the runtime's monitor takes the P
// away, and the monitor sleeps up to 10 ms when the process is quiet.
// With GOMAXPROCS 1 (a switch pinned to one CPU, or a container given
// less than two) nothing else runs meanwhile: a bbolt commit ends in two
// fdatasyncs of 0.3-1 ms each, and every SIP message that arrived during
// a CDR commit waited for it (measured at 500 calls/s on one CPU: the
// switch's own INVITE latency had a 1.5-2 ms stall every 100 ms, the
// INVITE->200 p99 3.2-3.5 ms; with Do around the commits 2.6-2.9 ms, the
// same CPU per call).
//
// Do lends the runtime a second P while such work runs: the other
// goroutines go on on another thread while the sync waits for the disk.
// Only the switch's own default of 1 is raised; a GOMAXPROCS set in the
// environment is the operator's and is left alone, and with two or more
// processors Do changes nothing.
package blocking

import (
	"os"
	"runtime"
	"sync"
	"time"
)

var (
	mu     sync.Mutex
	inside int  // Do calls under way
	lent   bool // GOMAXPROCS raised by Do, until the last of them returns
	// fixed: GOMAXPROCS comes from the environment.
	fixed = os.Getenv("GOMAXPROCS") != ""
)

// Do runs fn, which may block in the kernel for a while (fdatasync), with
// a second P lent to the runtime when it has only one.
func Do(fn func() error) error {
	lend()
	defer giveBack()
	return fn()
}

func lend() {
	if fixed {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	inside++
	// GOMAXPROCS(n) stops the world for a moment: cheap with one P, and
	// done once however many Do calls overlap.
	if inside == 1 && runtime.GOMAXPROCS(0) == 1 {
		runtime.GOMAXPROCS(2)
		lent = true
	}
}

func giveBack() {
	if fixed {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	inside--
	if inside == 0 && lent {
		// Back to the runtime's default (1 when Do raised it), which
		// also keeps the runtime following a change of the CPU limit.
		runtime.SetDefaultGOMAXPROCS()
		lent = false
	}
}

// Procs is the number of processors the runtime was given, not counting
// the one Do lends: for sizing pools of readers and workers at start.
func Procs() int {
	mu.Lock()
	defer mu.Unlock()
	if lent {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// Yield lets the network in during a long stretch of work on a switch
// with one processor: it parks the goroutine for a moment, and an idle
// scheduler polls the network before it runs it again (runtime.Gosched
// does not: the yielding goroutine is found runnable again first, and
// messages that arrived wait up to 10 ms for the runtime's monitor). For
// background work only (the CDR writer between batches): on an idle
// processor a yield can take a millisecond. With more processors it does
// nothing.
func Yield() {
	if runtime.GOMAXPROCS(0) > 1 {
		return
	}
	time.Sleep(time.Microsecond)
}
