package main

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/softswitch/softswitch/core/config"
)

// tuneRuntime applies [runtime]. GOGC and GOMEMLIMIT in the environment
// are the Go runtime's own knobs: when an operator sets them they win.
func tuneRuntime(rt config.Runtime, log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(rt.GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		limit := int64(rt.MemoryLimitMB) << 20
		if limit == 0 {
			limit = memTotal() / 2
		}
		if limit > 0 {
			debug.SetMemoryLimit(limit)
		}
	}
	// SetMemoryLimit with a negative value only reads the limit.
	log.Debug("runtime", "gogc_env", os.Getenv("GOGC"), "gc_percent", rt.GCPercent, "memory_limit", debug.SetMemoryLimit(-1))
}

// memTotal is the machine's RAM in bytes from /proc/meminfo, 0 if unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// adaptGC keeps the heap's growth between collections near what the
// switch allocates in a second, and at least heap_headroom_mb, while the
// live heap is large (many calls held, or many transactions lingering at
// a high call rate), and at gc_percent while it is small (the CPU-cheap
// setting for call throughput). Every second. A switch that holds many
// calls and allocates little keeps little idle memory; one that churns
// calls collects about once a second, whatever its live heap: at 2,000
// calls/s on half a core some 40 MB stay live (transactions absorbing
// retransmissions for Timer J), and a fixed 32 MB of growth made a
// collection every 0.35-0.7 s, each marking for 50-270 ms with assists
// slowing the workers (docs/performance.md). It returns at once when
// GOGC is set or the headroom is off.
func adaptGC(ctx context.Context, rt config.Runtime, log *slog.Logger) {
	if os.Getenv("GOGC") != "" || rt.HeapHeadroomMB == 0 || rt.GCPercent < 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	cur := rt.GCPercent
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 || sample[1].Value.Kind() != metrics.KindUint64 {
		return
	}
	lastAllocs := sample[1].Value.Uint64()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		allocs := sample[1].Value.Uint64()
		perSecond := allocs - lastAllocs // the ticker's second, near enough
		lastAllocs = allocs
		headroom := max(uint64(rt.HeapHeadroomMB)<<20, perSecond)
		p := gcPercentFor(sample[0].Value.Uint64(), headroom, rt.GCPercent)
		// Small changes are not worth a new pacing.
		if p*10 < cur*9 || p*10 > cur*11 {
			debug.SetGCPercent(p)
			log.Debug("collector pacing", "live_mb", sample[0].Value.Uint64()>>20, "alloc_mb_s", perSecond>>20, "gc_percent", p)
			cur = p
		}
	}
}

// gcPercentFor is the GOGC that lets the heap grow by headroom above a live
// heap of live bytes (at least by a quarter of it, at most by max percent).
func gcPercentFor(live, headroom uint64, max int) int {
	const floor = 50 // half the live heap: more frequent cycles cost too much CPU at high call rates
	if live == 0 || headroom*100/live >= uint64(max) {
		return max
	}
	p := int(headroom * 100 / live)
	if p < floor {
		p = floor
	}
	return min(p, max)
}
