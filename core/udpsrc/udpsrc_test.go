//go:build linux

package udpsrc

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Linux routes all of 127.0.0.0/8 to lo: 127.0.0.2 and .3 are this host's
// addresses too, which gives a wildcard socket several local addresses.

// echo answers every datagram on c to its sender until c closes.
func echo(c net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		c.WriteTo(buf[:n], from)
	}
}

func listen(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// ask sends from 127.0.0.1 to ip on the server's port over a connected
// socket: the kernel hands it only datagrams coming from exactly ip.
func ask(t *testing.T, server net.PacketConn, ip string) error {
	t.Helper()
	port := server.LocalAddr().(*net.UDPAddr).Port
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("OPTIONS")); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "OPTIONS" {
		return errors.New("wrong answer " + string(buf[:n]))
	}
	return nil
}

func TestAnswerFromTheAddressAskedDualStack(t *testing.T) { testAnswerFrom(t, "udp", "[::]:0") }
func TestAnswerFromTheAddressAskedIPv4(t *testing.T)      { testAnswerFrom(t, "udp4", "0.0.0.0:0") }

func testAnswerFrom(t *testing.T, network, addr string) {
	// The plain socket answers 127.0.0.2 from 127.0.0.1 (the route's
	// choice): the connected client never sees it. This is the failure
	// the package exists for; if it stopped happening the test below
	// would prove nothing.
	plain := listen(t, network, addr)
	go echo(plain)
	if err := ask(t, plain, "127.0.0.2"); err == nil {
		t.Fatal("a plain wildcard socket answered from the address asked; the test cannot tell the difference")
	}

	w := Wrap(listen(t, network, addr), netip.Addr{})
	if _, ok := w.(*Conn); !ok {
		t.Fatalf("Wrap left the wildcard %s socket as it was", network)
	}
	go echo(w)
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.1", "127.0.0.2"} {
		if err := ask(t, w, ip); err != nil {
			t.Errorf("asked on %s: %v", ip, err)
		}
	}
}

func TestUnknownPeerGetsTheDefaultSource(t *testing.T) {
	for _, tc := range []struct {
		def, want string
	}{
		{"127.0.0.3", "127.0.0.3"},
		{"192.0.2.1", "127.0.0.1"}, // not ours (a standby without the virtual address): the kernel's choice
	} {
		w := Wrap(listen(t, "udp", "[::]:0"), netip.MustParseAddr(tc.def))
		peer := listen(t, "udp4", "127.0.0.1:0")
		if _, err := w.WriteTo([]byte("hello"), peer.LocalAddr()); err != nil {
			t.Fatalf("default %s: %v", tc.def, err)
		}
		peer.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 16)
		_, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("default %s: %v", tc.def, err)
		}
		if got := from.Addr().Unmap().String(); got != tc.want {
			t.Errorf("default %s: sent from %s, want %s", tc.def, got, tc.want)
		}
	}
}

func TestBoundSocketIsLeftAlone(t *testing.T) {
	c := listen(t, "udp4", "127.0.0.1:0")
	if w := Wrap(c, netip.Addr{}); w != net.PacketConn(c) {
		t.Error("a socket bound to one address was wrapped")
	}
}

func TestPeerTableIsBounded(t *testing.T) {
	old := maxPeers
	maxPeers = 2
	defer func() { maxPeers = old }()
	c := &Conn{peers: map[netip.AddrPort]netip.Addr{}}
	dst := netip.MustParseAddr("127.0.0.2")
	for i := range 5 {
		c.learn(netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(1000+i)), dst)
		if len(c.peers) > maxPeers {
			t.Fatalf("%d peers held, bound %d", len(c.peers), maxPeers)
		}
	}
	// The last peer is always known.
	if got := c.source(netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 1004)); got != dst {
		t.Errorf("last peer's source %v, want %v", got, dst)
	}
}

func TestDestinationParsesWhatPktinfoWrites(t *testing.T) {
	for _, a := range []string{"192.0.2.7", "2001:db8::7"} {
		src := netip.MustParseAddr(a)
		oob := pktinfo(nil, src)
		// pktinfo writes the source field; destination reads the
		// destination field of a received one. Both are the same address
		// slot for IPv6; for IPv4 copy spec_dst to addr as the kernel
		// reports it.
		if src.Is4() {
			h := unix.CmsgLen(0)
			copy(oob[h+8:h+12], oob[h+4:h+8])
		}
		got, ok := destination(oob)
		if !ok || got != src {
			t.Errorf("%s: destination %v %v", a, got, ok)
		}
	}
	if _, ok := destination([]byte{1, 2, 3}); ok {
		t.Error("garbage parsed")
	}
}

func TestMain(m *testing.M) {
	// 127.0.0.2 must be local for these tests (it is on Linux).
	c, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		println("skipping: 127.0.0.2 is not a local address here:", err.Error())
		os.Exit(0)
	}
	c.Close()
	os.Exit(m.Run())
}

// BenchmarkRoundTrip: one datagram to the server and its answer back,
// through a plain wildcard socket and a wrapped one (the cost of reading
// the destination and naming the source).
func BenchmarkRoundTrip(b *testing.B) {
	for _, wrap := range []bool{false, true} {
		name := "plain"
		if wrap {
			name = "wrapped"
		}
		b.Run(name, func(b *testing.B) {
			sc, err := net.ListenPacket("udp", "[::]:0")
			if err != nil {
				b.Fatal(err)
			}
			var s net.PacketConn = sc
			if wrap {
				s = Wrap(sc, netip.Addr{})
			}
			defer s.Close()
			go echo(s)
			port := sc.LocalAddr().(*net.UDPAddr).Port
			// Plain answers 127.0.0.1 from 127.0.0.1, so both runs can use
			// the same connected client.
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, 600) // an OPTIONS-sized datagram
			buf := make([]byte, 2048)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// An IPv6 peer gets its answer through IPV6_PKTINFO (loopback has one
// IPv6 address, so this checks the path, not the choice).
func TestIPv6Peer(t *testing.T) {
	w := Wrap(listen(t, "udp", "[::]:0"), netip.Addr{})
	go echo(w)
	c, err := net.DialUDP("udp6", nil, &net.UDPAddr{IP: net.IPv6loopback, Port: w.LocalAddr().(*net.UDPAddr).Port})
	if err != nil {
		t.Skip("no IPv6 loopback here:", err)
	}
	defer c.Close()
	c.Write([]byte("OPTIONS"))
	c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 16)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if src := w.(*Conn).source(netip.MustParseAddrPort(c.LocalAddr().String())); src != netip.IPv6Loopback() {
		t.Errorf("learned source %v, want ::1", src)
	}
}
