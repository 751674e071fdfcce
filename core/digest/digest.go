// Package digest is the server side of HTTP digest authentication for SIP
// (RFC 3261 §22, RFC 2617, RFC 7616/8760 for SHA-256): challenges,
// credential parsing, response checking, and nonces that expire and
// cannot be replayed.
package digest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Algorithm names as they appear on the wire.
const (
	MD5    = "MD5"
	SHA256 = "SHA-256"
)

// HA1 computes H(username:realm:password) for alg, hex encoded.
func HA1(alg, user, realm, password string) string {
	h := newHash(alg)
	h.Write([]byte(user + ":" + realm + ":" + password))
	return hex.EncodeToString(h.Sum(nil))
}

func newHash(alg string) hash.Hash {
	if alg == SHA256 {
		return sha256.New()
	}
	return md5.New()
}

func hexHash(alg string, parts ...string) string {
	h := newHash(alg)
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Credentials are the parameters of an Authorization or
// Proxy-Authorization header.
type Credentials struct {
	Username, Realm, Nonce, URI, Response, Algorithm, CNonce, Opaque, QOP, NC string
}

// ErrMalformed is returned for credentials that cannot be read.
var ErrMalformed = errors.New("malformed digest credentials")

// ParseCredentials reads `Digest k=v, k="v", ...`.
func ParseCredentials(v string) (*Credentials, error) {
	v = strings.TrimSpace(v)
	if len(v) < 7 || !strings.EqualFold(v[:6], "Digest") || (v[6] != ' ' && v[6] != '\t') {
		return nil, ErrMalformed
	}
	c := &Credentials{}
	s := v[7:]
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, ErrMalformed
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, "\"") {
			var b strings.Builder
			i := 1
			closed := false
			for ; i < len(s); i++ {
				ch := s[i]
				if ch == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if ch == '"' {
					closed = true
					break
				}
				b.WriteByte(ch)
			}
			if !closed {
				return nil, ErrMalformed
			}
			val = b.String()
			s = s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val = strings.TrimSpace(s[:end])
			s = s[end:]
		}
		switch key {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = val
		case "algorithm":
			c.Algorithm = val
		case "cnonce":
			c.CNonce = val
		case "opaque":
			c.Opaque = val
		case "qop":
			c.QOP = val
		case "nc":
			c.NC = val
		}
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" {
		return nil, ErrMalformed
	}
	if c.Algorithm == "" {
		c.Algorithm = MD5
	}
	return c, nil
}

// Result of a check.
type Result int

// Results. Callers must answer Unknown, Bad and Replayed identically so
// that nobody learns which users exist.
const (
	OK       Result = iota
	Stale           // valid response on an expired nonce: challenge with stale=true
	Bad             // wrong response, unknown user, foreign nonce, bad parameters
	Replayed        // nonce count not increasing
)

// Authority issues nonces and checks responses. Nonces are stateless
// (time, random and an HMAC under the Secret); only the highest nonce
// count per live nonce is remembered, for replay protection.
//
// The Secret is kept in the store, so that nonces stay valid across a
// restart (and, once the pair shares it, across a failover). The nonce
// counts are in memory: a clean shutdown hands them to the next start
// (Snapshot, Restore). A nonce the process cannot vouch for (issued
// before it started with no counts handed over, or under another key)
// is answered with a stale challenge when the password in it is right:
// the client re-authenticates at once, nothing is counted as a failure,
// and a response captured before a crash cannot be replayed after it.
type Authority struct {
	Realm    string
	Lifetime time.Duration

	algs atomic.Pointer[[]string] // offered, in order (SetAlgorithms)

	secret atomic.Pointer[Secret] // the key nonces are made and checked with (SetSecret)
	// OnCount, when set, hears each nonce count accepted (a pair's
	// replication sends it to the standby). Called under a lock: it must
	// not block.
	OnCount func(nonce string, nc uint64, expires int64)
	started time.Time    // nonces issued before this are vouched for only up to handedOver
	handed  atomic.Int64 // unix ns: the clean shutdown (or the active node's snapshot) whose counts Restore took over
	shards  [64]ncShard
}

// Secret is what makes nonces verifiable: keep it, and nonces outlive the
// process.
type Secret struct {
	Key    [32]byte `json:"key"`
	Opaque string   `json:"opaque"`
}

