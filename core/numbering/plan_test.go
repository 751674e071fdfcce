package numbering

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func compile(t *testing.T, s Spec) *Plan {
	t.Helper()
	if s.Settings == (Settings{}) {
		s.Settings = DefaultSettings()
		s.Settings.CountryCode = "49"
		s.Settings.Timezone = "UTC"
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTrieLongestAndAll(t *testing.T) {
	tr := buildTrie([]kv{{"1", 1}, {"12", 2}, {"1234", 4}, {"+49", 5}, {"*#", 6}, {"", 0}})
	cases := map[string]int32{"1299": 2, "12345": 4, "1": 1, "9": 0, "+4930": 5, "+4": 0, "*#1": 6, "123": 2}
	for n, want := range cases {
		if v, _ := tr.longest(n); v != want {
			t.Errorf("longest(%q) = %d, want %d", n, v, want)
		}
	}
	var buf [MaxPrefix + 1]int32
	if k := tr.matches("12345", &buf); k != 4 || buf[0] != 0 || buf[1] != 1 || buf[2] != 2 || buf[3] != 4 {
		t.Errorf("matches = %v", buf[:k])
	}
	if _, ok := buildTrie(nil).longest("1"); ok {
		t.Error("empty trie matched")
	}
}

// The trie against a brute-force scan, on random prefix sets.
func TestTrieAgainstScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		set := map[string]int32{}
		for i := 0; i < 500; i++ {
			set[randDigits(r, 1+r.IntN(6))] = int32(i)
		}
		var items []kv
		for k, v := range set {
			items = append(items, kv{k, v})
		}
		tr := buildTrie(items)
		for i := 0; i < 2000; i++ {
			n := randDigits(r, 1+r.IntN(12))
			want, best := int32(-1), -1
			for k, v := range set {
				if strings.HasPrefix(n, k) && len(k) > best {
					want, best = v, len(k)
				}
			}
			if got, _ := tr.longest(n); got != want {
				t.Fatalf("longest(%q) = %d, want %d", n, got, want)
			}
		}
	}
}

func randDigits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

func TestAnalysisLongestPrefixAndConditions(t *testing.T) {
	p := compile(t, Spec{Analysis: []EntrySpec{
		{Prefix: "", Action: ActionRoute, Route: "default"},
		{Prefix: "0", Action: ActionRoute, Route: "national"},
		{Prefix: "030", Action: ActionRoute, Route: "berlin"},
		{Prefix: "030", CallingPrefix: "040", Action: ActionRoute, Route: "berlin-from-hamburg"},
		{Prefix: "030", Trunk: "carrier-b", Action: ActionRoute, Route: "berlin-via-b"},
		{Prefix: "0800", Time: []string{"Mon-Fri 08:00-18:00"}, Action: ActionRoute, Route: "freephone-day"},
		{Prefix: "0800", Action: ActionRoute, Route: "freephone-night"},
		{Prefix: "0900", Action: ActionRefuse, Status: 403, Cause: 21},
		{Prefix: "+49", Action: ActionLocal},
	}})
	monday10 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	sunday10 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in    Input
		route string
	}{
		{Input{Called: "0301234", Calling: "0891", Now: monday10}, "berlin"},
		{Input{Called: "0301234", Calling: "0401", Now: monday10}, "berlin-from-hamburg"},
		{Input{Called: "0301234", Calling: "0401", Trunk: "carrier-b", Now: monday10}, "berlin-via-b"},
		{Input{Called: "0891234", Now: monday10}, "national"},
		{Input{Called: "1234", Now: monday10}, "default"},
		{Input{Called: "08001234", Now: monday10}, "freephone-day"},
		{Input{Called: "08001234", Now: sunday10}, "freephone-night"},
	}
	for _, c := range cases {
		r := p.Analyse(c.in)
		if r.Refusal != nil || r.Action != ActionRoute || r.Route != c.route {
			t.Errorf("%+v: got %+v, want route %s", c.in, r, c.route)
		}
	}
	if r := p.Analyse(Input{Called: "09001234"}); r.Refusal == nil || r.Refusal.Status != 403 || r.Refusal.Cause != 21 {
		t.Errorf("0900: %+v", r)
	}
	if r := p.Analyse(Input{Called: "+49301234"}); r.Action != ActionLocal {
		t.Errorf("+49: %+v", r)
	}
}

