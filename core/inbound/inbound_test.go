package inbound

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

var src = netip.MustParseAddrPort("198.51.100.7:40123")

func req(start, via string, extra ...string) []byte {
	return []byte(start + "\r\nVia: " + via + "\r\nFrom: <sip:a@example.com>;tag=f1\r\nTo: <sip:b@example.com>\r\n" +
		"Call-ID: c1@example.com\r\nCSeq: 7 INVITE\r\n" + strings.Join(extra, "") + "Content-Length: 0\r\n\r\n")
}

func topVia(t *testing.T, data []byte) *sip.ViaHeader {
	t.Helper()
	m, err := sip.ParseMessage(data)
	if err != nil {
		t.Fatalf("mended request does not parse: %v\n%s", err, data)
	}
	return m.Via()
}

func TestReceived(t *testing.T) {
	for via, want := range map[string]string{
		"SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1":             "198.51.100.7", // NAT: the address it came from
		"SIP/2.0/TCP phone.example.com;branch=z9hG4bK1":         "198.51.100.7", // a name: never looked up
		"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1":         "",             // right already
		"SIP/2.0/UDP 10.0.0.7;received=1.2.3.4;branch=z9hG4bK1": "1.2.3.4",      // set already: kept
	} {
		v := topVia(t, Fix(req("INVITE sip:b@example.com SIP/2.0", via), src))
		if got, _ := v.Params.Get("received"); got != want {
			t.Errorf("%s: received %q, want %q", via, got, want)
		}
	}
	// A bare rport gets the source port, and received (RFC 3581).
	v := topVia(t, Fix(req("INVITE sip:b@example.com SIP/2.0", "SIP/2.0/UDP 10.0.0.7:5060;rport;branch=z9hG4bK1"), src))
	if r, _ := v.Params.Get("rport"); r != "40123" {
		t.Errorf("rport %q", r)
	}
	if r, _ := v.Params.Get("received"); r != "198.51.100.7" {
		t.Errorf("received %q", r)
	}
	// Only the top Via of several, in one header line or folded.
	data := Fix([]byte("INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,\r\n SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n"+
		"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"), src)
	m, err := sip.ParseMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	vias := m.GetHeaders("Via")
	if len(vias) != 2 || !strings.Contains(vias[0].Value(), "received=198.51.100.7") || strings.Contains(vias[1].Value(), "received") {
		t.Fatalf("vias %q", vias)
	}
}

func TestBranch2543(t *testing.T) {
	inv := Fix(req("INVITE sip:b@example.com SIP/2.0", "SIP/2.0/UDP 198.51.100.7"), src)
	cancel := Fix(bytes.Replace(req("CANCEL sip:b@example.com SIP/2.0", "SIP/2.0/UDP 198.51.100.7"), []byte("7 INVITE"), []byte("7 CANCEL"), 1), src)
	other := Fix(bytes.Replace(req("INVITE sip:b@example.com SIP/2.0", "SIP/2.0/UDP 198.51.100.7"), []byte("7 INVITE"), []byte("8 INVITE"), 1), src)
	b1, _ := topVia(t, inv).Params.Get("branch")
	b2, _ := topVia(t, cancel).Params.Get("branch")
	b3, _ := topVia(t, other).Params.Get("branch")
	if !strings.HasPrefix(b1, "z9hG4bK-2543-") || b1 != b2 || b1 == b3 {
		t.Fatalf("branches %q %q %q", b1, b2, b3)
	}
	// A branch of any kind is left alone.
	v := topVia(t, Fix(req("INVITE sip:b@example.com SIP/2.0", "SIP/2.0/UDP 198.51.100.7;branch=390skdjuw"), src))
	if b, _ := v.Params.Get("branch"); b != "390skdjuw" {
		t.Fatalf("branch %q", b)
	}
}

func TestScheme(t *testing.T) {
	out := Fix(req("OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0", "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1"), src)
	m, err := sip.ParseMessage(out)
	if err != nil {
		t.Fatal(err)
	}
	if s := m.(*sip.Request).Recipient.Scheme; s != UnsupportedScheme {
		t.Fatalf("scheme %q", s)
	}
	for _, same := range []string{"OPTIONS sip:a@b SIP/2.0", "OPTIONS <sip:a@b> SIP/2.0", "OPTIONS tel:+1555 SIP/2.0"} {
		in := req(same, "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1")
		if out := Fix(in, src); !bytes.Equal(out, in) {
			t.Errorf("%q changed:\n%s", same, out)
		}
	}
	resp := []byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n\r\n")
	if !bytes.Equal(Fix(resp, src), resp) {
		t.Error("a response was changed")
	}
}

