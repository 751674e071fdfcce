package radius

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/softswitch/softswitch/core/safe"
)

// conn is one UDP socket to one server with its 256 identifiers. An
// identifier stays taken until its exchange has its answer or gives up,
// so it is never reused while a request with it may still be answered;
// a late or repeated answer finds no taker, or one whose authenticator it
// does not match, and is dropped.
type conn struct {
	c      *net.UDPConn
	addr   netip.AddrPort
	secret []byte
	cl     *Client

	mu    sync.Mutex
	slots [256]*pending
	next  int
	inUse int
}

type pending struct {
	req []byte      // the request as sent: its authenticator checks the answer
	ch  chan []byte // the verified answer (buffered)
}

var errBusy = errors.New("all 256 identifiers are pending")

func dial(addr netip.AddrPort, secret []byte, cl *Client) (*conn, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	k := &conn{c: c, addr: addr, secret: secret, cl: cl}
	safe.Go("RADIUS reader", k.read)
	return k, nil
}

// take reserves a free identifier and makes the request that carries
// it (build encodes; no I/O) before any answer can be matched to it.
func (k *conn) take(build func(id byte) ([]byte, error)) (byte, *pending, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inUse == len(k.slots) {
		return 0, nil, errBusy
	}
	for k.slots[k.next] != nil {
		k.next = (k.next + 1) % len(k.slots)
	}
	id := byte(k.next)
	req, err := build(id)
	if err != nil {
		return 0, nil, err
	}
	k.next = (k.next + 1) % len(k.slots)
	p := &pending{req: req, ch: make(chan []byte, 1)}
	k.slots[id] = p
	k.inUse++
	return id, p, nil
}

// free gives the identifier back, unless an answer took it already.
func (k *conn) free(id byte, p *pending) {
	k.mu.Lock()
	if k.slots[id] == p {
		k.slots[id] = nil
		k.inUse--
	}
	k.mu.Unlock()
}

// read hands each verified answer to its exchange; everything else (a
// forgery, a corrupt packet, an answer nobody waits for) is counted and
// dropped.
func (k *conn) read() {
	buf := make([]byte, 4096)
	for {
		n, err := k.c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP unreachable and the like: the exchange times out
		}
		if n < 20 {
			k.drop(errMalformed)
			continue
		}
		id := buf[1]
		k.mu.Lock()
		p := k.slots[id]
		k.mu.Unlock()
		if p == nil {
			k.cl.Stats.Late.Add(1)
			continue
		}
		if err := verify(buf[:n], p.req, k.secret); err != nil {
			k.drop(err)
			continue
		}
		k.mu.Lock()
		mine := k.slots[id] == p
		if mine {
			k.slots[id] = nil
			k.inUse--
		}
		k.mu.Unlock()
		if mine {
			p.ch <- append([]byte(nil), buf[:n]...)
		}
	}
}

func (k *conn) close() { k.c.Close() }

func (k *conn) drop(why error) {
	k.cl.Stats.Dropped.Add(1)
	if k.cl.OnDrop != nil {
		k.cl.OnDrop(k.addr, why.Error())
	}
}

// Stats counts what the client dropped and why.
type Stats struct {
	Dropped  atomic.Int64 // answers that failed verification (forged, corrupt, unsigned)
	Late     atomic.Int64 // answers for an identifier nobody waits on (late or repeated)
	Timeouts atomic.Int64 // tries that got no answer in time
}
