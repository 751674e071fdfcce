package gate

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/admission"
	"github.com/softswitch/softswitch/core/overload"
	"github.com/softswitch/softswitch/core/sipparse"
)

const invite = "INVITE sip:9123@198.51.100.1 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;oc, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n" +
	"v: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKx\r\n" +
	"Max-Forwards: 70\r\n" +
	"f: \"A;tag=no\" <sip:1000@192.0.2.1;tag=not>;tag=abc\r\n" +
	"To: <sip:9123@198.51.100.1>\r\n" +
	"i: call-1@192.0.2.1\r\n" +
	"CSeq: 7 INVITE\r\n" +
	"Content-Length: 0\r\n\r\n"

var src = netip.MustParseAddrPort("192.0.2.1:5060")

// full: an overload controller refusing every new call (max_calls 0 of 0
// can't be expressed, so: one call active, max 1).
func full() *overload.Controller {
	return overload.New(overload.Config{MaxCalls: 1, RetryAfterMin: 5, RetryAfterMax: 9}, func() int { return 1 }, nil)
}

func TestOverloadRefusesNewCallStatelessly(t *testing.T) {
	var sent []byte
	var to netip.AddrPort
	g := &Gate{Overload: full(), Reply: func(b []byte, a netip.AddrPort) { sent, to = b, a }}
	if out := g.Filter([]byte(invite), src); out != nil {
		t.Fatal("refused INVITE passed on")
	}
	if to != src {
		t.Fatalf("reply to %v", to)
	}
	res, err := sipparse.New().ParseSIP(sent)
	if err != nil {
		t.Fatalf("our 503 does not parse: %v\n%s", err, sent)
	}
	r := res.(*sip.Response)
	if r.StatusCode != 503 {
		t.Fatalf("status %d", r.StatusCode)
	}
	vias := r.GetHeaders("Via")
	if len(vias) != 3 {
		t.Fatalf("Via values %d, want 3:\n%s", len(vias), sent)
	}
	top := r.Via()
	if top.Params.Has("oc") == false || top.Host != "192.0.2.1" {
		t.Fatalf("top Via %v", top)
	}
	for _, p := range []string{"oc", "oc-algo", "oc-validity", "oc-seq"} {
		if !top.Params.Has(p) {
			t.Fatalf("top Via lacks %s: %s", p, top.Value())
		}
	}
	if a, _ := top.Params.Get("oc-algo"); a != `"loss"` {
		t.Fatalf("oc-algo %q", a)
	}
	if strings.Count(string(sent), ";oc=") != 1 || strings.Contains(string(sent), ";oc;") || strings.Count(string(sent), ";oc-") != 3 {
		t.Fatalf("oc parameters repeated:\n%s", sent)
	}
	if !strings.Contains(string(sent), "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n") {
		t.Fatalf("second Via value changed:\n%s", sent)
	}
	if tag, _ := r.To().Params.Get("tag"); !strings.HasPrefix(tag, refusedTag) {
		t.Fatalf("To tag %q", tag)
	}
	if tag, _ := r.From().Params.Get("tag"); tag != "abc" {
		t.Fatalf("From tag %q", tag)
	}
	if r.CallID().Value() != "call-1@192.0.2.1" || r.CSeq().SeqNo != 7 || r.CSeq().MethodName != sip.INVITE {
		t.Fatalf("Call-ID/CSeq %s / %s", r.CallID().Value(), r.CSeq().Value())
	}
	ra := r.GetHeader("Retry-After")
	if ra == nil || ra.Value() < "5" || ra.Value() > "9" || len(ra.Value()) != 1 {
		t.Fatalf("Retry-After %v", ra)
	}
	if h := r.GetHeader("Reason"); h == nil || !strings.Contains(h.Value(), "cause=42") {
		t.Fatalf("Reason %v", h)
	}

	// Its ACK is absorbed at the gate.
	tag, _ := r.To().Params.Get("tag")
	ack := strings.Replace(strings.Replace(invite, "INVITE sip", "ACK sip", 1), "CSeq: 7 INVITE", "CSeq: 7 ACK", 1)
	ack = strings.Replace(ack, "To: <sip:9123@198.51.100.1>", "To: <sip:9123@198.51.100.1>;tag="+tag, 1)
	if g.Filter([]byte(ack), src) != nil || g.Absorbed() != 1 {
		t.Fatal("ACK of the refusal not absorbed")
	}
}

