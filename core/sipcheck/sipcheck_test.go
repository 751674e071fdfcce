package sipcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// check parses raw and validates it; it reports whether the message
// would be acted on (parsed, a request, no problem).
func check(raw []byte) (accepted bool, why string) {
	m, err := sip.ParseMessage(raw)
	if err != nil {
		return false, "parse: " + err.Error()
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return true, "response"
	}
	if p := Request(req); p != nil {
		return false, p.Reason
	}
	return true, ""
}

// The RFC 4475 and RFC 5118 torture messages (copied byte-exact from
// ../shared/conformance). Valid ones must be accepted; invalid ones must
// be refused, by the parser or by Request.
func TestTorture(t *testing.T) {
	mustReject := map[string]bool{
		"badaspec": true, "badinv01": true, "badvers": true, "bext01": true, "clerr": true,
		"escruri": true, "insuf": true, "ltgtruri": true, "lwsruri": true, "lwsstart": true,
		"mcl01": true, "mismatch01": true, "mismatch02": true, "multi01": true, "ncl": true,
		"novelsc": true, "quotbal": true, "scalar02": true, "scalarlg": true, "unkscm": true,
		"unksm2": true, "ipv6-bad": true,
	}
	mustAccept := map[string]bool{
		"cparam01": true, "cparam02": true, "dblreq": true, "esc01": true, "esc02": true,
		"escnull": true, "lwsdisp": true, "longreq": true, "mpart01": true, "regaut01": true,
		"regescrt": true, "semiuri": true, "transports": true, "badbranch": true, "zeromf": true,
		"wsinv": true, "inv2543": true,
		"ipv4-mapped-ipv6": true, "ipv6-good": true, "ipv6-in-sdp": true, "mult-ip-in-header": true,
		"mult-ip-in-sdp": true, "port-ambiguous": true, "port-unambiguous": true,
		"via-received-param-no-delim": true, "via-received-param-with-delim": true,
		"ipv6-correct-abnf-2-colons": true,
	}
	files, err := filepath.Glob("testdata/*/*.dat")
	if err != nil || len(files) < 50 {
		t.Fatalf("torture corpus missing: %d files, %v", len(files), err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".dat")
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ok, why := check(raw) // must not panic, whatever the verdict
		switch {
		case mustReject[name] && ok:
			t.Errorf("%s: invalid message accepted", name)
		case mustAccept[name] && !ok:
			t.Errorf("%s: valid message refused: %s", name, why)
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
