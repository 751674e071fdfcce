package overload

import (
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Probe measures the load of a process serving one UDP socket.
type Probe struct {
	// Stack, when set, reports the fill of the SIP stack's workers'
	// queues (0..1), the share of messages served late since the last
	// sample and the least of their ages.
	Stack func() (queue, late float64, delay time.Duration)

	conn *net.UDPConn
	cpu  *cpuMeter
}

// NewProbe measures conn's receive queue (nil: none).
func NewProbe(conn net.PacketConn) *Probe {
	p := &Probe{cpu: newCPUMeter()}
	if uc, ok := conn.(*net.UDPConn); ok {
		p.conn = uc
	}
	return p
}

// Sample measures now.
func (p *Probe) Sample() Sample {
	s := Sample{Queue: p.queue(), CPU: p.cpu.share(time.Now())}
	if p.Stack != nil {
		q, late, delay := p.Stack()
		s.Queue, s.Late, s.Delay = max(s.Queue, q), late, delay
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
