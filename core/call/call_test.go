package call

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestParseSE(t *testing.T) {
	for in, want := range map[string]struct {
		n   int
		ref string
	}{
		"1800;refresher=uac": {1800, "uac"}, "90": {90, ""}, " 600 ; Refresher = UAS": {600, "uas"}, "x": {0, ""}, "-5": {0, ""},
	} {
		n, ref := parseSE(in)
		if n != want.n || ref != want.ref {
			t.Errorf("%q: %d %q", in, n, ref)
		}
	}
}

func TestBetter(t *testing.T) {
	r := func(code int) *sip.Response { return sip.NewResponse(code, "") }
	if !better(r(603), r(486)) || better(r(486), r(603)) {
		t.Error("6xx must win")
	}
	if !better(r(486), r(408)) || !better(r(404), r(503)) {
		t.Error("a definite answer beats a timeout or overload")
	}
	if !better(r(302), r(404)) {
		t.Error("lower class wins")
	}
}

func TestStripOption(t *testing.T) {
	res := sip.NewResponse(200, "OK")
	res.AppendHeader(sip.NewHeader("Require", "timer, 100rel"))
	stripOption(res, "Require", "100rel")
	if v := headerValue(res, "Require"); v != "timer" {
		t.Fatalf("Require %q", v)
	}
	stripOption(res, "Require", "timer")
	if res.GetHeader("Require") != nil {
		t.Fatal("empty Require kept")
	}
}

func FuzzParseSE(f *testing.F) {
	f.Add("1800;refresher=uac")
	f.Add("90;refresher")
	f.Fuzz(func(t *testing.T, s string) {
		n, ref := parseSE(s)
		if n < 0 || (n == 0 && ref != "") {
			t.Fatalf("%q gave %d %q", s, n, ref)
		}
	})
}
