package authlimit

import (
	"net/netip"
	"testing"
	"time"
)

var (
	nat  = netip.MustParseAddr("198.51.100.7")
	far  = netip.MustParseAddr("203.0.113.9")
	t0   = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v6a  = netip.MustParseAddr("2001:db8:1:2::1")
	v6b  = netip.MustParseAddr("2001:db8:1:2:ffff::77")
	v6c  = netip.MustParseAddr("2001:db8:1:3::1")
	cfg1 = Config{SourceFailures: 10, PairFailures: 3, UserFailures: 6, Bans: []time.Duration{15 * time.Minute, time.Hour, 4 * time.Hour}}
)

func fail(l *Limiter, ip netip.Addr, user string, n int, at time.Time) (bans []Ban) {
	for range n {
		bans = append(bans, l.Failed(ip, user, at)...)
	}
	return bans
}

// Guessing one user's password from one source: banned after the pair's
// limit, for 15 minutes, then an hour, then four; a right guess meanwhile
// is not even checked (Allowed is false).
func TestPairBanEscalates(t *testing.T) {
	l := New(cfg1)
	now := t0
	for i, want := range []time.Duration{15 * time.Minute, time.Hour, 4 * time.Hour, 4 * time.Hour} {
		if !l.Allowed(nat, "1002", now) {
			t.Fatalf("round %d: banned before failing", i)
		}
		bans := fail(l, nat, "1002", 3, now)
		if len(bans) != 1 || bans[0].Kind != KindPair || bans[0].Until.Sub(now) != want || bans[0].Level != i+1 {
			t.Fatalf("round %d: bans %+v", i, bans)
		}
		if l.Allowed(nat, "1002", now.Add(want-time.Second)) {
			t.Fatalf("round %d: allowed during the ban", i)
		}
		now = now.Add(want + time.Second)
	}
	// A day without a ban forgives the level.
	now = now.Add(25 * time.Hour)
	if bans := fail(l, nat, "1002", 3, now); len(bans) != 1 || bans[0].Level != 1 {
		t.Fatalf("after a quiet day: %+v", bans)
	}
}

// The window slides: failures spread thinner than the limit never ban.
func TestSlidingWindow(t *testing.T) {
	l := New(Config{SourceFailures: 10, SourceWindow: time.Minute, PairFailures: 100, UserFailures: 100})
	now := t0
	for i := range 100 {
		if bans := l.Failed(nat, "u", now); len(bans) > 0 {
			t.Fatalf("failure %d at 1 per 7 s banned: %+v", i, bans)
		}
		now = now.Add(7 * time.Second)
	}
	// ...but a burst right after the window rolls does (the old window
	// still counts, weighted).
	l2 := New(Config{SourceFailures: 10, SourceWindow: time.Minute, PairFailures: 100, UserFailures: 100})
	fail(l2, nat, "u", 8, t0.Add(50*time.Second))
	if bans := fail(l2, nat, "u", 4, t0.Add(61*time.Second)); len(bans) != 1 || bans[0].Kind != KindSource {
		t.Fatalf("a burst across the window edge: %+v", bans)
	}
}

// A NAT with a device guessing many users: the source is banned, but a
// user that logged in from there lately keeps working; a new user there
// does not (the documented trade-off); another source is unaffected.
func TestSourceBanSparesKnownLogins(t *testing.T) {
	l := New(cfg1)
	l.Succeeded(nat, "1001", t0)
	now := t0.Add(time.Minute)
	var bans []Ban
	for i := range 10 {
		bans = append(bans, l.Failed(nat, "scan"+string(rune('a'+i)), now)...)
	}
	if len(bans) != 1 || bans[0].Kind != KindSource || bans[0].Source != "198.51.100.7" {
		t.Fatalf("bans %+v", bans)
	}
	if !l.Allowed(nat, "1001", now) {
		t.Fatal("a user with a recent login from the NAT was locked out")
	}
	if l.Allowed(nat, "1003", now) {
		t.Fatal("a user never seen at the banned source was allowed")
	}
	if !l.Allowed(far, "1003", now) {
		t.Fatal("another source was banned")
	}
	if !l.Allowed(nat, "", now) {
		t.Fatal("a request without credentials must be challenged, not refused")
	}
	// The login memory ends.
	if l.Allowed(nat, "1001", t0.Add(25*time.Hour)) != true {
		t.Fatal("the source ban (15 min) is long over")
	}
}

