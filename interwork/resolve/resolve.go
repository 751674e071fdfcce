// Package resolve locates SIP servers by RFC 3263: NAPTR to choose the
// transport, SRV for targets with priority and weight, A/AAAA for the
// addresses, with a cache that keeps each answer for its TTL. It asks the
// DNS servers it is given (never the machine's resolver unless told to),
// so a test can point it at a DNS server of its own.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Target is one place to send a request.
type Target struct {
	Addr      netip.AddrPort
	Transport string // udp or tcp
	Host      string // the SRV target or host name it came from
}

func (t Target) String() string { return t.Transport + ":" + t.Addr.String() }

// Resolver resolves and caches. The zero value is not usable: set Servers.
type Resolver struct {
	Servers []string      // DNS servers, host:port, asked in order
	Timeout time.Duration // per query and server; 2s by default
	MaxTTL  time.Duration // cap on how long an answer is kept; 1h by default
	NegTTL  time.Duration // how long "no such record" is kept; 30s by default
	Now     func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]cached
	rnd   *rand.Rand
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cached struct {
	rrs     []dns.RR
	expires time.Time
}

// ErrNotFound: the name has no usable records.
var ErrNotFound = errors.New("no DNS records")

// FromResolvConf returns the name servers of /etc/resolv.conf.
func FromResolvConf() ([]string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Resolve returns the targets for host, best first (RFC 3263 §4):
// an IP is used as it is; with a port, only A/AAAA are asked; with no
// transport, NAPTR picks one; then SRV (_sip._udp, _sip._tcp), ordered by
// priority and weighted at random among equals (RFC 2782); without any,
// A/AAAA on port 5060.
func (r *Resolver) Resolve(ctx context.Context, host string, port int, transport string) ([]Target, error) {
	transport = strings.ToLower(transport)
	if ip, err := netip.ParseAddr(host); err == nil {
		if port == 0 {
			port = 5060
		}
		return []Target{{Addr: netip.AddrPortFrom(ip, uint16(port)), Transport: orUDP(transport), Host: host}}, nil
	}
	if port != 0 {
		return r.addresses(ctx, host, port, orUDP(transport))
	}
	if transport == "" {
		if ts, err := r.naptr(ctx, host); err == nil && len(ts) > 0 {
			return ts, nil
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	protos := []string{transport}
	if transport == "" {
		protos = []string{"udp", "tcp"}
	}
	for _, p := range protos {
		ts, err := r.srv(ctx, "_sip._"+p+"."+host, p)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if len(ts) > 0 {
			return ts, nil
		}
	}
	return r.addresses(ctx, host, 5060, orUDP(transport))
}

func orUDP(t string) string {
	if t == "" {
		return "udp"
	}
	return t
}

func (r *Resolver) naptr(ctx context.Context, host string) ([]Target, error) {
	rrs, err := r.query(ctx, host, dns.TypeNAPTR)
	if err != nil {
		return nil, err
	}
	var recs []*dns.NAPTR
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NAPTR); ok && strings.EqualFold(n.Flags, "s") {
			switch strings.ToUpper(n.Service) {
			case "SIP+D2U", "SIP+D2T":
				recs = append(recs, n)
			}
		}
	}
	slices.SortStableFunc(recs, func(a, b *dns.NAPTR) int {
		if a.Order != b.Order {
			return int(a.Order) - int(b.Order)
		}
		return int(a.Preference) - int(b.Preference)
	})
	var out []Target
	for _, n := range recs {
		proto := "udp"
		if strings.EqualFold(n.Service, "SIP+D2T") {
			proto = "tcp"
		}
		ts, err := r.srv(ctx, strings.TrimSuffix(n.Replacement, "."), proto)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func (r *Resolver) srv(ctx context.Context, name, proto string) ([]Target, error) {
	rrs, err := r.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var recs []*dns.SRV
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok && s.Target != "." {
			recs = append(recs, s)
		}
	}
	var out []Target
	for _, s := range r.orderSRV(recs) {
		ts, err := r.addresses(ctx, strings.TrimSuffix(s.Target, "."), int(s.Port), proto)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

// orderSRV sorts by priority; among equal priorities it draws records at
// random in proportion to their weight (RFC 2782), zero weights last.
func (r *Resolver) orderSRV(recs []*dns.SRV) []*dns.SRV {
	slices.SortStableFunc(recs, func(a, b *dns.SRV) int { return int(a.Priority) - int(b.Priority) })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rnd == nil {
		r.rnd = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3263))
	}
	out := make([]*dns.SRV, 0, len(recs))
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].Priority == recs[i].Priority {
			j++
		}
		tier := append([]*dns.SRV(nil), recs[i:j]...)
		for len(tier) > 0 {
			total := 0
			for _, s := range tier {
				total += int(s.Weight)
			}
			k := 0
			if total > 0 {
				x := r.rnd.IntN(total)
				for ; k < len(tier) && x >= int(tier[k].Weight); k++ {
					x -= int(tier[k].Weight)
				}
			}
			out = append(out, tier[k])
			tier = append(tier[:k], tier[k+1:]...)
		}
		i = j
	}
	return out
}

