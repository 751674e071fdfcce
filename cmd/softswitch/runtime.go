package main

import (
	"bufio"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

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
