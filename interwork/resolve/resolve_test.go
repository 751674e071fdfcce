package resolve

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A DNS server inside the test (the system test uses dnsmasq): it serves a
// fixed zone and counts the questions it gets.
type zone struct {
	mu    sync.Mutex
	asked map[string]int
	rrs   []dns.RR
}

func (z *zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	z.mu.Lock()
	z.asked[dns.TypeToString[q.Qtype]+" "+q.Name]++
	z.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	for _, rr := range z.rrs {
		if rr.Header().Name == q.Name && rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	_ = w.WriteMsg(m)
}

func (z *zone) count(key string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.asked[key]
}

func startZone(t *testing.T, records ...string) (*zone, string) {
	t.Helper()
	z := &zone{asked: map[string]int{}}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		z.rrs = append(z.rrs, rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: z}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z, pc.LocalAddr().String()
}

func TestSRVOrderAndTTLCache(t *testing.T) {
	z, addr := startZone(t,
		"_sip._udp.carrier.test. 30 IN SRV 20 1 5062 b.carrier.test.",
		"_sip._udp.carrier.test. 30 IN SRV 10 1 5061 a.carrier.test.",
		"a.carrier.test. 30 IN A 192.0.2.1",
		"b.carrier.test. 60 IN A 192.0.2.2",
	)
	now := time.Unix(1_000_000, 0)
	r := &Resolver{Servers: []string{addr}, Now: func() time.Time { return now }}
	resolve := func() []Target {
		t.Helper()
		ts, err := r.Resolve(context.Background(), "carrier.test", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	ts := resolve()
	if len(ts) != 2 || ts[0].String() != "udp:192.0.2.1:5061" || ts[1].String() != "udp:192.0.2.2:5062" {
		t.Fatalf("targets %v, want a (priority 10) then b (20)", ts)
	}
	if z.count("NAPTR carrier.test.") != 1 || z.count("SRV _sip._udp.carrier.test.") != 1 || z.count("A a.carrier.test.") != 1 {
		t.Fatalf("questions: %v", z.asked)
	}
	now = now.Add(29 * time.Second)
	resolve()
	if z.count("SRV _sip._udp.carrier.test.") != 1 || z.count("A a.carrier.test.") != 1 {
		t.Errorf("asked again within the TTL: %v", z.asked)
	}
	now = now.Add(2 * time.Second) // 31 s: the 30 s records expired, b's A (60 s) did not
	resolve()
	if z.count("SRV _sip._udp.carrier.test.") != 2 || z.count("A a.carrier.test.") != 2 || z.count("A b.carrier.test.") != 1 {
		t.Errorf("after 31 s: %v", z.asked)
	}
}

func TestPortMeansAddressOnlyAndIPMeansNoDNS(t *testing.T) {
	z, addr := startZone(t, "gw.test. 30 IN A 192.0.2.9")
	r := &Resolver{Servers: []string{addr}}
	ts, err := r.Resolve(context.Background(), "gw.test", 5080, "tcp")
	if err != nil || len(ts) != 1 || ts[0].String() != "tcp:192.0.2.9:5080" {
		t.Fatalf("%v %v", ts, err)
	}
	if z.count("SRV _sip._tcp.gw.test.") != 0 || z.count("NAPTR gw.test.") != 0 {
		t.Errorf("a port was given, yet SRV/NAPTR were asked: %v", z.asked)
	}
	ts, err = r.Resolve(context.Background(), "198.51.100.7", 0, "")
	if err != nil || ts[0].String() != "udp:198.51.100.7:5060" {
		t.Errorf("IP: %v %v", ts, err)
	}
	if _, err := r.Resolve(context.Background(), "nowhere.test", 0, ""); err == nil {
		t.Error("a name without records resolved")
	}
}

func TestSRVWeightsAmongEqualPriority(t *testing.T) {
	r := &Resolver{}
	first := map[string]int{}
	for i := 0; i < 4000; i++ {
		recs := []*dns.SRV{
			{Priority: 1, Weight: 0, Target: "zero."},
			{Priority: 1, Weight: 90, Target: "heavy."},
			{Priority: 1, Weight: 10, Target: "light."},
			{Priority: 0, Weight: 1, Target: "first."},
		}
		out := r.orderSRV(recs)
		if out[0].Target != "first." || out[3].Target != "zero." {
			t.Fatalf("order %v %v %v %v", out[0].Target, out[1].Target, out[2].Target, out[3].Target)
		}
		first[out[1].Target]++
	}
	if first["heavy."] < 3400 || first["heavy."] > 3800 {
		t.Errorf("weight 90 of 100 came first %d of 4000 times", first["heavy."])
	}
}