func TestAnalysisManipulationOrder(t *testing.T) {
	p := compile(t, Spec{
		Trunks: []TrunkSpec{{Name: "carrier-a", CalledOps: []string{"replace 1010"}, CallingOps: []string{"e164"}}},
		Analysis: []EntrySpec{
			{Prefix: "0", Action: ActionRoute, Route: "out", CalledOps: []string{"e164"}},
			{Prefix: "1010", Action: ActionRoute, Route: "cs"},
		},
	})
	// The trunk's manipulation happens before the lookup: 1010 is gone.
	r := p.Analyse(Input{Called: "1010030123", Calling: "0401234", Trunk: "carrier-a"})
	if r.Route != "out" || r.Called != "+4930123" || r.Calling != "+49401234" {
		t.Errorf("trunk then entry: %+v", r)
	}
	r = p.Analyse(Input{Called: "1010030123", Calling: "0401234"})
	if r.Route != "cs" || r.Called != "1010030123" {
		t.Errorf("no trunk plan: %+v", r)
	}
}

func TestRedirectContact(t *testing.T) {
	p := compile(t, Spec{Analysis: []EntrySpec{
		{Prefix: "0301", Action: ActionRedirect, Contact: "sip:{called}@ported.example.net", CalledOps: []string{"insert 0 99"}},
	}})
	r := p.Analyse(Input{Called: "03011"})
	if r.Action != ActionRedirect || r.Contact != "sip:9903011@ported.example.net" {
		t.Errorf("%+v", r)
	}
}

func TestLists(t *testing.T) {
	p := compile(t, Spec{
		Analysis: []EntrySpec{
			{Prefix: "112", Action: ActionRoute, Route: "emergency", BypassLists: true},
			{Prefix: "", Action: ActionRoute, Route: "default"},
		},
		Lists: []ListSpec{
			{Name: "premium", Kind: "black", Match: "called", Prefixes: []string{"0900", "0137"}, Status: 603, Cause: 21},
			{Name: "spam", Kind: "black", Match: "calling", Prefixes: []string{"0555"}},
			{Name: "trunk-b-only-mobile", Kind: "white", Match: "called", Scope: "trunk:b", Prefixes: []string{"015", "016", "017"}},
			{Name: "kid", Kind: "white", Match: "called", Scope: "subscriber:1001", Prefixes: []string{"0301"}},
			{Name: "everyone-but-1001", Kind: "black", Match: "called", Scope: "subscriber:1002", Prefixes: []string{"1001"}, Status: 486, Cause: 17},
		},
	})
	cases := []struct {
		in     Input
		status int
	}{
		{Input{Called: "09001", Calling: "0301"}, 603},
		{Input{Called: "0301", Calling: "05551"}, 403},
		{Input{Called: "0301", Calling: "0401"}, 0},
		{Input{Called: "0151", Trunk: "b"}, 0},
		{Input{Called: "0301", Trunk: "b"}, 403},
		{Input{Called: "0301", Trunk: "a"}, 0},
		{Input{Called: "03011", Subscriber: "1001"}, 0},
		{Input{Called: "0401", Subscriber: "1001"}, 403},
		{Input{Called: "1001", Subscriber: "1002"}, 486},
		{Input{Called: "1001", Subscriber: "1003"}, 0},
		// emergency bypasses every list, even a white list that omits it
		{Input{Called: "112", Subscriber: "1001", Calling: "05551"}, 0},
		{Input{Called: "112", Trunk: "b"}, 0},
	}
	for _, c := range cases {
		r := p.Analyse(c.in)
		got := 0
		if r.Refusal != nil {
			got = r.Refusal.Status
		}
		if got != c.status {
			t.Errorf("%+v: status %d (%+v), want %d", c.in, got, r.Refusal, c.status)
		}
	}
}

func TestWindows(t *testing.T) {
	at := func(day, h, m int) int { return day*24*60 + h*60 + m }
	cases := []struct {
		w      string
		in     []int
		out    []int
		failed bool
	}{
		{w: "Mon-Fri 08:00-18:00", in: []int{at(0, 8, 0), at(4, 17, 59)}, out: []int{at(0, 7, 59), at(0, 18, 0), at(5, 10, 0)}},
		{w: "Sat,Sun", in: []int{at(5, 0, 0), at(6, 23, 59)}, out: []int{at(4, 23, 59)}},
		{w: "22:00-06:00", in: []int{at(2, 23, 0), at(3, 5, 59), at(0, 1, 0)}, out: []int{at(2, 12, 0)}},
		{w: "Sun 22:00-02:00", in: []int{at(6, 23, 0), at(0, 1, 0)}, out: []int{at(0, 23, 0), at(6, 21, 0)}},
		{w: "Fri-Mon", in: []int{at(4, 1, 0), at(0, 1, 0)}, out: []int{at(1, 1, 0)}},
		{w: "Mon 25:00-26:00", failed: true},
		{w: "Funday", failed: true},
		{w: "Mon 08:00-08:00", failed: true},
		{w: "Mon Tue", failed: true},
	}
	for _, c := range cases {
		w, err := ParseWindow(c.w)
		if (err != nil) != c.failed {
			t.Errorf("%q: err %v", c.w, err)
			continue
		}
		for _, m := range c.in {
			if !w.contains(m) {
				t.Errorf("%q does not contain minute %d", c.w, m)
			}
		}
		for _, m := range c.out {
			if w.contains(m) {
				t.Errorf("%q contains minute %d", c.w, m)
			}
		}
	}
}