func TestOnlyNewCallsAreRefused(t *testing.T) {
	g := &Gate{Overload: full(), Reply: func([]byte, netip.AddrPort) { t.Fatal("refused") }}
	inDialog := strings.Replace(invite, "To: <sip:9123@198.51.100.1>", "t: <sip:9123@198.51.100.1> ; TAG = xyz", 1)
	for name, msg := range map[string]string{
		"re-INVITE": inDialog,
		"OPTIONS":   strings.Replace(invite, "INVITE sip", "OPTIONS sip", 1),
		"BYE":       strings.Replace(inDialog, "INVITE sip", "BYE sip", 1),
		"CANCEL":    strings.Replace(invite, "INVITE sip", "CANCEL sip", 1),
		"ACK":       strings.Replace(inDialog, "INVITE sip", "ACK sip", 1),
		"REGISTER":  strings.Replace(invite, "INVITE sip", "REGISTER sip", 1),
		"response":  "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n",
	} {
		if out := g.Filter([]byte(msg), src); out == nil {
			t.Errorf("%s dropped under overload", name)
		}
	}
	// A new INVITE the gate cannot read cheaply (folded header) goes to
	// the parser, which decides.
	folded := strings.Replace(invite, "Max-Forwards: 70\r\n", "Max-Forwards:\r\n 70\r\n", 1)
	if g.Filter([]byte(folded), src) == nil {
		t.Error("folded INVITE dropped")
	}
}

func TestAdmissionDropsFlood(t *testing.T) {
	g := &Gate{Admission: admission.New(admission.Config{Rate: 1, Burst: 3, Block: time.Minute}, nil)}
	n := 0
	for range 10 {
		if g.Filter([]byte(invite), src) != nil {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("passed %d of a burst of 10 at burst 3", n)
	}
	// Responses are not counted.
	if g.Filter([]byte("SIP/2.0 180 Ringing\r\n\r\n"), src) == nil {
		t.Fatal("response dropped")
	}
}

func TestMendsAsBefore(t *testing.T) {
	g := &Gate{}
	out := g.Filter([]byte(invite), netip.MustParseAddrPort("203.0.113.5:5070"))
	if !bytes.Contains(out, []byte("received=203.0.113.5")) {
		t.Fatalf("not mended:\n%s", out)
	}
}

func FuzzFilter(f *testing.F) {
	f.Add([]byte(invite))
	f.Add([]byte("INVITE sip:a SIP/2.0\r\nVia: x;oc\r\nf: a\r\nt: b;tag\r\ni: c\r\nCSeq: 1 INVITE\r\n\r\n"))
	f.Add([]byte("ACK sip:a SIP/2.0\r\nVia: x\r\nf: a\r\nt: b;tag=ovl-1\r\ni: c\r\nCSeq: 1 ACK\r\n\r\n"))
	g := &Gate{Overload: full(), Reply: func(b []byte, _ netip.AddrPort) {
		if _, err := sip.ParseMessage(b); err != nil && !bytes.Contains(b, []byte("\r\n\r\n")) {
			panic("reply without header end")
		}
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		g.Filter(data, src)
	})
}

func BenchmarkFilterPass(b *testing.B) {
	g := &Gate{Admission: admission.New(admission.Config{Rate: 1e9, Burst: 1e9, Block: time.Minute}, nil),
		Overload: overload.New(overload.Config{}, nil, nil)}
	data := []byte(strings.Replace(invite, ";oc,", ",", 1))
	data = bytes.Replace(data, []byte("192.0.2.1:5060;"), []byte("192.0.2.1:5060;rport=5060;received=192.0.2.1;"), 1)
	b.ReportAllocs()
	for b.Loop() {
		g.Filter(data, src)
	}
}
