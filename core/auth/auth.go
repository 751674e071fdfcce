// Package auth decides who sent a request: a subscriber proven by digest
// (R13), or a trusted peer recognised by its source address.
package auth

import (
	"context"
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
	// remote, when set, checks the digest responses of REGISTER and of
	// INVITE (aaa/: a RADIUS server that holds the passwords); nil: the
	// local subscriber table does (SetRemote).
	remote atomic.Pointer[remotes]
	peers  atomic.Pointer[[]Peer]
}

// Remote checks a digest response where the password is: true when it
// is right; an error when no server answered (the request then gets 503,
// and no failure counts against the user).
type Remote interface {
	CheckDigest(ctx context.Context, c *digest.Credentials, alg, method string) (bool, error)
}

type remotes struct{ register, call Remote }

// SetRemote makes the digests of REGISTER and of INVITE checked by these
// (nil: by the local table), from the next request on.
func (a *Authenticator) SetRemote(register, call Remote) {
	a.remote.Store(&remotes{register: register, call: call})
}

// remoteFor is what checks the digests of this kind (proxy: INVITE).
func (a *Authenticator) remoteFor(proxy bool) Remote {
	r := a.remote.Load()
	switch {
	case r == nil:
		return nil
	case proxy:
		return r.call
	}
	return r.register
}

// Remote reports whether requests of this kind (proxy: INVITE) are
// checked remotely, and may wait on the network.
func (a *Authenticator) Remote(proxy bool) bool { return a.remoteFor(proxy) != nil }

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
	Status int    // when !OK: 401/407 (challenge), 403, or 503 (the remote checker did not answer)
	Reason string // when !OK
	Stale  bool
}

// Authenticate checks req's Authorization (proxy=false, for REGISTER) or
// Proxy-Authorization (proxy=true). An unknown user and a wrong password
// give exactly the same outcome, after the same work. A source or user
// banned for guessing (core/authlimit) gets 403 without its credentials
// being checked: a right guess then looks like a wrong one.
func (a *Authenticator) Authenticate(req *sip.Request, proxy bool) Outcome {
	return a.AuthenticateCtx(context.Background(), req, proxy)
}

// AuthenticateCtx is Authenticate; a remote check (Remote) gives up when
// ctx ends (the caller cancelled).
func (a *Authenticator) AuthenticateCtx(ctx context.Context, req *sip.Request, proxy bool) Outcome {
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
	remote := a.remoteFor(proxy)
	if remote != nil {
		if !known {
			// The server knows the user; the local table, when it has
			// him, adds his account.
			sub = store.Subscriber{Number: creds.Username}
		}
		res, err := a.Digest.CheckWith(creds, func(alg string) (bool, error) {
			return remote.CheckDigest(ctx, creds, alg, string(req.Method))
		})
		if err != nil {
			return Outcome{Status: 503, Reason: "Service Unavailable"}
		}
		return a.settled(res, sub, src, creds.Username, now, challenge)
	}
	ha1 := ""
	if known {
		ha1 = sub.HA1MD5
		if creds.Algorithm == digest.SHA256 {
			ha1 = sub.HA1SHA256
		}
	}
	return a.settled(a.Digest.Check(creds, string(req.Method), ha1), sub, src, creds.Username, now, challenge)
}

// settled turns a digest check's result into the outcome, counting
// failures toward bans.
func (a *Authenticator) settled(res digest.Result, sub store.Subscriber, src netip.Addr, user string, now time.Time,
	challenge Outcome) Outcome {
	switch res {
	case digest.OK:
		a.Limiter.Succeeded(src, user, now)
		return Outcome{Sub: sub, OK: true}
	case digest.Stale:
		challenge.Stale = true
		return challenge
	default:
		a.banned(a.Limiter.Failed(src, user, now))
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

// Challenge writes the challenge headers of o onto res (for a 503: when
// to try again).
func (a *Authenticator) Challenge(res *sip.Response, o Outcome) {
	if o.Status == 503 {
		res.AppendHeader(sip.NewHeader("Retry-After", "10"))
		return
	}
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
