package admission

import (
	"net/netip"
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

var t0 = time.Unix(1_800_000_000, 0)

func TestFloodIsBlockedOthersServed(t *testing.T) {
	bus := events.New()
	var got []events.Event
	bus.Subscribe(func(e *events.Event) { got = append(got, *e) })
	g := New(Config{Rate: 10, Burst: 20, Block: time.Minute}, bus)
	flood, calm := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	admitted := 0
	// 100 requests in one second from one source: ten times its limit.
	for i := range 100 {
		now := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		if g.Admit(flood, now) {
			admitted++
		}
		if i%10 == 0 && !g.Admit(calm, now) {
			t.Fatalf("a source within its limit was refused at %d", i)
		}
	}
	if admitted < 20 || admitted > 32 {
		t.Fatalf("admitted %d of the flood, want its burst and rate (about 21-30)", admitted)
	}
	if len(got) != 1 || got[0].Kind != events.SourceBlock || got[0].State != "blocked" || got[0].Source != "192.0.2.1" {
		t.Fatalf("events %+v, want one block of 192.0.2.1", got)
	}
	if b := g.Blocked(t0.Add(2 * time.Second)); len(b) != 1 || b[0].Source != flood {
		t.Fatalf("Blocked = %v", b)
	}
	// Still blocked a little later even though it went quiet.
	if g.Admit(flood, t0.Add(30*time.Second)) {
		t.Fatal("admitted while blocked")
	}
	// The block ends: Sweep announces it and the source is served again.
	g.Sweep(t0.Add(62 * time.Second))
	if got[len(got)-1].State != "unblocked" {
		t.Fatalf("no unblocked event: %+v", got)
	}
	if !g.Admit(flood, t0.Add(62*time.Second)) {
		t.Fatal("not admitted after the block")
	}
	if g.Dropped() == 0 {
		t.Fatal("drops not counted")
	}
}

func TestTrustedPeersHaveTheirOwnLimit(t *testing.T) {
	g := New(Config{Rate: 1, Burst: 2, TrustedRate: 0, Block: time.Minute}, nil)
	g.SetTrusted([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")})
	trunk := netip.MustParseAddr("198.51.100.7")
	for i := range 10000 {
		if !g.Admit(trunk, t0.Add(time.Duration(i)*time.Microsecond)) {
			t.Fatalf("trusted peer (no limit) refused at %d", i)
		}
	}
	g = New(Config{Rate: 1, Burst: 2, TrustedRate: 100, Block: time.Minute}, nil)
	g.SetTrusted([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")})
	n := 0
	for i := range 1000 {
		if g.Admit(trunk, t0.Add(time.Duration(i)*time.Millisecond)) {
			n++
		}
	}
	// burst 200 (2 s of its rate) refilled at 100/s: empty after about
	// 222 ms at 1000/s, then blocked
	if n < 210 || n > 235 {
		t.Fatalf("trusted peer admitted %d at 1000/s, want about 222", n)
	}
	// A reload that makes a blocked stranger trusted lets it through.
	g = New(Config{Rate: 1, Burst: 1, TrustedRate: 0, Block: time.Minute}, nil)
	s := netip.MustParseAddr("203.0.113.9")
	g.Admit(s, t0)
	if g.Admit(s, t0) {
		t.Fatal("second request at once admitted with burst 1")
	}
	g.SetTrusted([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")})
	if !g.Admit(s, t0) {
		t.Fatal("trusted after reload, still refused")
	}
}

func TestTableIsBounded(t *testing.T) {
	g := New(Config{Rate: 1, Burst: 1, Block: time.Minute, MaxSources: 1024}, nil)
	for i := range 100000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.Admit(ip, t0)
	}
	n := 0
	for i := range g.shard {
		n += len(g.shard[i].src)
	}
	if n > 1024+shards {
		t.Fatalf("%d sources tracked, bound 1024", n)
	}
}

func TestUnblock(t *testing.T) {
	g := New(Config{Rate: 1, Burst: 1, Block: time.Hour}, nil)
	s := netip.MustParseAddr("2001:db8::1")
	g.Admit(s, t0)
	g.Admit(s, t0)
	if g.Admit(s, t0.Add(time.Minute)) {
		t.Fatal("not blocked")
	}
	if !g.Unblock(s, t0.Add(time.Minute)) || !g.Admit(s, t0.Add(time.Minute)) {
		t.Fatal("unblock did not lift the block")
	}
	if g.Unblock(netip.MustParseAddr("2001:db8::2"), t0) {
		t.Fatal("unblocked a source that was not blocked")
	}
}

func TestNoLimitsAdmitsAll(t *testing.T) {
	g := New(Config{}, nil)
	for i := range 1000 {
		if !g.Admit(netip.MustParseAddr("192.0.2.1"), t0.Add(time.Duration(i))) {
			t.Fatal("refused without limits")
		}
	}
}

func BenchmarkAdmit(b *testing.B) {
	g := New(Config{Rate: 1e9, Burst: 1e9, Block: time.Minute}, nil)
	ip := netip.MustParseAddr("192.0.2.1")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		g.Admit(ip, now)
	}
}
