// Package authlimit stops password guessing. It counts authentication
// failures per source (an IPv4 address, an IPv6 /64), per user at one
// source, and per user from anywhere, each in a sliding window, and bans
// the key that passes its limit: 15 minutes, then an hour, then longer,
// each ban longer than the last (the level is forgiven after a day
// without a ban).
//
// A ban never locks out who has proven themselves: a user that logged in
// successfully from a source lately keeps working from there while that
// source (a NAT with a misbehaving device behind it) or that user (a
// botnet guessing its password) is banned. What a ban does not spare is
// the user being guessed at the source guessing it. The trade-off: a new
// device behind a banned NAT cannot log in until the ban ends or an
// operator lifts it (docs/security.md).
//
// State is sharded (no lock shared by every request) and bounded: when a
// shard is full, entries with nothing to remember go first, then any
// entry but a ban.
package authlimit

import (
	"hash/maphash"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
)

// Config sets the limits. Zero values take the defaults of Default.
type Config struct {
	SourceFailures int           // failures from one source within SourceWindow
	SourceWindow   time.Duration // (all users)
	PairFailures   int           // failures for one user from one source within PairWindow
	PairWindow     time.Duration
	UserFailures   int // failures for one user from all sources within UserWindow
	UserWindow     time.Duration
	Bans           []time.Duration // ban lengths, one per level; the last repeats
	Forgive        time.Duration   // a key's level drops to 0 after this long without a ban
	LoginMemory    time.Duration   // a success keeps the user working at that source this long
	IPv6Prefix     int             // IPv6 sources are counted per prefix of this length
	MaxEntries     int             // bound on remembered keys
}

// Default is the configuration the daemon starts with.
func Default() Config {
	return Config{
		SourceFailures: 20, SourceWindow: time.Minute,
		PairFailures: 5, PairWindow: 10 * time.Minute,
		UserFailures: 30, UserWindow: 10 * time.Minute,
		Bans:        []time.Duration{15 * time.Minute, time.Hour, 4 * time.Hour, 24 * time.Hour},
		Forgive:     24 * time.Hour,
		LoginMemory: 24 * time.Hour,
		IPv6Prefix:  64,
		MaxEntries:  200000,
	}
}

// Kind of a banned key.
type Kind uint8

// What a ban applies to.
const (
	KindSource Kind = iota + 1 // every user from one source (but users with a recent login there)
	KindPair                   // one user from one source
	KindUser                   // one user from every source (but sources it logged in from lately)
)

func (k Kind) String() string {
	switch k {
	case KindSource:
		return "source"
	case KindPair:
		return "user at source"
	case KindUser:
		return "user"
	}
	return "?"
}

// Ban is one active ban.
type Ban struct {
	Kind   Kind
	Source string // the address or prefix ("" for KindUser)
	User   string // "" for KindSource
	Until  time.Time
	Level  int // 1 for a first ban
}

type entry struct {
	kind      Kind
	source    string
	user      string
	winStart  int64 // current window's start (unix nanos)
	cur, prev int
	banUntil  int64
	level     int
	lastBan   int64
	goodUntil int64 // pairs: a successful login keeps the user working here
}

type shard struct {
	mu sync.Mutex
	m  map[string]*entry
}

// Limiter counts failures and holds bans.
type Limiter struct {
	cfg    Config
	seed   maphash.Seed
	shards [64]shard
}

// New makes a limiter; zero settings take Default's.
func New(cfg Config) *Limiter {
	d := Default()
	orDefault(&cfg.SourceFailures, d.SourceFailures)
	orDefault(&cfg.SourceWindow, d.SourceWindow)
	orDefault(&cfg.PairFailures, d.PairFailures)
	orDefault(&cfg.PairWindow, d.PairWindow)
	orDefault(&cfg.UserFailures, d.UserFailures)
	orDefault(&cfg.UserWindow, d.UserWindow)
	orDefault(&cfg.Forgive, d.Forgive)
	orDefault(&cfg.LoginMemory, d.LoginMemory)
	orDefault(&cfg.MaxEntries, d.MaxEntries)
	if len(cfg.Bans) == 0 {
		cfg.Bans = d.Bans
	}
	if cfg.IPv6Prefix <= 0 || cfg.IPv6Prefix > 128 {
		cfg.IPv6Prefix = d.IPv6Prefix
	}
	l := &Limiter{cfg: cfg, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = map[string]*entry{}
	}
	return l
}

func orDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// SourceOf is the key a source address is counted under: the address for
// IPv4, its /64 (IPv6Prefix) for IPv6, where one host can rotate through
// the addresses of its prefix.
func (l *Limiter) SourceOf(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(l.cfg.IPv6Prefix)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

func sourceKey(src string) string     { return "s|" + src }
func pairKey(src, user string) string { return "p|" + src + "|" + user }
func userKey(user string) string      { return "u|" + user }

func (l *Limiter) shard(key string) *shard {
	return &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
}

// get returns the entry of key; with create it is made (evicting another
// when the shard is full). Caller holds s.mu.
func (l *Limiter) get(s *shard, key string, create bool, now int64, mk func() *entry) *entry {
	if e := s.m[key]; e != nil || !create {
		return e
	}
	if len(s.m) >= l.cfg.MaxEntries/len(l.shards)+1 {
		l.evict(s, now)
	}
	e := mk()
	s.m[key] = e
	return e
}

// evict makes room in a full shard: first entries with nothing to
// remember, then (rarely: only under a flood of new keys) one that is not
// an active ban. Caller holds s.mu.
func (l *Limiter) evict(s *shard, now int64) {
	freed := 0
	for k, e := range s.m {
		if l.idle(e, now) {
			delete(s.m, k)
			freed++
		}
	}
	if freed > 0 {
		return
	}
	for k, e := range s.m { // map order is random: a random victim
		if e.banUntil <= now {
			delete(s.m, k)
			return
		}
	}
}

// idle reports whether e remembers nothing that matters any more.
func (l *Limiter) idle(e *entry, now int64) bool {
	win := l.window(e.kind)
	return e.banUntil <= now && e.goodUntil <= now &&
		now-e.winStart > 2*int64(win) && (e.level == 0 || now-e.lastBan > int64(l.cfg.Forgive))
}

func (l *Limiter) window(k Kind) time.Duration {
	switch k {
	case KindSource:
		return l.cfg.SourceWindow
	case KindPair:
		return l.cfg.PairWindow
	}
	return l.cfg.UserWindow
}

func (l *Limiter) limit(k Kind) int {
	switch k {
	case KindSource:
		return l.cfg.SourceFailures
	case KindPair:
		return l.cfg.PairFailures
	}
	return l.cfg.UserFailures
}

// Allowed reports whether a login of user from ip may be checked at all.
// It answers the same whether user exists or not. A request without
// credentials (user "") is never refused: a challenge reveals nothing,
// and the phones behind a banned NAT must still be able to begin.
func (l *Limiter) Allowed(ip netip.Addr, user string, now time.Time) bool {
	if user == "" {
		return true
	}
	t := now.UnixNano()
	src := l.SourceOf(ip)
	pk := pairKey(src, user)
	ps := l.shard(pk)
	ps.mu.Lock()
	pair := ps.m[pk]
	pairBanned, good := false, false
	if pair != nil {
		pairBanned = pair.banUntil > t
		good = pair.goodUntil > t
	}
	ps.mu.Unlock()
	if pairBanned {
		return false
	}
	if good {
		return true
	}
	return !l.banned(sourceKey(src), t) && !l.banned(userKey(user), t)
}

func (l *Limiter) banned(key string, t int64) bool {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	return e != nil && e.banUntil > t
}

// Failed counts one failed login of user from ip and returns the bans it
// started (for the log and the event bus).
func (l *Limiter) Failed(ip netip.Addr, user string, now time.Time) []Ban {
	src := l.SourceOf(ip)
	var out []Ban
	add := func(kind Kind, key, source, u string) {
		if b, ok := l.fail(kind, key, source, u, now); ok {
			out = append(out, b)
		}
	}
	add(KindSource, sourceKey(src), src, "")
	if user != "" {
		add(KindPair, pairKey(src, user), src, user)
		add(KindUser, userKey(user), "", user)
	}
	return out
}

func (l *Limiter) fail(kind Kind, key, source, user string, now time.Time) (Ban, bool) {
	t := now.UnixNano()
	win := int64(l.window(kind))
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := l.get(s, key, true, t, func() *entry { return &entry{kind: kind, source: source, user: user, winStart: t} })
	if e.banUntil > t {
		return Ban{}, false // already banned: nothing more to count
	}
	// Sliding window: the previous window's count weighs by how much of
	// it still overlaps the last window length.
	switch el := t - e.winStart; {
	case el >= 2*win:
		e.prev, e.cur, e.winStart = 0, 0, t
	case el >= win:
		e.prev, e.cur, e.winStart = e.cur, 0, e.winStart+win
	}
	e.cur++
	weight := 1 - float64(t-e.winStart)/float64(win)
	if float64(e.cur)+float64(e.prev)*weight < float64(l.limit(kind)) {
		return Ban{}, false
	}
	if e.level > 0 && t-e.lastBan > int64(l.cfg.Forgive) {
		e.level = 0
	}
	d := l.cfg.Bans[min(e.level, len(l.cfg.Bans)-1)]
	e.level++
	e.lastBan = t
	e.banUntil = t + int64(d)
	e.cur, e.prev = 0, 0
	return Ban{Kind: kind, Source: source, User: user, Until: time.Unix(0, e.banUntil), Level: e.level}, true
}

// Succeeded notes a good login: the user keeps working from this source
// through source and user bans, and its failures here are forgiven.
func (l *Limiter) Succeeded(ip netip.Addr, user string, now time.Time) {
	src := l.SourceOf(ip)
	t := now.UnixNano()
	key := pairKey(src, user)
	s := l.shard(key)
	s.mu.Lock()
	e := l.get(s, key, true, t, func() *entry { return &entry{kind: KindPair, source: src, user: user, winStart: t} })
	e.goodUntil = t + int64(l.cfg.LoginMemory)
	e.cur, e.prev = 0, 0
	s.mu.Unlock()
}

// Bans lists the active bans, longest first.
func (l *Limiter) Bans(now time.Time) []Ban {
	t := now.UnixNano()
	var out []Ban
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, e := range s.m {
			if e.banUntil > t {
				out = append(out, Ban{Kind: e.kind, Source: e.source, User: e.user, Until: time.Unix(0, e.banUntil), Level: e.level})
			}
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Until.After(out[j].Until) })
	return out
}

