package routing

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/call"
	"github.com/softswitch/softswitch/core/provision"
)

// Controls are the operator's traffic controls on called-number prefixes
// (as received): blocks and call gaps. The longest matching prefix
// decides. Checked before analysis, for new calls only.
type Controls struct {
	list []*control // longest prefix first
}

type control struct {
	prefix  string
	block   bool
	rate    float64
	mu      sync.Mutex // the bucket; only calls to this prefix take it
	tokens  float64
	last    time.Time
	refused atomic.Int64
}

// ControlStatus is one control as shown to operators.
type ControlStatus struct {
	Prefix  string
	Block   bool
	Rate    float64
	Refused int64 // calls refused since it was set
}

// CompileControls builds the controls; those of prev with the same
// prefix and kind keep their counts (a commit does not reset them).
func CompileControls(blocks []provision.Block, gaps []provision.Gap, prev *Controls) (*Controls, error) {
	c := &Controls{}
	seen := map[string]bool{}
	for i, b := range blocks {
		if err := checkPrefix(b.Prefix); err != nil {
			return nil, fmt.Errorf("block[%d].prefix: %v", i, err)
		}
		c.list = append(c.list, &control{prefix: b.Prefix, block: true})
		seen[b.Prefix] = true
	}
	for i, g := range gaps {
		switch {
		case checkPrefix(g.Prefix) != nil:
			return nil, fmt.Errorf("gap[%d].prefix: %v", i, checkPrefix(g.Prefix))
		case seen[g.Prefix]:
			return nil, fmt.Errorf("gap[%d].prefix: %s is blocked already (unblock it first)", i, g.Prefix)
		case !(g.Rate > 0 && g.Rate <= 100000): // NaN too
			return nil, fmt.Errorf("gap[%d].rate: calls a second, more than 0 (to refuse every call, block the prefix)", i)
		}
		c.list = append(c.list, &control{prefix: g.Prefix, rate: g.Rate, tokens: 1})
	}
	sort.SliceStable(c.list, func(i, j int) bool { return len(c.list[i].prefix) > len(c.list[j].prefix) })
	if prev != nil {
		for _, n := range c.list {
			for _, o := range prev.list {
				if o.prefix == n.prefix && o.block == n.block {
					n.refused.Store(o.refused.Load())
				}
			}
		}
	}
	return c, nil
}

func checkPrefix(p string) error {
	if p == "" || len(p) > 28 || strings.Trim(p, "+0123456789*#") != "" || strings.LastIndexByte(p, '+') > 0 {
		return fmt.Errorf("%q is not a number prefix (digits, * and #, an optional leading +)", p)
	}
	return nil
}

// Check refuses a new call to called when a control says so.
func (c *Controls) Check(called string, now time.Time) (call.Decision, bool) {
	if c == nil || len(c.list) == 0 {
		return call.Decision{}, false
	}
	for _, k := range c.list {
		if !strings.HasPrefix(called, k.prefix) {
			continue
		}
		if k.block {
			k.refused.Add(1)
			return call.Decision{Status: 403, Reason: "Forbidden", Cause: 21, Text: "prefix " + k.prefix + " blocked by the operator"}, true
		}
		if k.take(now) {
			return call.Decision{}, false
		}
		k.refused.Add(1)
		return call.Decision{Status: 503, Reason: "Service Unavailable", Cause: 42, Text: "call gapping on prefix " + k.prefix}, true
	}
	return call.Decision{}, false
}

// take is a token bucket of one call: at most rate calls a second, no
// burst beyond one.
func (k *control) take(now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.last.IsZero() {
		k.tokens = min(1, k.tokens+now.Sub(k.last).Seconds()*k.rate)
	}
	k.last = now
	if k.tokens >= 1 {
		k.tokens--
		return true
	}
	return false
}

// Status lists the controls, longest prefix first.
func (c *Controls) Status() []ControlStatus {
	if c == nil {
		return nil
	}
	out := make([]ControlStatus, len(c.list))
	for i, k := range c.list {
		out[i] = ControlStatus{Prefix: k.prefix, Block: k.block, Rate: k.rate, Refused: k.refused.Load()}
	}
	return out
}
