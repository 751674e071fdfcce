package gateway

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/numbering"
)

func testSpec() Spec {
	return Spec{
		Gateways: []GatewaySpec{
			{Name: "a", Address: "127.0.0.1:5061"},
			{Name: "b", Address: "127.0.0.1:5062", MaxChannels: 2},
			{Name: "c", Address: "127.0.0.1:5063", MaxCPS: 3},
			{Name: "d", Address: "gw.example.net", Probe: true, ProbeEvery: "1s", DownAfter: 2, UpAfter: 2},
		},
		Groups: []GroupSpec{
			{Name: "main", Members: []MemberSpec{{Gateway: "a", Priority: 1, Weight: 70}, {Gateway: "b", Priority: 1, Weight: 30}, {Gateway: "c", Priority: 2}},
				FailoverCodes: []int{502, 480}, InviteTimeout: "1500ms"},
			{Name: "dns", Members: []MemberSpec{{Gateway: "d"}}},
		},
		Routes: []RouteSpec{{Name: "out", Group: "main", CalledOps: []string{"e164"}}, {Name: "far", Group: "dns"}},
	}
}

func mustCompile(t *testing.T, s Spec, prev *Set) *Set {
	t.Helper()
	set, err := Compile(s, prev)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestWeightedOrderWithinPriority(t *testing.T) {
	set := mustCompile(t, testSpec(), nil)
	grp := set.Route("out").Group
	r := rand.New(rand.NewPCG(3, 4))
	first := map[string]int{}
	for i := 0; i < 10000; i++ {
		o := grp.order(r)
		if len(o) != 3 || o[2].Name != "c" {
			t.Fatalf("order %v: priority 2 must come last", names(o))
		}
		first[o[0].Name]++
	}
	// 70/30 split: 7000 +- 3 % of 10,000 (about 6.5 standard deviations).
	if first["a"] < 6700 || first["a"] > 7300 {
		t.Errorf("a first %d of 10000 times, want about 7000", first["a"])
	}
}

func names(gs []*Gateway) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func TestChannelAndRateLimits(t *testing.T) {
	set := mustCompile(t, testSpec(), nil)
	b, c := set.Gateway("b"), set.Gateway("c")
	now := time.Unix(1000, 0)
	for i := 0; i < 2; i++ {
		if !b.Acquire(now) {
			t.Fatalf("b refused channel %d of 2", i+1)
		}
	}
	if b.Acquire(now) {
		t.Fatal("b took a third channel (max_channels 2)")
	}
	b.Release()
	if !b.Acquire(now) {
		t.Fatal("a released channel is free again")
	}
	for i := 0; i < 3; i++ {
		if !c.Acquire(now) {
			t.Fatalf("c call %d refused within its rate", i+1)
		}
	}
	if c.Acquire(now) {
		t.Fatal("c took a 4th call in one second (max_cps 3)")
	}
	if !c.Acquire(now.Add(time.Second)) {
		t.Fatal("c refused a call in the next second")
	}
	if got := b.Counters(); got.Active != 2 || got.Rejected != 1 || got.Out != 3 {
		t.Errorf("b counters %+v", got)
	}
}

func TestHuntSkipsFullGateways(t *testing.T) {
	set := mustCompile(t, testSpec(), nil)
	b := set.Gateway("b")
	b.Acquire(time.Now())
	b.Acquire(time.Now())
	for i := 0; i < 50; i++ {
		h := set.Hunt(set.Route("out"))
		for g := h.Next(time.Now()); g != nil; g = h.Next(time.Now()) {
			if g.Name == "b" {
				t.Fatal("hunt offered b with all its channels busy")
			}
			g.Release()
		}
	}
}

func TestFailoverCodes(t *testing.T) {
	grp := mustCompile(t, testSpec(), nil).Route("out").Group
	for _, c := range []int{503, 408, 502, 480} {
		if !grp.Failover(c) {
			t.Errorf("%d does not fail over", c)
		}
	}
	for _, c := range []int{404, 486, 603} {
		if grp.Failover(c) {
			t.Errorf("%d fails over", c)
		}
	}
	if grp.InviteTimeout != 1500*time.Millisecond {
		t.Errorf("invite timeout %v", grp.InviteTimeout)
	}
}

// proberBed is a prober announcing on a bus whose events got collects,
// and the test spec's gateway d.
func proberBed(t *testing.T) (*Prober, *Set, *Gateway, *[]string) {
	bus := events.New()
	got := &[]string{}
	bus.Subscribe(func(e *events.Event) { *got = append(*got, e.Gateway+":"+e.State) })
	set := mustCompile(t, testSpec(), nil)
	return &Prober{Bus: bus}, set, set.Gateway("d"), got
}

func TestProbeThresholdsAndLiveStateSurvivesReload(t *testing.T) {
	p, set, d, gotp := proberBed(t)
	p.Record(d, false)
	if d.State() != Up {
		t.Fatal("down after one failure (threshold 2)")
	}
	p.Record(d, false)
	if d.State() != Down {
		t.Fatal("not down after two failures")
	}
	// A reload keeps the state of a gateway with the same name.
	set2 := mustCompile(t, testSpec(), set)
	d2 := set2.Gateway("d")
	if d2.State() != Down {
		t.Fatal("reload forgot the gateway was down")
	}
	h := set2.Hunt(set2.Route("far"))
	if g := h.Next(time.Now()); g != nil {
		t.Fatal("hunt offered a down gateway")
	}
	p.Record(d2, true)
	p.Record(d2, false) // a failure resets the run of successes
	p.Record(d2, true)
	if d2.State() != Down {
		t.Fatal("up before two successes in a row")
	}
	p.Record(d2, true)
	if d2.State() != Up {
		t.Fatal("not up after two successes in a row")
	}
	if len((*gotp)) != 2 || (*gotp)[0] != "d:down" || (*gotp)[1] != "d:up" {
		t.Errorf("events %v", (*gotp))
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		mod func(*Spec)
		key string
	}{
		{func(s *Spec) { s.Gateways[0].Address = "" }, "gateway[0].address"},
		{func(s *Spec) { s.Gateways[0].Address = "1.2.3.4:99999" }, "gateway[0].address"},
		{func(s *Spec) { s.Gateways[1].Name = "a" }, "gateway[1].name"},
		{func(s *Spec) { s.Gateways[0].Transport = "sctp" }, "gateway[0].transport"},
		{func(s *Spec) { s.Gateways[0].ProbeEvery = "soon" }, "gateway[0].probe_interval"},
		{func(s *Spec) { s.Gateways[0].CalledOps = []string{"explode"} }, "gateway[0].called_ops"},
		{func(s *Spec) { s.Groups[0].Members[0].Gateway = "zz" }, "group[0].member[0].gateway"},
		{func(s *Spec) { s.Groups[0].FailoverCodes = []int{200} }, "group[0].failover_codes"},
		{func(s *Spec) { s.Groups[0].InviteTimeout = "1h" }, "group[0].invite_timeout"},
		{func(s *Spec) { s.Routes[0].Group = "none" }, "route[0].group"},
		{func(s *Spec) { s.Registrations = []RegistrationSpec{{Name: "up", Registrar: "10.0.0.1"}} }, "registration[0].name"},
	}
	for _, c := range cases {
		s := testSpec()
		c.mod(&s)
		_, err := Compile(s, nil)
		var fe *numbering.FieldError
		if !errors.As(err, &fe) || fe.Key != c.key {
			t.Errorf("want an error on %s, got %v", c.key, err)
		}
	}
}

func TestOverloadFeedbackShedsCalls(t *testing.T) {
	g := &Gateway{Name: "gw", live: &live{}}
	now := time.Unix(1_800_000_000, 0)
	if g.Shed(now) {
		t.Fatal("shed without feedback")
	}
	g.Feedback(100, 2*time.Second, 10, now)
	for range 100 {
		if !g.Shed(now.Add(time.Second)) {
			t.Fatal("oc=100 let a call through")
		}
	}
	if g.Shed(now.Add(3 * time.Second)) {
		t.Fatal("shed after oc-validity ended")
	}
	// An older value does not replace the one in force.
	g.Feedback(100, time.Minute, 20, now)
	g.Feedback(0, 0, 19, now)
	if !g.Shed(now.Add(time.Second)) {
		t.Fatal("older oc-seq ended the reduction")
	}
	g.Feedback(0, 0, 21, now)
	if g.Shed(now.Add(time.Second)) {
		t.Fatal("oc=0 did not end the reduction")
	}
	g.Feedback(30, time.Minute, 22, now)
	n := 0
	for range 10000 {
		if g.Shed(now) {
			n++
		}
	}
	if n < 2500 || n > 3500 {
		t.Fatalf("oc=30 shed %d of 10000", n)
	}
	if g.Counters().Rejected != int64(n)+101 {
		t.Fatalf("rejected %d, want %d", g.Counters().Rejected, n+101)
	}
}

// A gateway's outcomes: answers, failures and the last failure's status.
func TestOutcomes(t *testing.T) {
	g := mustCompile(t, Spec{Gateways: []GatewaySpec{{Name: "g1", Address: "192.0.2.1:5060"}}}, nil).Gateway("g1")
	for _, st := range []int{200, 503, 200, 408} {
		g.RecordOutcome(st)
	}
	if a, f, last := g.Outcomes(); a != 2 || f != 2 || last != 408 {
		t.Fatalf("answered %d failed %d last %d", a, f, last)
	}
}

// A standby adopts the active node's finding: announced once, and the
// probe runs start again from it.
func TestProberAdopt(t *testing.T) {
	p, _, d, gotp := proberBed(t)
	p.Adopt(d, true)
	p.Adopt(d, true)
	if d.State() != Down || len((*gotp)) != 1 || (*gotp)[0] != "d:down" {
		t.Fatalf("state %v, events %v", d.State(), (*gotp))
	}
	p.Record(d, true) // one success: UpAfter is more
	p.Adopt(d, false)
	if d.State() != Up || len((*gotp)) != 2 {
		t.Fatalf("state %v, events %v", d.State(), (*gotp))
	}
}
