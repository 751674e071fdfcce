package numbering

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// BenchmarkLookup1M: the analysis lookup with 1,000,000 called prefixes
// of 4 to 10 digits loaded. Reports ns per lookup and the memory the
// compiled plan holds per prefix (the whole plan, and the trie alone).
//
//	go test -run '^$' -bench Lookup1M -benchmem ./core/numbering/
func BenchmarkLookup1M(b *testing.B) {
	const n = 1_000_000
	r := rand.New(rand.NewPCG(7, 11))
	spec := Spec{Settings: DefaultSettings()}
	seen := make(map[string]bool, n)
	for len(spec.Analysis) < n {
		p := randDigits(r, 4+r.IntN(7))
		if seen[p] {
			continue
		}
		seen[p] = true
		spec.Analysis = append(spec.Analysis, EntrySpec{Prefix: p, Action: ActionRoute, Route: "carrier"})
	}
	seen = nil
	numbers := make([]string, 4096)
	for i := range numbers {
		// Half the numbers extend a loaded prefix, half are random.
		if i%2 == 0 {
			numbers[i] = spec.Analysis[r.IntN(n)].Prefix + randDigits(r, 6)
		} else {
			numbers[i] = randDigits(r, 12)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	plan, err := Compile(spec)
	if err != nil {
		b.Fatal(err)
	}
	build := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	now := time.Now()
	b.ResetTimer()
	hits := 0
	for i := 0; b.Loop(); i++ {
		if plan.lookup(numbers[i&4095], "", "", now) != nil {
			hits++
		}
	}
	b.StopTimer()
	if hits == 0 {
		b.Fatal("no lookup hit a prefix")
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "plan-B/prefix")
	b.ReportMetric(float64(plan.trie.size()*12)/n, "trie-B/prefix")
	b.ReportMetric(build.Seconds(), "compile-s")
	runtime.KeepAlive(spec)
}
