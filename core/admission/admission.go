// Package admission limits the request rate of each source address before
// any expensive work is done (like Kamailio's pike): a source that sends
// requests faster than its limit is blocked for a while and its datagrams
// are dropped unread. Trusted peers (trunks) have a limit of their own.
//
// The check is a token bucket per source address, in a sharded table of
// bounded size: one map lookup and a few arithmetic operations under a
// shard lock, no allocation for a source already known.
package admission

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

// Config sets the limits. A rate of 0 means no limit.
type Config struct {
	Rate        float64       // requests per second from one source
	Burst       float64       // requests a source may send at once above its rate
	TrustedRate float64       // the same for trusted peers; 0: unlimited
	Block       time.Duration // how long a source over its limit is blocked
	MaxSources  int           // sources tracked at most (a spoofed flood cannot grow the table)
}

const shards = 64

// Gate decides, per request, whether its source may be served.
type Gate struct {
	cfg     Config
	bus     *events.Bus
	trusted atomic.Pointer[trustTable]
	shard   [shards]shard
	blocked atomic.Int64 // requests dropped while their source was blocked
}

type trustTable struct {
	gen      uint32
	prefixes []netip.Prefix
}

type shard struct {
	mu  sync.Mutex
	src map[netip.Addr]*bucket
	_   [40]byte // keep shards on their own cache lines
}

type bucket struct {
	tokens  float64
	last    int64 // unix nanoseconds of the last refill
	until   int64 // blocked until (unix nanoseconds); 0: not blocked
	gen     uint32
	trusted bool
}

// New returns a gate with cfg's limits; bus (may be nil) gets an event
// when a source is blocked and when its block ends.
func New(cfg Config, bus *events.Bus) *Gate {
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 1 << 17
	}
	if cfg.Burst < 1 {
		cfg.Burst = 1
	}
	g := &Gate{cfg: cfg, bus: bus}
	for i := range g.shard {
		g.shard[i].src = make(map[netip.Addr]*bucket)
	}
	g.trusted.Store(&trustTable{})
	return g
}

// SetTrusted replaces the trusted peers' prefixes (at start and reload).
func (g *Gate) SetTrusted(p []netip.Prefix) {
	old := g.trusted.Load()
	g.trusted.Store(&trustTable{gen: old.gen + 1, prefixes: append([]netip.Prefix(nil), p...)})
}

