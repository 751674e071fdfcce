package udpsrc

import (
	"encoding/binary"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// enable asks the kernel for each datagram's destination address. A
// dual-stack socket reports IPv4 datagrams through IP_PKTINFO too.
func enable(c *net.UDPConn, v6 bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// A control message header is the length (a C size_t) then level and
// type (C ints), in the machine's byte order.
const lenSize = unix.SizeofPtr

func cmsgLen(b []byte) int {
	if lenSize == 8 {
		return int(binary.NativeEndian.Uint64(b))
	}
	return int(binary.NativeEndian.Uint32(b))
}

// destination finds the datagram's destination address in the control
// messages (no allocation: this runs for every datagram).
func destination(oob []byte) (netip.Addr, bool) {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		l := cmsgLen(oob)
		if l < hdr || l > len(oob) {
			break
		}
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		data := oob[hdr:l]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, addr (the header's destination)
			return netip.AddrFrom4([4]byte(data[8:12])), true
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			return netip.AddrFrom16([16]byte(data[:16])).Unmap(), true
		}
		next := unix.CmsgSpace(l - hdr)
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return netip.Addr{}, false
}

// pktinfo appends the control message naming src as the source: IP_PKTINFO
// for an IPv4 source (also on a dual-stack socket, where the kernel sends
// IPv4 peers through the IPv4 path), IPV6_PKTINFO for an IPv6 one.
func pktinfo(b []byte, src netip.Addr) []byte {
	put := func(level, typ int32, n int) []byte {
		start := len(b)
		b = append(b, make([]byte, unix.CmsgSpace(n))...)
		h := b[start:]
		if lenSize == 8 {
			binary.NativeEndian.PutUint64(h, uint64(unix.CmsgLen(n)))
		} else {
			binary.NativeEndian.PutUint32(h, uint32(unix.CmsgLen(n)))
		}
		binary.NativeEndian.PutUint32(h[lenSize:], uint32(level))
		binary.NativeEndian.PutUint32(h[lenSize+4:], uint32(typ))
		return h[unix.CmsgLen(0):]
	}
	if src.Is4() {
		d := put(unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
		a := src.As4()
		copy(d[4:8], a[:]) // spec_dst: the source to use
		return b
	}
	d := put(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
	a := src.As16()
	copy(d[:16], a[:])
	return b
}
