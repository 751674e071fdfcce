// Package udpbatch reads and writes many UDP datagrams a system call
// (recvmmsg, sendmmsg) without giving up the processor for it.
//
// golang.org/x/net/ipv4's ReadBatch and WriteBatch make the same calls
// through syscall.Syscall, which marks the goroutine's processor as
// blocked in a system call. A sendmmsg on loopback delivers to the
// receiver inside the call (35 us on the appliance's guests), so the
// runtime's monitor found the processor "blocked", handed it to another
// thread and woke that thread, and the caller's thread slept on its
// return: at 500 calls/s on half a core that was 13 context switches a
// call against Kamailio's 7, and the monitor itself woke 2,000 times a
// second. On a non-blocking socket these calls never wait (a full
// buffer is EAGAIN, and the runtime's poller waits for the socket
// instead), so they are made as raw system calls that keep the
// processor.
package udpbatch

import (
	"errors"
	"net"
	"net/netip"
)

// Datagram is one datagram: to send, Data and Addr; read, Data is the
// buffer offered, N how much of it the datagram filled and Addr its
// source.
type Datagram struct {
	Data []byte
	N    int
	Addr netip.AddrPort
}

// ErrUnsupported: this socket or system has no batched path; read and
// write one datagram at a time.
var ErrUnsupported = errors.New("udpbatch: not supported here")

// Conn batches I/O on one UDP socket. It keeps scratch space for the
// system calls: one Conn per goroutine; several may share a socket.
type Conn struct {
	sys
}

// New prepares batched I/O on c for batches of up to size datagrams.
func New(c *net.UDPConn, size int) (*Conn, error) {
	if size < 1 {
		size = 1
	}
	b := &Conn{}
	if err := b.init(c, size); err != nil {
		return nil, err
	}
	return b, nil
}

// Read fills ds[:n] with the datagrams waiting, at least one: it waits
// for the first in the runtime's poller (deadlines on the socket apply).
func (b *Conn) Read(ds []Datagram) (n int, err error) { return b.read(ds) }

// Write sends ds in order and returns how many were sent, at least one
// unless err is set. A datagram that cannot be sent (an address the
// socket or the system refuses) stops the batch: n is the datagrams
// sent before it, err says why, and the caller skips ds[n] and goes on.
func (b *Conn) Write(ds []Datagram) (n int, err error) { return b.write(ds) }