func (r *Resolver) addresses(ctx context.Context, host string, port int, proto string) ([]Target, error) {
	var out []Target
	var firstErr error
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, host, qt)
		if err != nil {
			if !errors.Is(err, ErrNotFound) && firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, rr := range rrs {
			var ip net.IP
			switch a := rr.(type) {
			case *dns.A:
				ip = a.A
			case *dns.AAAA:
				ip = a.AAAA
			default:
				continue
			}
			if addr, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, Target{Addr: netip.AddrPortFrom(addr.Unmap(), uint16(port)), Transport: proto, Host: host})
			}
		}
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("%s: %w", host, ErrNotFound)
	}
	return out, nil
}

// query asks for one record type, from the cache while its TTL lasts.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	fq := dns.Fqdn(name)
	k := cacheKey{strings.ToLower(fq), qtype}
	now := r.now()
	r.mu.Lock()
	if c, ok := r.cache[k]; ok && now.Before(c.expires) {
		r.mu.Unlock()
		if len(c.rrs) == 0 {
			return nil, fmt.Errorf("%s %s: %w", name, dns.TypeToString[qtype], ErrNotFound)
		}
		return c.rrs, nil
	}
	r.mu.Unlock()

	if len(r.Servers) == 0 {
		return nil, errors.New("no DNS servers configured")
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(fq, qtype)
	m.RecursionDesired = true
	var lastErr error
	for _, srv := range r.Servers {
		c := &dns.Client{Net: "udp", Timeout: timeout}
		in, _, err := c.ExchangeContext(ctx, m, srv)
		if err == nil && in.Truncated {
			c.Net = "tcp"
			in, _, err = c.ExchangeContext(ctx, m, srv)
		}
		if err != nil {
			lastErr = err
			continue
		}
		if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
			lastErr = fmt.Errorf("%s %s: DNS answer %s", name, dns.TypeToString[qtype], dns.RcodeToString[in.Rcode])
			continue
		}
		var rrs []dns.RR
		ttl := r.maxTTL()
		for _, rr := range in.Answer {
			if rr.Header().Rrtype == qtype {
				rrs = append(rrs, rr)
				ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
			}
		}
		if len(rrs) == 0 {
			ttl = r.NegTTL
			if ttl == 0 {
				ttl = 30 * time.Second
			}
		}
		r.mu.Lock()
		if r.cache == nil {
			r.cache = map[cacheKey]cached{}
		}
		r.cache[k] = cached{rrs: rrs, expires: now.Add(ttl)}
		r.mu.Unlock()
		if len(rrs) == 0 {
			return nil, fmt.Errorf("%s %s: %w", name, dns.TypeToString[qtype], ErrNotFound)
		}
		return rrs, nil
	}
	return nil, fmt.Errorf("DNS %s %s: %w", name, dns.TypeToString[qtype], lastErr)
}

func (r *Resolver) maxTTL() time.Duration {
	if r.MaxTTL > 0 {
		return r.MaxTTL
	}
	return time.Hour
}

// HostPort formats a target address for sipgo (host:port).
func (t Target) HostPort() string {
	return net.JoinHostPort(t.Addr.Addr().String(), strconv.Itoa(int(t.Addr.Port())))
}