func (t *trustTable) contains(ip netip.Addr) bool {
	for _, p := range t.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Admit reports whether a request from ip may be served now. It costs
// one shard lock; the bucket of a new source is the only allocation.
func (g *Gate) Admit(ip netip.Addr, now time.Time) bool {
	if g.cfg.Rate <= 0 && g.cfg.TrustedRate <= 0 {
		return true
	}
	ip = ip.Unmap()
	t := g.trusted.Load()
	ns := now.UnixNano()
	s := &g.shard[shardOf(ip)]
	s.mu.Lock()
	b := s.src[ip]
	if b == nil {
		if len(s.src) >= g.cfg.MaxSources/shards {
			s.evict(ns)
		}
		b = &bucket{last: ns, gen: t.gen, trusted: t.contains(ip)}
		b.tokens = g.burst(b)
		s.src[ip] = b
	} else if b.gen != t.gen {
		b.gen, b.trusted = t.gen, t.contains(ip)
	}
	rate := g.rate(b)
	if rate <= 0 {
		s.mu.Unlock()
		return true
	}
	if b.until != 0 {
		if ns < b.until {
			s.mu.Unlock()
			g.blocked.Add(1)
			return false
		}
		// The block is over: the source starts again with a full bucket
		// (Sweep announces the end; it may not have run yet).
		b.until, b.tokens, b.last = 0, g.burst(b), ns
		defer g.publish(ip, "unblocked", time.Time{})
	}
	b.tokens += float64(ns-b.last) / 1e9 * rate
	if max := g.burst(b); b.tokens > max {
		b.tokens = max
	}
	b.last = ns
	if b.tokens >= 1 {
		b.tokens--
		s.mu.Unlock()
		return true
	}
	b.until = ns + int64(g.cfg.Block)
	s.mu.Unlock()
	g.blocked.Add(1)
	g.publish(ip, "blocked", time.Unix(0, ns+int64(g.cfg.Block)))
	return false
}

func (g *Gate) rate(b *bucket) float64 {
	if b.trusted {
		return g.cfg.TrustedRate
	}
	return g.cfg.Rate
}

// burst scales with the rate: a trusted peer's burst is as many seconds
// of its rate as a stranger's.
func (g *Gate) burst(b *bucket) float64 {
	if b.trusted && g.cfg.Rate > 0 {
		return g.cfg.Burst * g.cfg.TrustedRate / g.cfg.Rate
	}
	return g.cfg.Burst
}

// evict makes room in a full shard: sources that are not blocked and
// have refilled their bucket (idle) go first; under a flood of spoofed
// addresses, any unblocked source goes (it starts again with a full
// bucket, the price of a bounded table). Caller holds s.mu.
func (s *shard) evict(ns int64) {
	n := 0
	for ip, b := range s.src {
		if b.until == 0 || ns >= b.until {
			delete(s.src, ip)
			if n++; n >= 64 {
				return
			}
		}
	}
}

func shardOf(ip netip.Addr) int {
	a := ip.As16()
	h := uint32(2166136261)
	for _, c := range a[8:] {
		h = (h ^ uint32(c)) * 16777619
	}
	return int(h % shards)
}

func (g *Gate) publish(ip netip.Addr, state string, until time.Time) {
	if g.bus == nil {
		return
	}
	g.bus.Publish(&events.Event{Kind: events.SourceBlock, Source: ip.String(), State: state, Until: until})
}

// Sweep forgets idle sources and announces ended blocks; run it about
// once a second.
func (g *Gate) Sweep(now time.Time) {
	ns := now.UnixNano()
	var ended []netip.Addr
	for i := range g.shard {
		s := &g.shard[i]
		s.mu.Lock()
		for ip, b := range s.src {
			switch {
			case b.until != 0 && ns >= b.until:
				b.until, b.tokens, b.last = 0, g.burst(b), ns
				ended = append(ended, ip)
			case b.until == 0 && g.rate(b) > 0 && float64(ns-b.last)/1e9*g.rate(b)+b.tokens >= g.burst(b):
				delete(s.src, ip) // full again: nothing to remember
			}
		}
		s.mu.Unlock()
	}
	for _, ip := range ended {
		g.publish(ip, "unblocked", time.Time{})
	}
}

// Block is a blocked source.
type Block struct {
	Source netip.Addr
	Until  time.Time
}

// Blocked lists the sources blocked now, in address order.
func (g *Gate) Blocked(now time.Time) []Block {
	ns := now.UnixNano()
	var out []Block
	for i := range g.shard {
		s := &g.shard[i]
		s.mu.Lock()
		for ip, b := range s.src {
			if b.until != 0 && ns < b.until {
				out = append(out, Block{Source: ip, Until: time.Unix(0, b.until)})
			}
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source.Less(out[j].Source) })
	return out
}

// Unblock lifts the block of ip; false if it was not blocked.
func (g *Gate) Unblock(ip netip.Addr, now time.Time) bool {
	ip = ip.Unmap()
	s := &g.shard[shardOf(ip)]
	s.mu.Lock()
	b := s.src[ip]
	ok := b != nil && b.until != 0 && now.UnixNano() < b.until
	if ok {
		b.until, b.tokens, b.last = 0, g.burst(b), now.UnixNano()
	}
	s.mu.Unlock()
	if ok {
		g.publish(ip, "unblocked", time.Time{})
	}
	return ok
}

// Dropped is the number of requests dropped because their source was
// blocked.
func (g *Gate) Dropped() int64 { return g.blocked.Load() }
