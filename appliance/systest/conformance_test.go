package systest

// The RFC 4475 and RFC 5118 torture messages (a byte-exact copy of
// ../shared/conformance in core/sipcheck/testdata) sent to the running
// switch over UDP and over TCP, each answer checked against the RFC's
// verdict for that message, and the switch checked alive after each.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type verdictKind int

const (
	valid    verdictKind = iota // must be answered, not with 400 or 500 (want: the statuses the RFC and our role allow)
	invalid                     // must never get a 2xx (want, when set: the statuses a response may have)
	response                    // a response: absorbed, nothing sent back
	udpOnly                     // only meaningful over UDP (no or wrong framing): over TCP, anything but a 2xx
)

type verdict struct {
	kind verdictKind
	want []int // allowed final statuses; empty: any allowed by kind
	why  string
}

// verdicts: RFC 4475 §3 and RFC 5118 §4, for a registrar and B2BUA that
// challenges every request it does not trust (INVITE 407, REGISTER 401)
// and answers OPTIONS itself. Every file of the set has an entry; the
// test fails for a file without one.
var verdicts = map[string]verdict{
	// RFC 4475 §3.1.1: valid messages.
	"wsinv":      {valid, []int{481}, "3.1.1.1 short tortuous INVITE; its To tag names no dialog here"},
	"intmeth":    {valid, []int{501}, "3.1.1.2 unknown method: an endpoint answers 501"},
	"esc01":      {valid, []int{407}, "3.1.1.3 escaped characters in the URI"},
	"escnull":    {valid, []int{401}, "3.1.1.4 escaped nulls in URIs"},
	"esc02":      {valid, []int{501}, "3.1.1.5 % that is not an escape: an unknown method"},
	"lwsdisp":    {valid, []int{200}, "3.1.1.6 display name with no space before <"},
	"longreq":    {valid, []int{407}, "3.1.1.7 long values in header fields"},
	"dblreq":     {udpOnly, []int{401}, "3.1.1.8 extra octets after the REGISTER in the datagram: ignored"},
	"semiuri":    {valid, []int{200}, "3.1.1.9 semicolon-separated parameters in the URI user part"},
	"transports": {valid, []int{200}, "3.1.1.10 varied transports in Via"},
	"mpart01":    {valid, []int{405}, "3.1.1.11 multipart MIME MESSAGE: outside a dialog we do not take MESSAGE"},
	"unreason":   {response, nil, "3.1.1.12 unusual reason phrase"},
	"noreason":   {response, nil, "3.1.1.13 empty reason phrase"},
	// RFC 4475 §3.1.2: invalid messages.
	"badinv01":   {invalid, nil, "3.1.2.1 extraneous header separators"},
	"clerr":      {invalid, []int{400}, "3.1.2.2 Content-Length larger than the message"},
	"ncl":        {invalid, []int{400}, "3.1.2.3 negative Content-Length"},
	"scalar02":   {invalid, []int{400}, "3.1.2.4 request scalar fields with overlarge values"},
	"scalarlg":   {response, nil, "3.1.2.5 response scalar fields with overlarge values"},
	"quotbal":    {invalid, []int{400}, "3.1.2.6 unterminated quoted string in display name"},
	"ltgtruri":   {invalid, []int{400}, "3.1.2.7 <> enclosing the Request-URI"},
	"lwsruri":    {invalid, []int{400}, "3.1.2.8 malformed SIP Request-URI (embedded LWS)"},
	"lwsstart":   {invalid, []int{400}, "3.1.2.9 multiple SP separating request-line elements"},
	"trws":       {invalid, []int{400}, "3.1.2.10 SP characters at the end of the request line"},
	"escruri":    {invalid, []int{400}, "3.1.2.11 escaped headers in the Request-URI"},
	"baddate":    {valid, []int{407}, "3.1.2.12 invalid time zone in Date: we do not use Date"},
	"regbadct":   {invalid, []int{400, 401}, "3.1.2.13 name-addr URI not in <>"},
	"badaspec":   {invalid, []int{400}, "3.1.2.14 spaces within addr-spec"},
	"baddn":      {invalid, []int{400}, "3.1.2.15 non-token characters in display name"},
	"badvers":    {invalid, []int{505}, "3.1.2.16 unknown protocol version"},
	"mismatch01": {invalid, []int{400}, "3.1.2.17 start line and CSeq method mismatch"},
	"mismatch02": {invalid, []int{400, 501}, "3.1.2.18 unknown method with CSeq method mismatch"},
	"bigcode":    {response, nil, "3.1.2.19 overlarge response code"},
	// RFC 4475 §3.2: transaction layer semantics.
	"badbranch": {invalid, []int{400}, "3.2.1 missing transaction identifier (branch is only the cookie)"},
	// RFC 4475 §3.3: application layer semantics.
	"insuf":    {invalid, []int{400}, "3.3.1 missing required header fields"},
	"unkscm":   {valid, []int{416}, "3.3.2 Request-URI with unknown scheme"},
	"novelsc":  {valid, []int{416, 404}, "3.3.3 Request-URI with known but atypical scheme"},
	"unksm2":   {invalid, []int{400}, "3.3.4 unknown URI schemes in header fields: a registrar answers 400 (To must be a SIP or SIPS AOR)"},
	"bext01":   {valid, []int{420}, "3.3.5 proxy-require and require"},
	"invut":    {valid, []int{407, 415}, "3.3.6 unknown content-type"},
	"regaut01": {valid, []int{401}, "3.3.7 unknown authorization scheme"},
	"multi01":  {invalid, []int{400}, "3.3.8 multiple values in single-value required fields"},
	"mcl01":    {invalid, []int{400}, "3.3.9 multiple Content-Length values"},
	"bcast":    {response, nil, "3.3.10 200 OK response with broadcast Via sent-by"},
	"zeromf":   {valid, []int{200, 483}, "3.3.11 Max-Forwards of zero"},
	"cparam01": {valid, []int{401}, "3.3.12 REGISTER with a contact parameter"},
	"cparam02": {valid, []int{401}, "3.3.13 REGISTER with a url parameter"},
	"regescrt": {valid, []int{401}, "3.3.14 REGISTER with a URL escaped header"},
	"sdp01":    {invalid, []int{407, 406, 400}, "3.3.15 unacceptable Accept offering: challenged before its body matters"},
	// RFC 4475 §3.4: backward compatibility.
	"inv2543": {udpOnly, []int{407}, "3.4.1 INVITE with RFC 2543 syntax (no branch, no From tag, no Content-Length: UDP only)"},
	// Not in the RFC: a scratch file that travels with its archive.
	"test": {invalid, nil, "not a SIP message (no SIP version in the request line)"},
	// RFC 5118.
	"ipv6-good":                     {valid, []int{401}, "5118 4.1 valid IPv6 reference"},
	"ipv6-bad":                      {invalid, []int{400}, "5118 4.2 invalid IPv6 reference (no brackets)"},
	"port-ambiguous":                {valid, []int{401}, "5118 4.3 port ambiguous in a SIP URI"},
	"port-unambiguous":              {valid, []int{401}, "5118 4.4 port unambiguous in a SIP URI"},
	"via-received-param-with-delim": {valid, []int{481}, "5118 4.5 IPv6 in Via received with brackets; BYE of no dialog"},
	"via-received-param-no-delim":   {valid, []int{200}, "5118 4.5 IPv6 in Via received without brackets"},
	"ipv6-in-sdp":                   {valid, []int{407}, "5118 4.6 SIP request with IPv6 addresses in SDP body"},
	"mult-ip-in-header":             {valid, []int{481}, "5118 4.7 multiple IP addresses in SIP headers; BYE of no dialog"},
	"mult-ip-in-sdp":                {valid, []int{407}, "5118 4.8 multiple IP addresses in SDP"},
	"ipv4-mapped-ipv6":              {valid, []int{407}, "5118 4.9 IPv4-mapped IPv6 addresses"},
	"ipv6-bug-abnf-3-colons":        {invalid, []int{400}, "5118 4.10 IPv6 reference bug in RFC 3261 ABNF (three colons)"},
	"ipv6-correct-abnf-2-colons":    {valid, []int{200}, "5118 4.10 the correct form (two colons)"},
}

