package routing

import (
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/provision"
)

func TestControls(t *testing.T) {
	c, err := CompileControls([]provision.Block{{Prefix: "0900"}}, []provision.Gap{{Prefix: "09", Rate: 2}, {Prefix: "0800", Rate: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	if d, refused := c.Check("0900123", now); !refused || d.Status != 403 || d.Cause != 21 {
		t.Fatalf("blocked prefix: %+v %v", d, refused)
	}
	if _, refused := c.Check("0301234", now); refused {
		t.Fatal("a number no control names was refused")
	}
	// 09 (not 0900): 2 calls a second, one at a time.
	passed := 0
	for i := 0; i < 100; i++ {
		at := now.Add(time.Duration(i) * 10 * time.Millisecond) // 100 calls in one second
		if d, refused := c.Check("0912", at); !refused {
			passed++
		} else if d.Status != 503 || d.Cause != 42 {
			t.Fatalf("gapped: %+v", d)
		}
	}
	if passed < 2 || passed > 3 {
		t.Fatalf("%d of 100 calls in one second passed a gap of 2 a second", passed)
	}
	st := c.Status()
	if len(st) != 3 || st[0].Prefix != "0900" || st[0].Refused != 1 || st[2].Prefix != "09" || st[2].Refused != int64(100-passed) {
		t.Fatalf("status %+v", st)
	}
	// A new compile keeps the counts of the same controls.
	c2, _ := CompileControls([]provision.Block{{Prefix: "0900"}}, nil, c)
	if c2.Status()[0].Refused != 1 {
		t.Fatal("the count was reset by a commit")
	}
	for _, bad := range [][]provision.Gap{{{Prefix: "0900", Rate: 1}}, {{Prefix: "12a", Rate: 1}}, {{Prefix: "1", Rate: 0}}} {
		if _, err := CompileControls([]provision.Block{{Prefix: "0900"}}, bad, nil); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
