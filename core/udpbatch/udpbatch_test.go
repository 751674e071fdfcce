package udpbatch

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

func listen(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("no %s socket here: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func batch(t *testing.T, c *net.UDPConn, size int) *Conn {
	t.Helper()
	b, err := New(c, size)
	if runtime.GOOS != "linux" {
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("New off Linux: %v, want ErrUnsupported", err)
		}
		t.Skip("batched I/O is Linux only")
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// readAll reads until want datagrams came or the deadline passed.
func readAll(t *testing.T, c *net.UDPConn, b *Conn, want int) []Datagram {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []Datagram
	for len(got) < want {
		ds := make([]Datagram, 8)
		for i := range ds {
			ds[i].Data = make([]byte, 2048)
		}
		n, err := b.Read(ds)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		if n < 1 {
			t.Fatalf("Read returned %d datagrams and no error", n)
		}
		got = append(got, ds[:n]...)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, network, addr string }{
		{"IPv4", "udp4", "127.0.0.1:0"},
		{"IPv6", "udp6", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, z := listen(t, tc.network, tc.addr), listen(t, tc.network, tc.addr)
			ba, bz := batch(t, a, 4), batch(t, z, 4)
			out := []Datagram{
				{Data: []byte("one"), Addr: addrOf(z)},
				{Data: []byte("two, longer"), Addr: addrOf(z)},
				{Data: make([]byte, 1500), Addr: addrOf(z)},
				{Data: []byte("four"), Addr: addrOf(z)},
				{Data: []byte("five: past the batch's size"), Addr: addrOf(z)},
			}
			sent := 0
			for sent < len(out) {
				n, err := ba.Write(out[sent:])
				if err != nil || n < 1 {
					t.Fatalf("Write: %d, %v", n, err)
				}
				sent += n
			}
			got := readAll(t, z, bz, len(out))
			for i, d := range got {
				if string(d.Data[:d.N]) != string(out[i].Data) {
					t.Errorf("datagram %d: %q, want %q", i, d.Data[:d.N], out[i].Data)
				}
				if d.Addr != addrOf(a) {
					t.Errorf("datagram %d from %v, want %v", i, d.Addr, addrOf(a))
				}
			}
		})
	}
}

// A datagram the socket cannot send stops the batch at it; the caller
// skips it and the rest go.
func TestUnsendableSkipped(t *testing.T) {
	a, z := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	ba, bz := batch(t, a, 8), batch(t, z, 8)
	out := []Datagram{
		{Data: []byte("before"), Addr: addrOf(z)},
		{Data: []byte("nowhere"), Addr: netip.MustParseAddrPort("[2001:db8::1]:5060")},
		{Data: []byte("after"), Addr: addrOf(z)},
	}
	n, err := ba.Write(out)
	if n != 1 || err == nil {
		t.Fatalf("Write: %d, %v; want 1 and an error for the IPv6 address", n, err)
	}
	if n, err = ba.Write(out[2:]); n != 1 || err != nil {
		t.Fatalf("Write after the skip: %d, %v", n, err)
	}
	got := readAll(t, z, bz, 2)
	if string(got[0].Data[:got[0].N]) != "before" || string(got[1].Data[:got[1].N]) != "after" {
		t.Fatalf("got %q, %q", got[0].Data[:got[0].N], got[1].Data[:got[1].N])
	}
	if n, err := ba.Write([]Datagram{{Data: []byte("x")}}); n != 0 || err == nil {
		t.Fatalf("Write to no address: %d, %v; want 0 and an error", n, err)
	}
}

// A dual-stack socket sends to and reads from IPv4 peers; their
// addresses come back as plain IPv4 ones.
func TestDualStackIPv4Peer(t *testing.T) {
	d := listen(t, "udp", "[::]:0")
	v4 := listen(t, "udp4", "127.0.0.1:0")
	bd, b4 := batch(t, d, 2), batch(t, v4, 2)
	dport := addrOf(d).Port()
	if n, err := b4.Write([]Datagram{{Data: []byte("hello"), Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dport)}}); n != 1 || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	got := readAll(t, d, bd, 1)
	if got[0].Addr != addrOf(v4) {
		t.Fatalf("source %v, want %v", got[0].Addr, addrOf(v4))
	}
	if n, err := bd.Write([]Datagram{{Data: []byte("back"), Addr: got[0].Addr}}); n != 1 || err != nil {
		t.Fatalf("Write back: %d, %v", n, err)
	}
	if back := readAll(t, v4, b4, 1); string(back[0].Data[:back[0].N]) != "back" {
		t.Fatalf("got %q", back[0].Data[:back[0].N])
	}
}

// The socket's deadline ends a Read that waits, as a timeout.
func TestReadDeadline(t *testing.T) {
	c := listen(t, "udp4", "127.0.0.1:0")
	b := batch(t, c, 2)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	ds := []Datagram{{Data: make([]byte, 100)}}
	_, err := b.Read(ds)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline: %v, want a timeout", err)
	}
	c.Close()
	if _, err := b.Read(ds); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read on a closed socket: %v, want net.ErrClosed", err)
	}
}