// NewSecret makes a random secret.
func NewSecret() Secret {
	var s Secret
	if _, err := rand.Read(s.Key[:]); err != nil {
		panic(err) // no entropy: nothing secure can run
	}
	var op [12]byte
	rand.Read(op[:])
	s.Opaque = hex.EncodeToString(op[:])
	return s
}

type ncShard struct {
	mu   sync.Mutex
	seen map[string]ncEntry
}

type ncEntry struct {
	NC      uint64 `json:"nc"`
	Expires int64  `json:"expires"`
}

// NewAuthority creates an authority with a fresh secret (a secret that
// lives only as long as the process: for tests and tools).
func NewAuthority(realm string, algorithms []string, lifetime time.Duration) *Authority {
	return NewAuthorityWith(realm, algorithms, lifetime, NewSecret())
}

// NewAuthorityWith creates an authority with a kept secret.
func NewAuthorityWith(realm string, algorithms []string, lifetime time.Duration, s Secret) *Authority {
	a := &Authority{Realm: realm, Lifetime: lifetime, started: time.Now()}
	a.secret.Store(&s)
	a.SetAlgorithms(algorithms)
	for i := range a.shards {
		a.shards[i].seen = make(map[string]ncEntry)
	}
	return a
}

// SetSecret replaces the key nonces are made and checked with: the
// standby of a pair takes its active node's, so that a nonce either gave
// is good at the other.
func (a *Authority) SetSecret(s Secret) { a.secret.Store(&s) }

// Secret is the key nonces are made and checked with.
func (a *Authority) Secret() Secret { return *a.secret.Load() }

// Count records a nonce count the active node of the pair accepted, so
// that a response replayed here after a takeover is refused.
func (a *Authority) Count(nonce string, nc uint64, expires int64) {
	sh := &a.shards[shardOf(nonce)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.seen[nonce]; !ok || e.NC < nc {
		sh.seen[nonce] = ncEntry{NC: nc, Expires: expires}
	}
}

// SetAlgorithms changes the algorithms offered, in order (at run time:
// digests checked by a RADIUS server are MD5 only).
func (a *Authority) SetAlgorithms(algs []string) {
	algs = append([]string(nil), algs...)
	a.algs.Store(&algs)
}

// Algorithms are the algorithms offered, in order.
func (a *Authority) Algorithms() []string { return *a.algs.Load() }

// NonceState is the nonce counts at a clean shutdown, for the next start.
type NonceState struct {
	Saved  time.Time          `json:"saved"`
	Counts map[string]ncEntry `json:"counts"`
}

// Snapshot takes the nonce counts (at shutdown, after the last request).
func (a *Authority) Snapshot(now time.Time) NonceState {
	st := NonceState{Saved: now, Counts: map[string]ncEntry{}}
	t := now.UnixNano()
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for k, e := range sh.seen {
			if e.Expires >= t {
				st.Counts[k] = e
			}
		}
		sh.mu.Unlock()
	}
	return st
}

// Restore takes over the counts of a clean shutdown: nonces issued up to
// then stay valid, with their replay protection. Call it before serving.
func (a *Authority) Restore(st NonceState) {
	for k, e := range st.Counts {
		a.Count(k, e.NC, e.Expires)
	}
	a.handed.Store(st.Saved.UnixNano())
}

const nonceRaw = 8 + 8 + 16

