// Package auth decides who sent a request: a subscriber proven by digest
// (R13), or a trusted peer recognised by its source address.
package auth

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/digest"
	"github.com/softswitch/softswitch/core/store"
)

// Subscribers is the in-memory subscriber table, swapped whole on reload.
type Subscribers struct {
	m atomic.Pointer[map[string]store.Subscriber]
}

// Set replaces the table.
func (s *Subscribers) Set(subs []store.Subscriber) {
	m := make(map[string]store.Subscriber, len(subs))
	for _, x := range subs {
		m[x.Number] = x
	}
	s.m.Store(&m)
}

// Get finds a subscriber by number.
func (s *Subscribers) Get(number string) (store.Subscriber, bool) {
	p := s.m.Load()
	if p == nil {
		return store.Subscriber{}, false
	}
	x, ok := (*p)[number]
	return x, ok
}

// Peer is a trusted source.
type Peer struct {
	Name   string
	Prefix netip.Prefix
}

// Authenticator checks digest credentials and trusted sources.
type Authenticator struct {
	Digest  *digest.Authority
	Subs    *Subscribers
	Limiter *digest.Limiter
	peers   atomic.Pointer[[]Peer]
}

// SetPeers replaces the trusted peer list.
func (a *Authenticator) SetPeers(p []Peer) { a.peers.Store(&p) }

// TrustedPeer returns the peer name when src (ip:port) is trusted.
func (a *Authenticator) TrustedPeer(src string) (string, bool) {
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return "", false
	}
	ip := ap.Addr().Unmap()
	p := a.peers.Load()
	if p == nil {
		return "", false
	}
	for _, x := range *p {
		if x.Prefix.Contains(ip) {
			return x.Name, true
		}
	}
	return "", false
}

// Outcome of Authenticate.
type Outcome struct {
	Sub    store.Subscriber
	OK     bool
	Status int    // when !OK: 401/407 (challenge) or 403
	Reason string // when !OK
	Stale  bool
}

// Authenticate checks req's Authorization (proxy=false, for REGISTER) or
// Proxy-Authorization (proxy=true). An unknown user and a wrong password
// give exactly the same outcome.
func (a *Authenticator) Authenticate(req *sip.Request, proxy bool) Outcome {
	now := time.Now()
	src := sourceIP(req.Source())
	challenge := Outcome{Status: 401, Reason: "Unauthorized"}
	hdr := "Authorization"
	if proxy {
		challenge = Outcome{Status: 407, Reason: "Proxy Authentication Required"}
		hdr = "Proxy-Authorization"
	}
	if a.Limiter.Blocked(src, now) {
		return Outcome{Status: 403, Reason: "Forbidden"}
	}
	var creds *digest.Credentials
	for _, h := range req.GetHeaders(hdr) {
		c, err := digest.ParseCredentials(h.Value())
		if err == nil && c.Realm == a.Digest.Realm {
			creds = c
			break
		}
	}
	if creds == nil {
		return challenge
	}
	sub, known := a.Subs.Get(creds.Username)
	ha1 := ""
	if known {
		ha1 = sub.HA1MD5
		if creds.Algorithm == digest.SHA256 {
			ha1 = sub.HA1SHA256
		}
	}
	switch a.Digest.Check(creds, string(req.Method), ha1) {
	case digest.OK:
		return Outcome{Sub: sub, OK: true}
	case digest.Stale:
		challenge.Stale = true
		return challenge
	default:
		a.Limiter.Fail(src, now)
		return challenge
	}
}

// Challenge writes the challenge headers of o onto res.
func (a *Authenticator) Challenge(res *sip.Response, o Outcome) {
	name := "WWW-Authenticate"
	if o.Status == 407 {
		name = "Proxy-Authenticate"
	}
	if o.Status != 401 && o.Status != 407 {
		return
	}
	for _, v := range a.Digest.Challenges(o.Stale) {
		res.AppendHeader(sip.NewHeader(name, v))
	}
}

func sourceIP(src string) string {
	if ap, err := netip.ParseAddrPort(src); err == nil {
		return ap.Addr().String()
	}
	return src
}
