package sipmsg

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func msg(t testing.TB) *sip.Request {
	raw := "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n" +
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n" +
		"supported: timer, 100rel\r\nSupported: replaces\r\nSESSION-EXPIRES: 1800;refresher=uac\r\nX-Other: 1\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

func TestLookups(t *testing.T) {
	m := msg(t)
	if Count(m, "Supported") != 2 || Value(m, "Session-Expires") != "1800;refresher=uac" {
		t.Fatalf("count %d value %q", Count(m, "Supported"), Value(m, "Session-Expires"))
	}
	if !HasOption(m, "Supported", "100rel") || !HasOption(m, "supported", "REPLACES") || HasOption(m, "Supported", "path") {
		t.Fatal("HasOption")
	}
	s := NewSet("Supported", "Session-Expires")
	dst := sip.NewResponse(200, "OK")
	Copy(s, m, dst)
	if Count(dst, "Supported") != 2 || Count(dst, "session-expires") != 1 || Count(dst, "X-Other") != 0 {
		t.Fatalf("copied %v", dst.Headers())
	}
}

func BenchmarkCopy(b *testing.B) {
	m := msg(b)
	s := NewSet("Supported", "Session-Expires", "Require", "Allow", "Content-Type", "P-Asserted-Identity")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst := sip.NewResponse(200, "OK")
		Copy(s, m, dst)
	}
}

// FuzzOptions: option-tag lists (Supported, Require) as peers write them.
func FuzzOptions(f *testing.F) {
	f.Add("100rel, timer", "timer")
	f.Add(" , ,timer,, ", "timer")
	f.Fuzz(func(t *testing.T, v, tag string) {
		if strings.TrimSpace(tag) == "" {
			return // no option tag is empty
		}
		res := sip.NewResponse(200, "OK")
		res.AppendHeader(sip.NewHeader("Supported", v))
		got := HasOption(res, "Supported", tag)
		want := false
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), tag) {
				want = true
			}
		}
		if got != want {
			t.Fatalf("%q has %q: %v, want %v", v, tag, got, want)
		}
	})
}
