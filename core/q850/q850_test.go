package q850

import (
	"os"
	"testing"
)

func TestRFC3398Rows(t *testing.T) {
	// A sample of RFC 3398's rows, both directions.
	for st, c := range map[int]int{404: 1, 486: 17, 480: 18, 503: 41, 408: 102, 484: 28, 603: 21, 502: 38} {
		if got := CauseForStatus(st); got != c {
			t.Errorf("CauseForStatus(%d) = %d, want %d", st, got, c)
		}
	}
	for c, st := range map[int]int{1: 404, 17: 486, 18: 408, 19: 480, 34: 503, 28: 484, 21: 403, 102: 504, 27: 502} {
		if got := StatusForCause(c); got != st {
			t.Errorf("StatusForCause(%d) = %d, want %d", c, got, st)
		}
	}
	// Unlisted values fall back by class.
	if CauseForStatus(499) != 31 || CauseForStatus(599) != 41 || StatusForCause(44) != 503 || StatusForCause(99) != 500 || StatusForCause(9) != 480 {
		t.Error("class fallbacks")
	}
}

func TestReasonRoundTrip(t *testing.T) {
	v := Reason(17, "")
	if v != `Q.850;cause=17;text="User busy"` {
		t.Errorf("Reason = %s", v)
	}
	if c, ok := Parse(v); !ok || c != 17 {
		t.Errorf("Parse(%s) = %d %v", v, c, ok)
	}
	if c, ok := Parse(`SIP;cause=200;text="Call completed elsewhere", Q.850 ; cause = 16`); !ok || c != 16 {
		t.Errorf("second reason: %d %v", c, ok)
	}
	for _, bad := range []string{"", "SIP;cause=486", "Q.850;cause=abc", "Q.850;cause=300", "Q.850"} {
		if _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) found a cause", bad)
		}
	}
}

// docs/causes.md prints the tables; it must not drift from them.
// UPDATE_DOCS=1 go test ./core/q850 rewrites it.
func TestDocsMatchTables(t *testing.T) {
	const path = "../../docs/causes.md"
	want := causesHeader + Markdown()
	if os.Getenv("UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s differs from the tables in q850.go: run UPDATE_DOCS=1 go test ./core/q850", path)
	}
}

const causesHeader = `# Q.850 causes and SIP status codes

Calls that fail carry the ISDN cause in a Reason header (RFC 3326), as
` + "`Reason: Q.850;cause=17;text=\"User busy\"`" + `, toward the caller; a
BYE relayed from one side to the other keeps its Reason. A cause a gateway
sends in a failure response is passed on unchanged; when it
sends none, the softswitch adds the cause below for the status it received.
Refusals by number analysis and lists carry their configured cause. Rows
marked in the source as ours (487, 488, 606) are not in RFC 3398.

`

// FuzzParse: Reason header values come from gateways.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`Q.850;cause=17;text="User busy"`, "SIP;cause=200, Q.850;cause=16", "q.850 ; CAUSE = 3", ";;,", "Q.850;cause=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, ok := Parse(v)
		if ok && (c < 0 || c > 127) {
			t.Fatalf("cause %d out of range from %q", c, v)
		}
		if ok {
			if c2, ok2 := Parse(Reason(c, "")); !ok2 || c2 != c {
				t.Fatalf("Reason(%d) does not parse back", c)
			}
		}
	})
}
