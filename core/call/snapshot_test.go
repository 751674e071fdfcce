package call

import (
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Each gateway is told its final answer once (the failed one its 503, the
// answering one its 200), and the call in progress shows in Snapshot
// with the answering gateway, then leaves it when it ends.
func TestOutcomesAndSnapshot(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]int{}
	tg := func(host, name string) Target {
		x := target(host)
		x.Gateway = name
		x.Outcome = func(status int) { mu.Lock(); got[name] = append(got[name], status); mu.Unlock() }
		return x
	}
	h := &fakeHunter{targets: []Target{tg("192.0.2.10", "gw-1"), tg("192.0.2.11", "gw-2")}, timeout: time.Second}
	b := newBed(t, Config{}, func() Decision { return Decision{Hunt: h} })
	_, req, done := b.invite()
	b.wire.next(t, sip.INVITE).reply(503)
	second := b.wire.next(t, sip.INVITE)
	second.reply(200)
	waitDone(t, done)
	waitFor(t, "the 2xx to the caller", func() bool { return len(b.wire.writtenResponses()) > 0 })
	list, n := b.m.Snapshot(10)
	if n != 1 || len(list) != 1 || list[0].State != "answered" || list[0].Gateway != "gw-2" || list[0].CallID != req.CallID().Value() ||
		list[0].Forks != 2 {
		t.Fatalf("snapshot %d %+v", n, list)
	}
	mu.Lock()
	if len(got["gw-1"]) != 1 || got["gw-1"][0] != 503 || len(got["gw-2"]) != 1 || got["gw-2"][0] != 200 {
		t.Fatalf("outcomes %v", got)
	}
	mu.Unlock()
	if list, n := b.m.Snapshot(0); n != 1 || len(list) != 0 {
		t.Fatalf("max 0: %d %v", n, list)
	}
}
