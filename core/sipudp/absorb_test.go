package sipudp

import (
	"fmt"
	"hash/maphash"
	"testing"
	"time"
)

// The absorber answers copies for Timer J and no longer, forgets what
// expired as its arenas are reused, and keeps its memory to about Timer
// J's worth of responses however long it runs.
func TestAbsorberKeepsTimerJ(t *testing.T) {
	var a absorber
	a.init(maphash.MakeSeed())
	t0 := time.Unix(1e9, 0).UnixNano()
	a.put("z9hG4bK-1|BYE|127.0.0.1:5060", []byte("SIP/2.0 200 OK one"), t0)
	if res, ok := a.get("z9hG4bK-1|BYE|127.0.0.1:5060", t0+int64(time.Second)); !ok || string(res) != "SIP/2.0 200 OK one" {
		t.Fatalf("a copy 1 s later: %q, %v", res, ok)
	}
	if _, ok := a.get("z9hG4bK-2|BYE|127.0.0.1:5060", t0); ok {
		t.Fatal("another key found")
	}
	// A quiet switch: no put reuses the slot, the age still tells.
	if _, ok := a.get("z9hG4bK-1|BYE|127.0.0.1:5060", t0+int64(40*time.Second)); ok {
		t.Fatal("found 40 s later (Timer J is 32 s)")
	}
	// A busy one: 100 a second for 100 s. Each is found within Timer
	// J; the map holds no more than Timer J's and a slot's worth.
	now := t0
	for i := range 10000 {
		now = t0 + int64(i)*int64(10*time.Millisecond)
		a.put(fmt.Sprintf("k%d", i), []byte(fmt.Sprintf("res%d", i)), now)
		if i >= 3100 {
			j := i - 3100 // 31 s ago
			if res, ok := a.get(fmt.Sprintf("k%d", j), now); !ok || string(res) != fmt.Sprintf("res%d", j) {
				t.Fatalf("k%d 31 s later: %q, %v", j, res, ok)
			}
		}
	}
	if n := len(a.at); n > absorbSlots*100 {
		t.Errorf("%d responses recorded at 100 a second, want at most %d", n, absorbSlots*100)
	}
	if _, ok := a.get("k0", now); ok {
		t.Error("k0 found 100 s later")
	}
}
