package main

import "testing"

func TestGCPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		max, want      int
	}{
		{0, 32 * mb, 400, 400},          // nothing measured yet
		{4 * mb, 32 * mb, 400, 400},     // small heap: the configured growth
		{8 * mb, 32 * mb, 400, 400},     // exactly at the cap
		{64 * mb, 32 * mb, 400, 50},     // many calls held: 32 MB of growth
		{1024 * mb, 32 * mb, 400, 50},   // never under half the live heap
		{64 * mb, 32 * mb, 20, 20},      // a configured value below the floor stays
		{100 * mb, 1024 * mb, 100, 100}, // large headroom: gc_percent rules
	} {
		if got := gcPercentFor(c.live, c.headroom, c.max); got != c.want {
			t.Errorf("gcPercentFor(%d MB, %d MB, %d) = %d, want %d", c.live/mb, c.headroom/mb, c.max, got, c.want)
		}
	}
}