func TestCompileErrorsNameTheField(t *testing.T) {
	cases := []struct {
		spec Spec
		key  string
	}{
		{Spec{Analysis: []EntrySpec{{Prefix: "12345678901", Action: ActionLocal}}}, "analysis[0].prefix"},
		{Spec{Analysis: []EntrySpec{{Prefix: "1", Action: "jump"}}}, "analysis[0].action"},
		{Spec{Analysis: []EntrySpec{{Prefix: "1", Action: ActionRoute}}}, "analysis[0].route"},
		{Spec{Analysis: []EntrySpec{{Prefix: "1", Action: ActionLocal}, {Prefix: "1", Action: ActionLocal}}}, "analysis[1].prefix"},
		{Spec{Analysis: []EntrySpec{{Prefix: "1", Action: ActionLocal, CalledOps: []string{"delete x 1"}}}}, "analysis[0].called_ops"},
		{Spec{Analysis: []EntrySpec{{Prefix: "1", Action: ActionRefuse, Status: 200}}}, "analysis[0].status"},
		{Spec{Analysis: []EntrySpec{{Prefix: "1", Action: ActionRedirect, Contact: "http://x"}}}, "analysis[0].contact"},
		{Spec{Analysis: []EntrySpec{{Prefix: "1", Action: ActionLocal, Time: []string{"never"}}}}, "analysis[0].time[0]"},
		{Spec{Lists: []ListSpec{{Kind: "grey", Match: "called"}}}, "list[0].kind"},
		{Spec{Lists: []ListSpec{{Kind: "black", Match: "called", Scope: "moon"}}}, "list[0].scope"},
		{Spec{Lists: []ListSpec{{Kind: "black", Match: "called", Prefixes: []string{"12x"}}}}, "list[0].prefixes[0]"},
		{Spec{Trunks: []TrunkSpec{{Name: "a"}, {Name: "a"}}}, "trunk_plan[1].name"},
	}
	for _, c := range cases {
		c.spec.Settings = DefaultSettings()
		_, err := Compile(c.spec)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Key != c.key {
			t.Errorf("%+v: error %v, want one on %s", c.spec, err, c.key)
		}
	}
	bad := DefaultSettings()
	bad.MaxCalledDigits = 29
	if _, err := Compile(Spec{Settings: bad}); err == nil {
		t.Error("max_called_digits 29 accepted")
	}
}

func TestLookupAllocatesNothing(t *testing.T) {
	p := compile(t, Spec{Analysis: []EntrySpec{
		{Prefix: "030", Action: ActionRoute, Route: "berlin"},
		{Prefix: "030", CallingPrefix: "040", Time: []string{"Mon-Fri"}, Action: ActionRoute, Route: "x"},
	}})
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		if e := p.lookup("0301234567", "0891", "", now); e == nil {
			t.Fatal("no entry")
		}
	})
	if allocs != 0 {
		t.Errorf("lookup allocates %.1f times", allocs)
	}
}

// FuzzAnalyse: called and calling numbers come from the network.
func FuzzAnalyse(f *testing.F) {
	spec := Spec{Settings: DefaultSettings(), Analysis: []EntrySpec{
		{Prefix: "0", Action: ActionRoute, Route: "n", CalledOps: []string{"e164", "delete 3 2", "insert 5 77"}},
		{Prefix: "+49", Action: ActionLocal, CallingOps: []string{"national"}},
		{Prefix: "1", Time: []string{"Mon-Fri 08:00-18:00"}, Action: ActionRefuse, Status: 403},
	}, Lists: []ListSpec{{Kind: "black", Match: "calling", Prefixes: []string{"0555"}}}}
	spec.Settings.CountryCode = "49"
	p, err := Compile(spec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("0301234", "0401111")
	f.Add("+4930", "")
	f.Add("1*#", "+")
	f.Fuzz(func(t *testing.T, called, calling string) {
		r := p.Analyse(Input{Called: called, Calling: calling, Now: time.Unix(1_800_000_000, 0)})
		if r.Refusal == nil && len(strings.TrimPrefix(called, "+")) > DefaultMaxCalled {
			t.Fatalf("a called number of %d characters was accepted", len(called))
		}
	})
}
