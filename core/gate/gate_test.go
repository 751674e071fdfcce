package gate

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/softswitch/softswitch/core/admission"
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

func TestAdmissionDropsFlood(t *testing.T) {
	g := &Gate{Admission: admission.New(admission.Config{Rate: 1, Burst: 3, Block: time.Minute}, nil)}
	n := 0
	for range 10 {
		if g.Filter([]byte(invite), src, time.Now()) != nil {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("passed %d of a burst of 10 at burst 3", n)
	}
	// Responses are not counted.
	if g.Filter([]byte("SIP/2.0 180 Ringing\r\n\r\n"), src, time.Now()) == nil {
		t.Fatal("response dropped")
	}
}

func TestMendsAsBefore(t *testing.T) {
	g := &Gate{}
	out := g.Filter([]byte(invite), netip.MustParseAddrPort("203.0.113.5:5070"), time.Now())
	if !bytes.Contains(out, []byte("received=203.0.113.5")) {
		t.Fatalf("not mended:\n%s", out)
	}
}

func FuzzFilter(f *testing.F) {
	f.Add([]byte(invite))
	f.Add([]byte("SIP/2.0 200 OK\r\n\r\n"))
	g := &Gate{Admission: admission.New(admission.Config{Rate: 1e9, Burst: 1e9, Block: time.Minute}, nil)}
	f.Fuzz(func(t *testing.T, data []byte) {
		g.Filter(data, src, time.Now())
	})
}

func BenchmarkFilterPass(b *testing.B) {
	g := &Gate{Admission: admission.New(admission.Config{Rate: 1e9, Burst: 1e9, Block: time.Minute}, nil)}
	data := []byte(strings.Replace(invite, ";oc,", ",", 1))
	data = bytes.Replace(data, []byte("192.0.2.1:5060;"), []byte("192.0.2.1:5060;rport=5060;received=192.0.2.1;"), 1)
	b.ReportAllocs()
	for b.Loop() {
		g.Filter(data, src, time.Now())
	}
}