func tortureFiles(t *testing.T) []string {
	t.Helper()
	root, err := repoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "core", "sipcheck", "testdata", "*", "*.dat"))
	if err != nil || len(files) != 62 {
		t.Fatalf("torture corpus: %d files, want 62 (%v)", len(files), err)
	}
	sort.Strings(files)
	return files
}

var loopbackHost atomic.Int32

// nextLoopback is a 127.0.0.x of its own for each UDP sender: answers go
// to the Via's port (5060 mostly) at the sender's address.
func nextLoopback() string {
	return fmt.Sprintf("127.0.0.%d", 20+loopbackHost.Add(1)%200)
}

// viaPort is the port UDP answers to raw go to: rport asks for the source
// port, else the top Via's sent-by port, else 5060.
var viaLine = regexp.MustCompile(`(?mi)^(?:via|v)[ \t]*:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)`)

func viaPort(raw []byte) (port int, rport bool) {
	m := viaLine.FindSubmatch(raw)
	if m == nil {
		return 5060, false
	}
	v := strings.Join(strings.Fields(string(m[1])), " ")
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ";")
	for _, p := range parts[1:] {
		if strings.TrimSpace(strings.ToLower(p)) == "rport" {
			rport = true
		}
	}
	sentBy := strings.TrimSpace(parts[0])
	if f := strings.Fields(sentBy); len(f) > 0 {
		sentBy = f[len(f)-1]
	}
	if i := strings.LastIndexByte(sentBy, ':'); i >= 0 && !strings.HasSuffix(sentBy, "]") {
		if n, err := strconv.Atoi(sentBy[i+1:]); err == nil {
			return n, rport
		}
	}
	return 5060, rport
}