// Unban lifts every ban of what (an IP address, an IPv6 prefix as shown
// in Bans, or a user) and forgets its failures and level. It returns the
// bans lifted.
func (l *Limiter) Unban(what string) []Ban {
	src := what
	if ip, err := netip.ParseAddr(what); err == nil {
		src = l.SourceOf(ip)
	}
	var out []Ban
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, e := range s.m {
			match := e.kind != KindUser && e.source == src || e.kind != KindSource && e.user == what
			if !match {
				continue
			}
			if e.banUntil > 0 {
				out = append(out, Ban{Kind: e.kind, Source: e.source, User: e.user, Until: time.Unix(0, e.banUntil), Level: e.level})
			}
			e.banUntil, e.level, e.cur, e.prev = 0, 0, 0, 0
		}
		s.mu.Unlock()
	}
	return out
}

// State is what a clean shutdown hands to the next start: the bans and
// logins to remember.
type State struct {
	Entries []SavedEntry `json:"entries"`
}

// SavedEntry is one remembered key.
type SavedEntry struct {
	Kind      Kind   `json:"kind"`
	Source    string `json:"source,omitempty"`
	User      string `json:"user,omitempty"`
	BanUntil  int64  `json:"ban_until,omitempty"`
	Level     int    `json:"level,omitempty"`
	LastBan   int64  `json:"last_ban,omitempty"`
	GoodUntil int64  `json:"good_until,omitempty"`
}

// Snapshot keeps bans, levels and logins (failure counts start afresh).
func (l *Limiter) Snapshot(now time.Time) State {
	t := now.UnixNano()
	var st State
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, e := range s.m {
			if e.banUntil > t || e.goodUntil > t || e.level > 0 && t-e.lastBan <= int64(l.cfg.Forgive) {
				st.Entries = append(st.Entries, SavedEntry{Kind: e.kind, Source: e.source, User: e.user,
					BanUntil: e.banUntil, Level: e.level, LastBan: e.lastBan, GoodUntil: e.goodUntil})
			}
		}
		s.mu.Unlock()
	}
	return st
}

// Restore takes a snapshot over (before serving).
func (l *Limiter) Restore(st State, now time.Time) {
	t := now.UnixNano()
	for _, x := range st.Entries {
		var key string
		switch x.Kind {
		case KindSource:
			key = sourceKey(x.Source)
		case KindPair:
			key = pairKey(x.Source, x.User)
		case KindUser:
			key = userKey(x.User)
		default:
			continue
		}
		if strings.ContainsRune(x.Source+x.User, 0) {
			continue
		}
		s := l.shard(key)
		s.mu.Lock()
		e := l.get(s, key, true, t, func() *entry { return &entry{kind: x.Kind, source: x.Source, user: x.User, winStart: t} })
		e.banUntil, e.level, e.lastBan, e.goodUntil = x.BanUntil, x.Level, x.LastBan, x.GoodUntil
		s.mu.Unlock()
	}
}
