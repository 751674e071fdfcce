// Package auth decides who sent a request: a subscriber proven by digest
// (R13), or a trusted peer recognised by its source address.
package auth

import (
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/authlimit"
	"github.com/softswitch/softswitch/core/digest"
	"github.com/softswitch/softswitch/core/events"
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
	Limiter *authlimit.Limiter
	Bus     *events.Bus  // bans are published here (nil: not published)
	Log     *slog.Logger // bans are logged here (nil: not logged)
	// OnPeers, when set, hears every new trusted peer list (the
	// admission gate gives trusted peers their own rate).
	OnPeers func([]Peer)
	peers   atomic.Pointer[[]Peer]
}

// SetPeers replaces the trusted peer list.
func (a *Authenticator) SetPeers(p []Peer) {
	a.peers.Store(&p)
	if a.OnPeers != nil {
		a.OnPeers(p)
	}
}

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
// give exactly the same outcome, after the same work. A source or user
// banned for guessing (core/authlimit) gets 403 without its credentials
// being checked: a right guess then looks like a wrong one.
func (a *Authenticator) Authenticate(req *sip.Request, proxy bool) Outcome {
	now := time.Now()
	challenge := Outcome{Status: 401, Reason: "Unauthorized"}
	hdr := "Authorization"
	if proxy {
		challenge = Outcome{Status: 407, Reason: "Proxy Authentication Required"}
		hdr = "Proxy-Authorization"
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
	src := sourceAddr(req.Source())
	if !a.Limiter.Allowed(src, creds.Username, now) {
		return Outcome{Status: 403, Reason: "Forbidden"}
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
		a.Limiter.Succeeded(src, creds.Username, now)
		return Outcome{Sub: sub, OK: true}
	case digest.Stale:
		challenge.Stale = true
		return challenge
	default:
		a.banned(a.Limiter.Failed(src, creds.Username, now))
		return challenge
	}
}

// banned reports new bans: a warning in the log (never a password: the
// user name and the source only) and an event for the alarm.
func (a *Authenticator) banned(bans []authlimit.Ban) {
	for _, b := range bans {
		if a.Log != nil {
			a.Log.Warn("authentication ban", "kind", b.Kind.String(), "source", b.Source, "user", b.User,
				"until", b.Until.UTC().Format(time.RFC3339), "level", b.Level)
		}
		if a.Bus != nil {
			a.Bus.Publish(&events.Event{Kind: events.AuthBan, Source: b.Source, AOR: b.User, State: "banned",
				Cause: b.Kind.String(), Until: b.Until, Level: b.Level})
		}
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

// sourceAddr is the address of a request's source (host:port); an
// unparseable one (never from a socket) counts as the unspecified address.
func sourceAddr(src string) netip.Addr {
	if ap, err := netip.ParseAddrPort(src); err == nil {
		return ap.Addr()
	}
	return netip.IPv4Unspecified()
}