// finalStatus reads the status of each response in data (a datagram or
// a stream) and returns the first final one (0: none) and all statuses.
func statuses(data []byte) []int {
	var out []int
	for _, line := range strings.Split(string(data), "\r\n") {
		if rest, ok := strings.CutPrefix(line, "SIP/2.0 "); ok {
			if n, err := strconv.Atoi(strings.Fields(rest + " x")[0]); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

func finalOf(sts []int) int {
	for _, s := range sts {
		if s >= 200 {
			return s
		}
	}
	return 0
}

// sendUDP sends raw to srv from a socket bound where the answer will go,
// and returns the statuses received within wait.
func sendUDP(t *testing.T, srv *server, raw []byte, wait time.Duration) []int {
	t.Helper()
	port, rport := viaPort(raw)
	var c *net.UDPConn
	var err error
	for range 50 {
		host := nextLoopback()
		p := port
		if rport {
			p = 0
		}
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(host), Port: p})
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no loopback address free for UDP port %d: %v", port, err)
	}
	defer c.Close()
	dst, _ := net.ResolveUDPAddr("udp4", srv.Addr)
	if _, err := c.WriteToUDP(raw, dst); err != nil {
		t.Fatal(err)
	}
	return readAnswers(func(b []byte) (int, error) { n, _, err := c.ReadFromUDP(b); return n, err }, c.SetReadDeadline, wait)
}

// sendTCP sends raw over a TCP connection and returns the statuses read
// on it within wait.
func sendTCP(t *testing.T, srv *server, raw []byte, wait time.Duration) []int {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	return readAnswers(r.Read, c.SetReadDeadline, wait)
}

func readAnswers(read func([]byte) (int, error), deadline func(time.Time) error, wait time.Duration) []int {
	var all bytes.Buffer
	buf := make([]byte, 65536)
	end := time.Now().Add(wait)
	for time.Now().Before(end) {
		deadline(end)
		n, err := read(buf)
		all.Write(buf[:n])
		if finalOf(statuses(all.Bytes())) != 0 {
			// A final answer: wait a moment for anything after it (a
			// second final would be a fault too).
			end = time.Now().Add(300 * time.Millisecond)
		}
		if err != nil {
			break
		}
	}
	return statuses(all.Bytes())
}

// alive checks that the switch still answers OPTIONS over UDP.
func alive(t *testing.T, srv *server, after string) {
	t.Helper()
	p := newRawPhone(t)
	me := fmt.Sprintf("127.0.0.1:%d", p.Port)
	p.send(t, srv.Addr, fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-alive-%d\r\n"+
		"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:%s>\r\nCall-ID: alive-%d@test\r\nCSeq: 1 OPTIONS\r\n"+
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", srv.Addr, me, p.Port, srv.Addr, p.Port))
	if res, ok := p.recvResponse("OPTIONS", 1); !ok || res.Status != 200 {
		t.Fatalf("after %s the switch no longer answers OPTIONS with 200", after)
	}
}

// Every file of the corpus has a verdict; each is sent over UDP and over
// TCP, each time to a switch of its own (the same message over the other
// transport would be a retransmission of the first, and several
// REGISTERs of the set share a Call-ID and CSeq).
func TestConformance(t *testing.T) {
	files := tortureFiles(t)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".dat")
		v, ok := verdicts[name]
		if !ok {
			t.Errorf("%s: no verdict: every file of the corpus must have one", name)
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, transport := range []string{"udp", "tcp"} {
			t.Run(name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, defaultConfig())
				var got []int
				if transport == "udp" {
					got = sendUDP(t, srv, raw, time.Second)
				} else {
					got = sendTCP(t, srv, raw, time.Second)
				}
				t.Logf("%s over %s: %v", name, transport, got)
				judge(t, v, transport, got)
				alive(t, srv, name+" over "+transport)
			})
		}
	}
}