// The stream framer hands sipgo whole messages, mended, whatever the
// segmentation; CRLF keep-alives pass; an unframeable stream passes as it
// is.
func TestStream(t *testing.T) {
	a := req("INVITE sip:b@example.com SIP/2.0", "SIP/2.0/TCP 10.0.0.7:5060;branch=z9hG4bK1")
	bodyMsg := []byte("MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.7;branch=z9hG4bK2\r\nl: 5\r\n\r\nhello")
	stream := append(append(append([]byte("\r\n\r\n"), a...), bodyMsg...), []byte("\r\n")...)
	for _, seg := range []int{1, 3, 17, 1000} {
		got := pipe(t, stream, seg)
		if !bytes.HasPrefix(got, []byte("\r\n\r\n")) || bytes.Count(got, []byte("received=127.0.0.1")) != 2 || !bytes.Contains(got, []byte("\r\n\r\nhello")) {
			t.Fatalf("segments of %d:\n%q", seg, got)
		}
	}
	bad := []byte("INVITE sip:b SIP/2.0\r\nContent-Length: -5\r\n\r\nrest")
	if got := pipe(t, bad, 7); !bytes.Equal(got, bad) {
		t.Fatalf("unframeable stream changed: %q", got)
	}
}

// pipe writes data in segments of seg bytes through a Listener's
// connection and returns what the reader sees.
func pipe(t *testing.T, data []byte, seg int) []byte {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := Listener(ln)
	go func() {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		for i := 0; i < len(data); i += seg {
			c.Write(data[i:min(i+seg, len(data))])
			time.Sleep(time.Millisecond)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, _ := io.ReadAll(c)
	return out
}

// Whatever the bytes, Fix must not panic, must leave the body as it is,
// must be idempotent (what it adds it recognises), and a request it
// changes that sipgo parsed before must still name the same method,
// Call-ID and CSeq.
func FuzzFix(f *testing.F) {
	f.Add(req("INVITE sip:b@example.com SIP/2.0", "SIP/2.0/UDP 10.0.0.7:5060;rport;branch=z9hG4bK1"))
	f.Add(req("OPTIONS soap.beep://x SIP/2.0", "SIP/2.0/TCP h"))
	f.Add([]byte("INVITE sip:x SIP/2.0\r\nv: SIP/2.0/UDP [2001:db8::1]:5060;received=x,\r\n SIP/2.0/UDP b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := Fix(data, src)
		if again := Fix(out, src); !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%q\n%q\n%q", data, out, again)
		}
		if i, j := bytes.Index(data, []byte("\r\n\r\n")), bytes.Index(out, []byte("\r\n\r\n")); i >= 0 && !bytes.Equal(data[i:], out[j:]) {
			t.Fatalf("body changed:\n%q\n%q", data, out)
		}
		before, err := sip.ParseMessage(data)
		if err != nil || bytes.Equal(out, data) {
			return
		}
		after, err := sip.ParseMessage(out)
		if err != nil {
			return // a Via sipgo took lazily and now reads (a later value malformed)
		}
		if before.CallID() != nil && (after.CallID() == nil || before.CallID().Value() != after.CallID().Value()) {
			t.Fatalf("Call-ID changed")
		}
	})
}

// FuzzContentLength: the stream framer's reading of a header block.
func FuzzContentLength(f *testing.F) {
	f.Add([]byte("INVITE sip:x SIP/2.0\r\nl: 5\r\nContent-Length: 5\r\n"))
	f.Add([]byte("INVITE sip:x SIP/2.0\r\nContent-Length: -1\r\n"))
	f.Fuzz(func(t *testing.T, block []byte) {
		if n, ok := contentLength(block); ok && (n < 0 || n > 1<<20) {
			t.Fatalf("%q: %d", block, n)
		}
	})
}

// The common case costs a scan and no allocation: a request from a phone
// whose Via is right (sipp's, the bench's).
func BenchmarkFixNothingToDo(b *testing.B) {
	data := []byte("INVITE sip:9123@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:40123;branch=z9hG4bK-1234-1-0\r\n" +
		"From: sipp <sip:sipp@127.0.0.1:5061>;tag=1234SIPpTag001\r\nTo: <sip:9123@127.0.0.1:5060>\r\nCall-ID: 1-1234@127.0.0.1\r\n" +
		"CSeq: 1 INVITE\r\nContact: sip:sipp@127.0.0.1:5061\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n")
	b.ReportAllocs()
	for b.Loop() {
		Fix(data, src)
	}
}

// A counting listener's connection tells each message written (one per
// Write) and leaves keep-alive CRLFs out.
func TestCountingListenerCountsWrites(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var sent []string
	l := CountingListener(ln, nil, func(b []byte) { sent = append(sent, string(b)) })
	go func() {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	msg := "SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	c.Write([]byte(msg))
	c.Write([]byte("\r\n"))
	c.Close()
	if len(sent) != 1 || sent[0] != msg {
		t.Fatalf("counted %q", sent)
	}
}
