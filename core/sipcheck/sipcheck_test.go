package sipcheck

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/inbound"
	"github.com/softswitch/softswitch/core/sipparse"
)

// outcome of one torture message through the inbound path: mended
// (core/inbound), parsed (core/sipparse), validated (Request).
const (
	accept   = 0  // acted on
	drop     = -1 // the parser refuses it: dropped
	response = -2 // a response: not ours to validate
)

func outcome(raw []byte) (int, string) {
	raw = inbound.Fix(raw, netip.MustParseAddrPort("192.0.2.99:5060"))
	m, err := sipparse.New().ParseSIP(raw)
	if err != nil {
		return drop, "parse: " + err.Error()
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return response, ""
	}
	if p := Request(req); p != nil {
		return p.Status, p.Reason
	}
	return accept, ""
}

// The RFC 4475 and RFC 5118 torture messages (copied byte-exact from
// ../shared/conformance, checked against its SHA256SUMS): every file has
// an expected outcome here; the system test sends them to the running
// switch.
func TestTorture(t *testing.T) {
	want := map[string]int{
		// valid (RFC 4475 §3.1.1, §3.3, §3.4; RFC 5118)
		"wsinv": accept, "intmeth": accept, "esc01": accept, "escnull": accept, "esc02": accept,
		"lwsdisp": accept, "longreq": accept, "dblreq": accept, "semiuri": accept, "transports": accept,
		"mpart01": accept, "unkscm": 416, "novelsc": 416, "bext01": 420, "invut": accept, "regaut01": accept,
		"zeromf": accept, "cparam01": accept, "cparam02": accept, "regescrt": accept, "inv2543": accept,
		"baddate": accept, "sdp01": accept,
		"ipv6-good": accept, "port-ambiguous": accept, "port-unambiguous": accept,
		"via-received-param-with-delim": accept, "via-received-param-no-delim": accept, "ipv6-in-sdp": accept,
		"mult-ip-in-header": accept, "mult-ip-in-sdp": accept, "ipv4-mapped-ipv6": accept,
		"ipv6-correct-abnf-2-colons": accept,
		// responses
		"unreason": response, "noreason": response, "bcast": response,
		"bigcode": drop, "scalarlg": drop, // status or CSeq out of range: the parser refuses them
		// invalid (RFC 4475 §3.1.2, §3.2, §3.3; RFC 5118)
		"badinv01": drop, "clerr": drop, "ncl": drop, "scalar02": drop, "quotbal": drop, "ltgtruri": drop,
		"lwsruri": drop, "lwsstart": drop, "trws": drop, "escruri": 400, "regbadct": accept, "badaspec": drop,
		"baddn": 400, "badvers": 505, "mismatch01": 400, "mismatch02": 400, "badbranch": 400, "insuf": 400,
		"unksm2": 400, "multi01": 400, "mcl01": 400, "ipv6-bad": drop, "ipv6-bug-abnf-3-colons": 400,
		"test": drop,
	}
	files, err := filepath.Glob("testdata/*/*.dat")
	if err != nil || len(files) != 62 {
		t.Fatalf("torture corpus: %d files, want 62 (%v)", len(files), err)
	}
	sums, err := os.ReadFile("testdata/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".dat")
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel("testdata", f)
		if sum := sha256.Sum256(raw); !strings.Contains(string(sums), hex.EncodeToString(sum[:])+"  "+rel) {
			t.Errorf("%s: checksum differs from SHA256SUMS (line endings changed?)", rel)
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: no expected outcome", name)
			continue
		}
		got, why := outcome(raw) // must not panic, whatever the verdict
		if got != w {
			t.Errorf("%s: outcome %d (%s), want %d", name, got, why, w)
		}
	}
}

func TestProblems(t *testing.T) {
	base := "INVITE sip:1002@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n" +
		"From: <sip:1001@example.com>;tag=a\r\nTo: <sip:1002@example.com>\r\n" +
		"Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
	cases := []struct {
		name   string
		msg    string
		status int
	}{
		{"ok", base + "Content-Length: 0\r\n\r\n", 0},
		{"cseq method", strings.Replace(base, "1 INVITE", "1 BYE", 1) + "Content-Length: 0\r\n\r\n", 400},
		{"require unknown", base + "Require: foo\r\nContent-Length: 0\r\n\r\n", 420},
		{"require known", base + "Require: 100rel\r\nContent-Length: 0\r\n\r\n", 0},
		{"body without type", base + "Content-Length: 3\r\n\r\nabc", 400},
		{"bad scheme", strings.Replace(base, "INVITE sip:1002@example.com", "INVITE http://example.com", 1) + "Content-Length: 0\r\n\r\n", 416},
		{"two To", base + "To: <sip:x@example.com>\r\nContent-Length: 0\r\n\r\n", 400},
		{"bad expires", base + "Expires: soon\r\nContent-Length: 0\r\n\r\n", 400},
		{"no call-id", strings.Replace(base, "Call-ID: c1\r\n", "", 1) + "Content-Length: 0\r\n\r\n", 400},
	}
	for _, c := range cases {
		m, err := sip.ParseMessage([]byte(c.msg))
		if err != nil {
			if c.status == 0 {
				t.Errorf("%s: parse: %v", c.name, err)
			}
			continue
		}
		p := Request(m.(*sip.Request))
		got := 0
		if p != nil {
			got = p.Status
		}
		if got != c.status {
			t.Errorf("%s: status %d, want %d (%v)", c.name, got, c.status, p)
		}
	}
}

// FuzzRequest feeds arbitrary bytes through the parser and our
// validation: neither may panic, and nothing invalid may pass as valid.
func FuzzRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.dat")
	for _, fn := range files {
		if b, err := os.ReadFile(fn); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok {
			return
		}
		if p := Request(req); p == nil {
			// Accepted: what we rely on must be there.
			if req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil || req.Via() == nil {
				t.Fatalf("accepted a request without its mandatory headers")
			}
		} else {
			_ = p.Response(req)
		}
	})
}

// FuzzResponse: a response Response accepts has everything the call
// code relies on.
func FuzzResponse(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := sipparse.New().ParseSIP(data)
		if err != nil {
			return
		}
		res, ok := m.(*sip.Response)
		if !ok || Response(res) != nil {
			return
		}
		if res.To() == nil || res.From() == nil || res.CallID() == nil || res.CSeq() == nil || res.Via() == nil {
			t.Fatalf("accepted a response without what the call code needs:\n%q", data)
		}
		if res.IsSuccess() && res.CSeq().MethodName == sip.INVITE {
			if tag, _ := res.To().Params.Get("tag"); tag == "" {
				t.Fatal("accepted a 2xx to INVITE without a To tag")
			}
		}
	})
}