// NewNonce returns a fresh nonce.
func (a *Authority) NewNonce() string {
	var b [nonceRaw]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	rand.Read(b[8:16])
	key := a.secret.Load().Key
	m := hmac.New(sha256.New, key[:])
	m.Write(b[:16])
	copy(b[16:], m.Sum(nil)[:16])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nonceTime checks the nonce's MAC and returns when it was issued.
func (a *Authority) nonceTime(n string) (time.Time, bool) {
	if len(n) != base64.RawURLEncoding.EncodedLen(nonceRaw) {
		return time.Time{}, false
	}
	var b [nonceRaw]byte
	if _, err := base64.RawURLEncoding.Decode(b[:], []byte(n)); err != nil {
		return time.Time{}, false
	}
	key := a.secret.Load().Key
	m := hmac.New(sha256.New, key[:])
	m.Write(b[:16])
	if !hmac.Equal(m.Sum(nil)[:16], b[16:]) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

// Challenges returns one header value per configured algorithm, in order.
func (a *Authority) Challenges(stale bool) []string {
	algs := a.Algorithms()
	out := make([]string, 0, len(algs))
	nonce := a.NewNonce()
	opaque := a.secret.Load().Opaque
	for _, alg := range algs {
		var b strings.Builder
		b.WriteString(`Digest realm="`)
		b.WriteString(a.Realm)
		b.WriteString(`", nonce="`)
		b.WriteString(nonce)
		b.WriteString(`", opaque="`)
		b.WriteString(opaque)
		b.WriteString(`", algorithm=`)
		b.WriteString(alg)
		b.WriteString(`, qop="auth"`)
		if stale {
			b.WriteString(`, stale=true`)
		}
		out = append(out, b.String())
	}
	return out
}

// Check verifies c for method with the stored HA1 of c.Algorithm
// (ha1 == "" means the user is unknown; the same work is done anyway).
func (a *Authority) Check(c *Credentials, method, ha1 string) Result {
	alg, nc, ok := a.precheck(c)
	if !ok {
		return Bad
	}
	known := ha1 != ""
	if !known {
		ha1 = strings.Repeat("0", newHash(alg).Size()*2) // equal work for unknown users
	}
	ha2 := hexHash(alg, method, c.URI)
	want := hexHash(alg, ha1, c.Nonce, c.NC, c.CNonce, c.QOP, ha2)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(c.Response))) != 1 || !known {
		return Bad
	}
	return a.settle(c, nc)
}

// CheckWith verifies c with verify instead of a stored HA1: someone who
// holds the password (a RADIUS server) checks the response for the
// algorithm given. The nonce checks are Check's, after the response was
// found right, so a wrong password never learns whether its nonce was
// fresh. An error of verify (no answer) is returned as is, with Bad.
func (a *Authority) CheckWith(c *Credentials, verify func(alg string) (bool, error)) (Result, error) {
	alg, nc, ok := a.precheck(c)
	if !ok {
		return Bad, nil
	}
	good, err := verify(alg)
	if err != nil || !good {
		return Bad, err
	}
	return a.settle(c, nc), nil
}

// precheck checks what needs no password: an algorithm we offer, our
// realm, qop=auth with a cnonce, a well-formed nonce count.
func (a *Authority) precheck(c *Credentials) (alg string, nc uint64, ok bool) {
	alg = c.Algorithm
	okAlg := false
	for _, x := range a.Algorithms() {
		if strings.EqualFold(x, alg) {
			alg, okAlg = x, true
		}
	}
	if !okAlg || c.Realm != a.Realm || c.QOP != "auth" || c.CNonce == "" {
		return "", 0, false
	}
	nc, err := strconv.ParseUint(c.NC, 16, 64)
	if err != nil || len(c.NC) != 8 || nc == 0 {
		return "", 0, false
	}
	return alg, nc, true
}

// settle checks the nonce of a response found right: ours, fresh, and
// its count above any seen before (replay protection).
func (a *Authority) settle(c *Credentials, nc uint64) Result {
	issued, ours := a.nonceTime(c.Nonce)
	if !ours {
		return Stale // another key's nonce (the other node's, an old key's)
	}
	now := time.Now()
	if now.Sub(issued) > a.Lifetime || issued.After(now.Add(time.Minute)) {
		return Stale
	}
	// Replay protection: the nonce count must grow for every use of a nonce.
	sh := &a.shards[shardOf(c.Nonce)]
	sh.mu.Lock()
	e, seen := sh.seen[c.Nonce]
	if !seen && issued.Before(a.started) && issued.UnixNano() > a.handed.Load() {
		// Issued by a process that ended without handing its counts
		// over: this may be a replay of a response from before.
		sh.mu.Unlock()
		return Stale
	}
	if seen && nc <= e.NC {
		sh.mu.Unlock()
		return Replayed
	}
	exp := issued.Add(a.Lifetime).UnixNano()
	sh.seen[c.Nonce] = ncEntry{NC: nc, Expires: exp}
	if a.OnCount != nil {
		a.OnCount(c.Nonce, nc, exp)
	}
	sh.mu.Unlock()
	return OK
}

func shardOf(s string) int {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return int(h % 64)
}

// Purge forgets nonce counts of expired nonces; call it periodically.
func (a *Authority) Purge(now time.Time) {
	t := now.UnixNano()
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for k, e := range sh.seen {
			if e.Expires < t {
				delete(sh.seen, k)
			}
		}
		sh.mu.Unlock()
	}
}