func judge(t *testing.T, v verdict, transport string, got []int) {
	t.Helper()
	final := finalOf(got)
	kind := v.kind
	if kind == udpOnly {
		if transport == "tcp" {
			kind = invalid // not framed for a stream: it must not succeed there
		} else {
			kind = valid
		}
	}
	allowed := func() bool {
		if len(v.want) == 0 {
			return true
		}
		for _, w := range v.want {
			if w == final {
				return true
			}
		}
		return false
	}
	switch kind {
	case valid:
		if final == 0 {
			t.Errorf("valid (%s): no answer (got %v)", v.why, got)
		} else if final == 400 || final == 500 || !allowed() {
			t.Errorf("valid (%s): answered %d, want one of %v", v.why, final, v.want)
		}
	case invalid:
		if final >= 200 && final < 300 {
			t.Errorf("invalid (%s): answered %d", v.why, final)
		} else if final != 0 && v.kind != udpOnly && !allowed() {
			t.Errorf("invalid (%s): answered %d, want one of %v or no answer", v.why, final, v.want)
		}
	case response:
		if len(got) > 0 {
			t.Errorf("a response (%s) was answered: %v", v.why, got)
		}
	}
	finals := map[int]bool{} // retransmissions of one final are fine
	for _, s := range got {
		if s >= 200 {
			finals[s] = true
		}
	}
	// Over TCP a message framed for UDP only can be two requests on the
	// stream (dblreq: a REGISTER, then an INVITE): each may get its own
	// answer (401 and 407 were seen), and either must only not be a 2xx.
	if len(finals) > 1 && !(v.kind == udpOnly && transport == "tcp") {
		t.Errorf("%s: different final answers: %v", transport, got)
	}
	for s := range finals {
		if v.kind == udpOnly && transport == "tcp" && s < 300 {
			t.Errorf("tcp: a message framed for UDP only succeeded: %v", got)
		}
	}
}

// A TCP request whose connection closes before the answer: the answer
// goes to the address the request came from, at the Via's port, over a
// new connection (RFC 3261 §18.2.2, received), and the Via host name is
// never looked up in DNS (sipgo did, and asked the machine's resolver,
// outside loopback, from the tests). The close races the answer: some of
// the thirty requests get theirs on the old connection, some on a new
// one, some none (the connection was taken just before it closed); none
// may lead to a lookup.
func TestTCPAnswerNeverLooksUpVia(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	viaNew := make(chan int, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			b := make([]byte, 4096)
			n, _ := c.Read(b)
			viaNew <- finalOf(statuses(b[:n]))
			c.Close()
		}
	}()
	direct := 0
	for i := range 30 {
		c, err := net.Dial("tcp4", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP caller.invalid:%d;branch=z9hG4bK-close-%d\r\n"+
			"From: <sip:probe@caller.invalid>;tag=c\r\nTo: <sip:%s>\r\nCall-ID: tcp-close-%d@test\r\nCSeq: 1 OPTIONS\r\n"+
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", srv.Addr, port, i, srv.Addr, i)
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		b := make([]byte, 4096)
		if n, _ := c.Read(b); finalOf(statuses(b[:n])) == 200 {
			direct++
		}
		c.Close()
	}
	time.Sleep(time.Second)
	t.Logf("answers on the old connection: %d, on a new one: %d, of 30", direct, len(viaNew))
	for len(viaNew) > 0 {
		if s := <-viaNew; s != 200 {
			t.Errorf("an answer over a new connection: %d", s)
		}
	}
	log, _ := os.ReadFile(srv.LogPath)
	for _, bad := range []string{"lookup", "get connection failed"} {
		if strings.Contains(string(log), bad) {
			t.Errorf("the switch tried to resolve the Via host (%q in its log)", bad)
		}
	}
}
