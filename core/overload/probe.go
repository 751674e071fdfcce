package overload

import (
	"math"
	"net"
	"runtime/metrics"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Probe measures the load of a process serving one UDP socket.
type Probe struct {
	// Stack, when set, reports the fullest queue of the SIP stack's
	// workers (0..1) and the oldest message age since the last sample.
	Stack func() (queue float64, age time.Duration)

	conn    *net.UDPConn
	sched   []metrics.Sample
	prev    []uint64 // the scheduling-latency histogram's counts at the last sample
	buckets []float64
}

// NewProbe measures conn's receive queue (nil: none) and the process's
// scheduling delay.
func NewProbe(conn net.PacketConn) *Probe {
	p := &Probe{sched: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
	if uc, ok := conn.(*net.UDPConn); ok {
		p.conn = uc
	}
	return p
}

// Sample measures now.
func (p *Probe) Sample() Sample {
	s := Sample{Queue: p.queue(), Delay: p.delay()}
	if p.Stack != nil {
		q, age := p.Stack()
		s.Queue = max(s.Queue, q)
		s.Delay = max(s.Delay, age) // a message's age is the delay it saw
	}
	return s
}

// queue is the receive queue's fill: the kernel's memory for datagrams
// not read yet over the socket's buffer (SO_MEMINFO). One system call.
func (p *Probe) queue() float64 {
	if p.conn == nil {
		return 0
	}
	rc, err := p.conn.SyscallConn()
	if err != nil {
		return 0
	}
	var info [unix.SK_MEMINFO_VARS]uint32
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(info))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 {
			gerr = errno
		}
	}); err != nil || gerr != nil {
		return 0
	}
	rcvbuf := info[unix.SK_MEMINFO_RCVBUF]
	if rcvbuf == 0 {
		return 0
	}
	return float64(info[unix.SK_MEMINFO_RMEM_ALLOC]) / float64(rcvbuf)
}

// delay is the 90th percentile of the time goroutines waited to run since
// the last call (the runtime's own histogram).
func (p *Probe) delay() time.Duration {
	metrics.Read(p.sched)
	if p.sched[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := p.sched[0].Value.Float64Histogram()
	if p.prev == nil {
		p.prev = make([]uint64, len(h.Counts))
		copy(p.prev, h.Counts)
		p.buckets = h.Buckets
		return 0
	}
	var total uint64
	for i, n := range h.Counts {
		total += n - p.prev[i]
	}
	if total == 0 {
		copy(p.prev, h.Counts)
		return 0
	}
	want := total - total/10 // the 90th percentile
	var seen uint64
	var d float64
	for i, n := range h.Counts {
		seen += n - p.prev[i]
		if seen >= want {
			d = h.Buckets[i+1] // the bucket's upper bound
			if math.IsInf(d, 1) {
				d = h.Buckets[i]
			}
			break
		}
	}
	copy(p.prev, h.Counts)
	return time.Duration(d * float64(time.Second))
}
