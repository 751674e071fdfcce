package udpbatch

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

type sys struct {
	rc    syscall.RawConn
	v6    bool // an AF_INET6 socket: IPv4 peers as mapped addresses
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // room for either family
}

func (s *sys) init(c *net.UDPConn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var sa unix.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
	case *unix.SockaddrInet6:
		s.v6 = true
	default:
		return ErrUnsupported
	}
	s.rc = rc
	s.hdrs = make([]unix.Mmsghdr, size)
	s.iovs = make([]unix.Iovec, size)
	s.names = make([]unix.RawSockaddrInet6, size)
	for i := range s.hdrs {
		s.hdrs[i].Hdr.Iov = &s.iovs[i]
		s.hdrs[i].Hdr.SetIovlen(1)
		s.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
	}
	return nil
}

func (s *sys) read(ds []Datagram) (int, error) {
	k := min(len(ds), len(s.hdrs))
	for i := range k {
		h := &s.hdrs[i]
		h.Hdr.Namelen = unix.SizeofSockaddrInet6
		h.Hdr.Flags = 0
		h.Len = 0
		setBuf(&s.iovs[i], ds[i].Data)
	}
	var n int
	var errno syscall.Errno
	err := s.rc.Read(func(fd uintptr) (done bool) {
		n, errno, done = s.call(unix.SYS_RECVMMSG, fd, k)
		return done
	})
	for i := range k { // the caller's buffers are not ours to hold
		setBuf(&s.iovs[i], nil)
	}
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, &net.OpError{Op: "recvmmsg", Net: "udp", Err: errno}
	}
	for i := range n {
		ds[i].N = int(s.hdrs[i].Len)
		ds[i].Addr = decode(&s.names[i])
	}
	return n, nil
}

func (s *sys) write(ds []Datagram) (int, error) {
	k := min(len(ds), len(s.hdrs))
	var bad error // why ds[k] cannot be sent, when it stopped the batch
	for i := range k {
		l, err := s.encode(&s.names[i], ds[i].Addr)
		if err != nil {
			k, bad = i, err
			break
		}
		s.hdrs[i].Hdr.Namelen = l
		s.hdrs[i].Hdr.Flags = 0
		s.hdrs[i].Len = 0
		setBuf(&s.iovs[i], ds[i].Data)
	}
	if k == 0 {
		return 0, bad
	}
	var n int
	var errno syscall.Errno
	err := s.rc.Write(func(fd uintptr) (done bool) {
		n, errno, done = s.call(unix.SYS_SENDMMSG, fd, k)
		return done
	})
	// The buffers were the kernel's only during the call.
	for i := range k {
		setBuf(&s.iovs[i], nil)
	}
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, &net.OpError{Op: "sendmmsg", Net: "udp", Addr: net.UDPAddrFromAddrPort(ds[0].Addr), Err: errno}
	}
	if n == k && bad != nil {
		return n, bad
	}
	return n, nil
}

// call makes one recvmmsg or sendmmsg (trap) of the first k headers as a
// raw system call, which keeps the processor (see the package comment);
// MSG_DONTWAIT makes sure it cannot wait. done false: the socket is
// empty or full, the runtime's poller waits for it.
func (s *sys) call(trap, fd uintptr, k int) (n int, errno syscall.Errno, done bool) {
	for {
		r, _, e := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(k), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == 0:
			return int(r), 0, true
		case e == unix.EINTR:
		case e == unix.ECONNREFUSED && trap == unix.SYS_RECVMMSG: // an earlier send's ICMP, not this read's
		case e == unix.EAGAIN:
			return 0, 0, false
		default:
			return 0, e, true
		}
	}
}

func setBuf(v *unix.Iovec, b []byte) {
	if len(b) == 0 {
		v.Base = nil
		v.SetLen(0)
		return
	}
	v.Base = &b[0]
	v.SetLen(len(b))
}

// Ports are in network byte order in a sockaddr.
func port(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

func setPort(p *uint16, v uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(v>>8), byte(v)
}

func decode(n *unix.RawSockaddrInet6) netip.AddrPort {
	switch n.Family {
	case unix.AF_INET:
		v4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(n))
		return netip.AddrPortFrom(netip.AddrFrom4(v4.Addr), port(&v4.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(n.Addr).Unmap()
		if n.Scope_id != 0 && a.Is6() {
			a = a.WithZone(zoneName(n.Scope_id)) // as net.UDPAddr names it
		}
		return netip.AddrPortFrom(a, port(&n.Port))
	}
	return netip.AddrPort{}
}

func (s *sys) encode(n *unix.RawSockaddrInet6, to netip.AddrPort) (uint32, error) {
	a := to.Addr()
	if !a.IsValid() {
		return 0, fmt.Errorf("udpbatch: no address to send to")
	}
	if !s.v6 {
		a = a.Unmap()
		if !a.Is4() {
			return 0, fmt.Errorf("udpbatch: %s on an IPv4 socket", a)
		}
		v4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(n))
		*v4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		setPort(&v4.Port, to.Port())
		return unix.SizeofSockaddrInet4, nil
	}
	*n = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	if z := a.Zone(); z != "" {
		idx, err := strconv.Atoi(z)
		if err != nil {
			ifi, ierr := net.InterfaceByName(z)
			if ierr != nil {
				return 0, fmt.Errorf("udpbatch: zone of %s: %w", a, ierr)
			}
			idx = ifi.Index
		}
		n.Scope_id = uint32(idx)
	}
	setPort(&n.Port, to.Port())
	return unix.SizeofSockaddrInet6, nil
}

// zoneName is an interface's name, as the runtime's own reads give it
// (link-local peers only), or its index where it has none.
func zoneName(idx uint32) string {
	if ifi, err := net.InterfaceByIndex(int(idx)); err == nil {
		return ifi.Name
	}
	return strconv.Itoa(int(idx))
}
