package systest

import (
	"fmt"
	"math/rand"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMalformedInputKeepsServing: garbage datagrams and TCP streams are
// dropped; parseable but invalid requests get the right 4xx (never a 2xx);
// afterwards the server still answers sipp's OPTIONS and registers.
func TestMalformedInputKeepsServing(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())

	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, _ := net.ResolveUDPAddr("udp", srv.Addr)
	me := conn.LocalAddr().String()

	// Garbage: random bytes, truncated and oversized messages.
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 300; i++ {
		b := make([]byte, 1+rng.Intn(1400))
		rng.Read(b)
		conn.WriteTo(b, dst)
	}
	conn.WriteTo([]byte("INVITE sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP "+me), dst)
	conn.WriteTo([]byte("REGISTER sip:x SIP/2.0\r\n"+strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 70)+"\r\n"), dst)
	if c, err := net.Dial("tcp", srv.Addr); err == nil {
		c.Write([]byte("\x00\xff\xfe garbage\r\n\r\nContent-Length: -5\r\n\r\n"))
		c.Close()
	}

	msg := func(method, ruri, cseqMethod, extra, body string) string {
		return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%d\r\n"+
			"From: <sip:1001@127.0.0.1>;tag=t1\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: malformed-%d@test\r\n"+
			"CSeq: 1 %s\r\nMax-Forwards: 70\r\n%sContent-Length: %d\r\n\r\n%s",
			method, ruri, me, rng.Int63(), rng.Int63(), cseqMethod, extra, len(body), body)
	}
	cases := []struct {
		name string
		raw  string
		want int
	}{
		{"CSeq method mismatch", msg("INVITE", "sip:1002@127.0.0.1", "BYE", "", ""), 400},
		{"unsupported URI scheme", msg("INVITE", "http://example.com/", "INVITE", "", ""), 416},
		{"unknown Require", msg("OPTIONS", "sip:127.0.0.1", "OPTIONS", "Require: nosuchext\r\n", ""), 420},
		{"body without Content-Type", msg("INVITE", "sip:1002@127.0.0.1", "INVITE", "", "v=0\r\n"), 400},
		{"repeated To", msg("REGISTER", "sip:127.0.0.1", "REGISTER", "To: <sip:1003@127.0.0.1>\r\n", ""), 400},
		{"Max-Forwards 0", strings.Replace(msg("INVITE", "sip:1002@127.0.0.1", "INVITE", "", ""), "Max-Forwards: 70", "Max-Forwards: 0", 1), 483},
		{"bad Expires", msg("REGISTER", "sip:127.0.0.1", "REGISTER", "Expires: soon\r\n", ""), 400},
	}
	buf := make([]byte, 65535)
	for _, c := range cases {
		if _, err := conn.WriteTo([]byte(c.raw), dst); err != nil {
			t.Fatal(err)
		}
		got := 0
		deadline := time.Now().Add(5 * time.Second)
		for got == 0 && time.Now().Before(deadline) {
			conn.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				continue
			}
			line := string(buf[:n])
			if i := strings.Index(line, "\r\n"); i > 0 {
				line = line[:i]
			}
			var code int
			if _, err := fmt.Sscanf(line, "SIP/2.0 %d", &code); err == nil && code >= 200 {
				got = code
			}
		}
		if got != c.want {
			t.Errorf("%s: final response %d, want %d", c.name, got, c.want)
		}
	}

	// Still serving.
	r := runSipp(t, sippOpts{Name: "options-after-garbage", Scenario: "options.xml", Remote: srv.Addr, Timeout: 10 * time.Second})
	r.requireOK(t)
	requireFinals(t, r, "OPTIONS", 200)
	registerContact(t, srv, "1002", "secret1002", freePort(t)).requireOK(t)

	// What did not parse was dropped and counted.
	srv.stop()
	log, _ := os.ReadFile(srv.LogPath)
	m := regexp.MustCompile(`msg=stopped .*unparseable=(\d+)`).FindSubmatch(log)
	if m == nil || string(m[1]) == "0" {
		t.Errorf("no count of the unparseable messages in the stop line (%q)", m)
	}
}
