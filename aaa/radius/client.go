// Package radius is the switch's RADIUS client (RFC 2865, RFC 2866) over
// layeh.com/radius's packets: the exchange is ours. Every Access-Request
// carries a Message-Authenticator and every answer to one must carry a
// valid one (RFC 3579 §3.2; Blast-RADIUS, CVE-2024-3596): the library does
// neither. Servers are tried in the configured order; one that lets every
// try go unanswered is passed over for a while (dead-server detection)
// and tried again after it. Identifiers are per socket and never reused
// while their request may still be answered; a late, repeated or forged
// answer is dropped and counted.
package radius

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"layeh.com/radius"
)

// Server is one RADIUS server: its address (resolved when the
// configuration is read, so that no exchange waits on DNS) and secret.
type Server struct {
	Addr   netip.AddrPort
	Secret []byte
}

// Client exchanges requests with an ordered list of servers. Set the
// fields before the first Exchange.
type Client struct {
	Timeout  time.Duration // the first try's wait, doubled at each retransmission (default 1 s, at most 8 s)
	Tries    int           // sends to one server, the first included (default 3)
	DeadTime time.Duration // a server that answered none of them is passed over this long (default 30 s)
	// OnState hears a server going down (every try unanswered) and coming
	// back (answering again); it must not block.
	OnState func(addr netip.AddrPort, up bool)
	// OnDrop hears every answer dropped for failing verification (a
	// forgery, a corrupt packet, an unsigned Access-Accept); it must not
	// block.
	OnDrop func(addr netip.AddrPort, why string)
	Stats  Stats

	servers []*server
}

type server struct {
	Server
	mu        sync.Mutex
	conns     []*conn
	down      bool
	deadUntil time.Time
}

// maxConns caps the sockets to one server: 16 x 256 requests pending.
const maxConns = 16

// ErrAllDown: every server is passed over as dead; nothing was sent.
var ErrAllDown = errors.New("radius: every server is down")

// errTimeout: a server let every try go unanswered.
var errTimeout = errors.New("no answer")

// New is a client of servers, in the order they are tried.
func New(servers []Server) *Client {
	c := &Client{}
	for _, s := range servers {
		c.servers = append(c.servers, &server{Server: s})
	}
	return c
}

// Close closes the sockets; exchanges under way end with an error.
func (c *Client) Close() {
	for _, s := range c.servers {
		s.mu.Lock()
		for _, k := range s.conns {
			k.close()
		}
		s.conns = nil
		s.mu.Unlock()
	}
}

// Exchange sends p to the first server that is not down and returns its
// verified answer; a server that does not answer makes the next one
// tried, with a new identifier. It gives up when ctx ends. p is the
// caller's; Exchange sets its Identifier, Secret and Message-Authenticator.
func (c *Client) Exchange(ctx context.Context, p *radius.Packet) (*radius.Packet, error) {
	var last error = ErrAllDown
	now := time.Now()
	for _, s := range c.servers {
		if !s.usable(now) {
			continue
		}
		resp, err := c.try(ctx, s, p)
		if err == nil {
			c.mark(s, true)
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, errTimeout) {
			c.mark(s, false)
		}
		last = fmt.Errorf("radius server %s: %w", s.Addr, err)
	}
	return nil, last
}

func (s *server) usable(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.down || !now.Before(s.deadUntil)
}

// mark records that s answered (up) or let every try go unanswered.
func (c *Client) mark(s *server, up bool) {
	s.mu.Lock()
	changed := s.down == up
	s.down = !up
	if !up {
		s.deadUntil = time.Now().Add(c.deadTime())
	}
	s.mu.Unlock()
	if changed && c.OnState != nil {
		c.OnState(s.Addr, up)
	}
}

// try sends p to s, retransmitting the same packet (same identifier and
// authenticator, RFC 5080 §2.2.1) until an answer or the last timeout.
func (c *Client) try(ctx context.Context, s *server, p *radius.Packet) (*radius.Packet, error) {
	k, id, pend, err := s.acquire(func(id byte) ([]byte, error) {
		p.Identifier = id
		return encode(p, s.Secret)
	}, c)
	if err != nil {
		return nil, err
	}
	defer k.free(id, pend)
	wait := c.timeout()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for sent := 1; ; {
		k.c.Write(pend.req) // a failed send is a try without answer
		select {
		case b := <-pend.ch:
			return radius.Parse(b, s.Secret)
		case <-timer.C:
			c.Stats.Timeouts.Add(1)
			if sent >= c.tries() {
				return nil, errTimeout
			}
			sent++
			wait = min(2*wait, 8*time.Second)
			timer.Reset(wait)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// acquire finds a socket with a free identifier, opening one more when
// all are full (a socket and connect(2) to an address: no DNS, no packet
// sent, so the lock is held over no I/O that waits).
func (s *server) acquire(build func(byte) ([]byte, error), cl *Client) (*conn, byte, *pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.conns {
		id, p, err := k.take(build)
		if err == nil {
			return k, id, p, nil
		}
		if !errors.Is(err, errBusy) {
			return nil, 0, nil, err
		}
	}
	if len(s.conns) >= maxConns {
		return nil, 0, nil, errBusy
	}
	k, err := dial(s.Addr, s.Secret, cl)
	if err != nil {
		return nil, 0, nil, err
	}
	s.conns = append(s.conns, k)
	id, p, err := k.take(build)
	return k, id, p, err
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return time.Second
}

func (c *Client) tries() int {
	if c.Tries > 0 {
		return c.Tries
	}
	return 3
}

func (c *Client) deadTime() time.Duration {
	if c.DeadTime > 0 {
		return c.DeadTime
	}
	return 30 * time.Second
}
