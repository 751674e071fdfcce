// Package udpsrc makes UDP answers leave from the address the peer sent
// to. A socket bound to the wildcard address otherwise sends from whatever
// address the route picks: on the active node of a pair that is the node's
// own address, not the virtual one the peer used, and the peer's firewall,
// NAT or connected socket drops the answer. The kernel tells the
// destination of each datagram (IP_PKTINFO / IPV6_PKTINFO); writes to that
// peer name it as the source. Peers never heard from get the default
// source (the advertised address) when it is configured on this node.
package udpsrc

import (
	"net"
	"net/netip"
	"sync"
)

// maxPeers bounds the table of learned destinations; a flood of spoofed
// sources clears it rather than growing it (peers re-learn with their next
// datagram).
var maxPeers = 1 << 16

// Conn is a wildcard-bound UDP socket that answers from the right address.
type Conn struct {
	*net.UDPConn
	def netip.Addr // source for unknown peers; invalid: the kernel's choice

	mu    sync.RWMutex
	peers map[netip.AddrPort]netip.Addr // peer -> our address it last sent to, where that is not def
}

// Wrap returns c answering from the destination address of each peer's
// datagrams. c is returned as it is when it is bound to one address (the
// kernel then sends from that one) or when the system cannot report
// destinations. def may be the zero Addr.
func Wrap(c net.PacketConn, def netip.Addr) net.PacketConn {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return c
	}
	la, ok := uc.LocalAddr().(*net.UDPAddr)
	if !ok || !la.IP.IsUnspecified() {
		return c
	}
	v6 := la.IP.To4() == nil
	if err := enable(uc, v6); err != nil {
		return c
	}
	if def.IsUnspecified() {
		def = netip.Addr{}
	}
	return &Conn{UDPConn: uc, def: def.Unmap(), peers: map[netip.AddrPort]netip.Addr{}}
}

// ReadFrom reads a datagram and notes which of our addresses it was sent to.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	var oob [128]byte
	n, oobn, _, from, err := c.ReadMsgUDPAddrPort(b, oob[:])
	if err != nil {
		return n, nil, err
	}
	if dst, ok := destination(oob[:oobn]); ok {
		c.learn(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), dst)
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteTo sends from the address the peer last sent to (or the default).
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.UDPConn.WriteTo(b, addr)
	}
	to := ua.AddrPort()
	src := c.source(netip.AddrPortFrom(to.Addr().Unmap(), to.Port()))
	if !src.IsValid() {
		return c.UDPConn.WriteTo(b, addr)
	}
	var oob [64]byte
	n, _, err := c.WriteMsgUDPAddrPort(b, pktinfo(oob[:0], src), to)
	if err != nil {
		// The address is not (or no longer) ours: a standby without the
		// virtual address, or the address moved since the peer sent.
		return c.UDPConn.WriteTo(b, addr)
	}
	return n, nil
}

func (c *Conn) learn(peer netip.AddrPort, dst netip.Addr) {
	c.mu.RLock()
	cur, known := c.peers[peer]
	c.mu.RUnlock()
	if known && cur == dst || !known && dst == c.def {
		return
	}
	c.mu.Lock()
	switch {
	case dst == c.def:
		delete(c.peers, peer)
	default:
		if len(c.peers) >= maxPeers {
			clear(c.peers)
		}
		c.peers[peer] = dst
	}
	c.mu.Unlock()
}

func (c *Conn) source(peer netip.AddrPort) netip.Addr {
	c.mu.RLock()
	src, ok := c.peers[peer]
	c.mu.RUnlock()
	if !ok {
		src = c.def
	}
	if src.Is4() != peer.Addr().Is4() {
		return netip.Addr{} // an IPv4 default is no source toward an IPv6 peer
	}
	return src
}