// A botnet guessing one user from many sources bans the user, except
// where it logged in lately.
func TestUserBanFromManySources(t *testing.T) {
	l := New(cfg1)
	l.Succeeded(nat, "1002", t0)
	var bans []Ban
	for i := range 6 {
		ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		bans = append(bans, l.Failed(ip, "1002", t0)...)
	}
	if len(bans) != 1 || bans[0].Kind != KindUser || bans[0].User != "1002" {
		t.Fatalf("bans %+v", bans)
	}
	if l.Allowed(far, "1002", t0) {
		t.Fatal("banned user allowed from a new source")
	}
	if !l.Allowed(nat, "1002", t0) {
		t.Fatal("banned user refused where it logged in lately")
	}
}

// IPv6 sources count per /64: rotating addresses of one prefix do not
// escape, another prefix is another source.
func TestIPv6Prefix(t *testing.T) {
	l := New(cfg1)
	fail(l, v6a, "x", 5, t0)
	bans := fail(l, v6b, "y", 5, t0)
	if len(bans) != 2 || bans[1].Kind != KindSource || bans[1].Source != "2001:db8:1:2::/64" {
		t.Fatalf("bans %+v", bans)
	}
	if l.Allowed(v6b, "z", t0) || !l.Allowed(v6c, "z", t0) {
		t.Fatal("the /64 is banned, the next one is not")
	}
}

// An unknown user and a wrong password are the same to the limiter; an
// operator's unban lifts every ban of an address or a user.
func TestUnban(t *testing.T) {
	l := New(cfg1)
	fail(l, nat, "1002", 3, t0)
	fail(l, nat, "nosuchuser", 7, t0)
	if n := len(l.Bans(t0)); n != 4 { // pairs 1002 and nosuchuser, the source, the user nosuchuser
		t.Fatalf("%d bans: %+v", n, l.Bans(t0))
	}
	if lifted := l.Unban("198.51.100.7"); len(lifted) != 3 {
		t.Fatalf("lifted %+v", lifted)
	}
	if !l.Allowed(nat, "1002", t0) || len(l.Bans(t0)) != 1 {
		t.Fatal("still banned after unban")
	}
	fail(l, far, "1002", 3, t0)
	if lifted := l.Unban("1002"); len(lifted) != 2 || !l.Allowed(far, "1002", t0) { // the pair at far, and the user (6 failures in all)
		t.Fatalf("unban by user: %+v", lifted)
	}
}

// Memory is bounded: a flood of new keys evicts, bans survive it.
func TestBounded(t *testing.T) {
	l := New(Config{MaxEntries: 640, PairFailures: 3, SourceFailures: 1000, UserFailures: 1000})
	fail(l, nat, "1002", 3, t0)
	for i := range 20000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Failed(ip, "u"+string(rune(i)), t0)
	}
	n := 0
	for i := range l.shards {
		n += len(l.shards[i].m)
	}
	if n > 640+len(l.shards) {
		t.Fatalf("%d entries kept, limit 640", n)
	}
	if l.Allowed(nat, "1002", t0) {
		t.Fatal("a ban was evicted by the flood")
	}
}

// A clean restart keeps bans and logins.
func TestSnapshotRestore(t *testing.T) {
	l := New(cfg1)
	l.Succeeded(far, "1001", t0)
	fail(l, nat, "1002", 3, t0)
	l2 := New(cfg1)
	l2.Restore(l.Snapshot(t0), t0)
	if l2.Allowed(nat, "1002", t0.Add(time.Minute)) {
		t.Fatal("ban lost across restart")
	}
	fail(l2, far, "scan", 10, t0) // bans the far source
	if !l2.Allowed(far, "1001", t0) {
		t.Fatal("login memory lost across restart")
	}
}

func BenchmarkAllowedFailed(b *testing.B) {
	l := New(Default())
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			ip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
			l.Allowed(ip, "1001", t0)
			i++
		}
	})
}
