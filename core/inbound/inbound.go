// Package inbound mends, before sipgo's parser and transaction layer see
// it, what they would refuse or send astray in a request that RFC 3261
// accepts. It works on the bytes of one whole request (a UDP datagram, or
// one message framed out of a TCP stream: Listener) and changes nothing
// else:
//
//   - A Request-URI scheme with characters sipgo's parser refuses
//     ("soap.beep", RFC 3986 allows digits, "+", "-", "."): the scheme is
//     renamed "unsupported", so that the request is answered 416 (RFC
//     3261 §8.2.2.1) instead of being dropped. Only the start line
//     changes, and no response carries it.
//   - The top Via gets received=<source address> when its sent-by is not
//     that address, and a bare rport gets its value (RFC 3261 §18.2.1, RFC
//     3581): responses then go to the address the request came from, and
//     sipgo never looks a Via host name up in DNS (it did, for a TCP
//     request whose connection had closed before the answer).
//   - A top Via without any branch (RFC 2543) gets one derived from what
//     RFC 3261 §17.2.3 matches such transactions on (Call-ID, CSeq number,
//     From tag, sent-by, Request-URI): sipgo cannot match a request
//     without both a branch and a From tag. The INVITE, its CANCEL and its
//     ACK get the same branch.
//
// A request it cannot read is passed on untouched: sipgo decides.
//
// This is the boundary with sipgo for now (docs/architecture.md); a
// receive path of our own (issue 11) parses once and makes it moot.
package inbound

import (
	"bytes"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
)

// UnsupportedScheme is what an unreadable Request-URI scheme is renamed to.
const UnsupportedScheme = "unsupported"

// Fix returns the request data mended as described in the package
// comment, or data itself when there is nothing to mend (or it is not a
// request it can read). src is where the request came from. The common
// case (nothing to mend) allocates nothing: it runs on every datagram.
func Fix(data []byte, src netip.AddrPort) []byte {
	if len(data) < 16 || bytes.HasPrefix(data, []byte("SIP/")) {
		return data
	}
	eol := bytes.Index(data, crlf)
	if eol < 0 {
		return data
	}
	var edits [3]edit
	n := 0
	if e, ok := fixScheme(data[:eol]); ok {
		edits[n] = e
		n++
	}
	if via, ok := findHeader(data, eol+2, "via", "v"); ok {
		n += fixVia(data, via, src, edits[n:])
	}
	if n == 0 {
		return data
	}
	return apply(data, edits[:n])
}

var crlf = []byte("\r\n")

// edit replaces data[from:to] with text (from == to: an insertion).
type edit struct {
	from, to int
	text     string
}

func apply(data []byte, edits []edit) []byte {
	n := len(data)
	for _, e := range edits {
		n += len(e.text) - (e.to - e.from)
	}
	out := make([]byte, 0, n)
	at := 0
	for _, e := range edits { // in ascending order, not overlapping
		out = append(out, data[at:e.from]...)
		out = append(out, e.text...)
		at = e.to
	}
	return append(out, data[at:]...)
}

// fixScheme renames a Request-URI scheme sipgo cannot parse but RFC 3986
// allows (ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
func fixScheme(line []byte) (edit, bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return edit{}, false
	}
	uri := line[sp+1:]
	colon := bytes.IndexByte(uri, ':')
	if colon <= 0 || bytes.IndexByte(uri[:colon], ' ') >= 0 {
		return edit{}, false
	}
	scheme := uri[:colon]
	if !isAlpha(scheme[0]) {
		return edit{}, false
	}
	lettersOnly := true
	for _, c := range scheme {
		switch {
		case isAlpha(c):
		case c >= '0' && c <= '9', c == '+', c == '-', c == '.':
			lettersOnly = false
		default:
			return edit{}, false // not a scheme at all: the parser refuses it
		}
	}
	if lettersOnly {
		return edit{}, false
	}
	return edit{from: sp + 1, to: sp + 1 + colon, text: UnsupportedScheme}, true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

type span struct{ start, end int } // a header's value, folded lines included

// findHeader finds the first header named long or short (any case) in the
// header lines from at to the empty line, and returns its value.
func findHeader(data []byte, at int, long, short string) (span, bool) {
	for at < len(data) {
		eol := bytes.Index(data[at:], crlf)
		if eol <= 0 { // the empty line, or no line end at all
			return span{}, false
		}
		end := at + eol
		for end+2 < len(data) && (data[end+2] == ' ' || data[end+2] == '\t') { // folded
			next := bytes.Index(data[end+2:], crlf)
			if next < 0 {
				return span{}, false
			}
			end += 2 + next
		}
		line := data[at:end]
		if colon := bytes.IndexByte(line, ':'); colon > 0 {
			name := bytes.TrimRight(line[:colon], " \t")
			if equalFold(name, long) || equalFold(name, short) {
				return span{at + colon + 1, end}, true
			}
		}
		at = end + 2
	}
	return span{}, false
}

// equalFold compares ASCII case-insensitively, without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// fixVia adds received (and rport's value) to the top Via, and a branch
// when it has none; it writes its edits into out and returns how many.
func fixVia(data []byte, via span, src netip.AddrPort, out []edit) int {
	v := data[via.start:via.end]
	// The first value ends at a comma outside quotes and brackets.
	end := len(v)
	quoted, depth := false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == ',' && depth == 0:
			end = i
			i = len(v)
		}
	}
	for end > 0 && isLWS(v[end-1]) {
		end--
	}
	first := v[:end]
	semi := bytes.IndexByte(first, ';')
	head := first
	if semi >= 0 {
		head = first[:semi]
	}
	host, sentBy, ok := sentBy(head)
	if !ok {
		return 0 // not a Via the parser takes: leave it to refuse
	}
	var hasBranch, hasReceived, bareRport bool
	rportAt := -1
	if semi >= 0 {
		off := semi + 1
		for off <= len(first) {
			next := bytes.IndexByte(first[off:], ';')
			p := first[off:]
			if next >= 0 {
				p = first[off : off+next]
			}
			key, val := p, []byte(nil)
			if eq := bytes.IndexByte(p, '='); eq >= 0 {
				key, val = p[:eq], p[eq+1:]
			}
			key = bytes.TrimSpace(key)
			switch {
			case equalFold(key, "branch"):
				hasBranch = true
			case equalFold(key, "received"):
				hasReceived = true
			case equalFold(key, "rport") && len(bytes.TrimSpace(val)) == 0:
				bareRport = true
				rportAt = off + len(p)
				for rportAt > off && isLWS(first[rportAt-1]) {
					rportAt--
				}
				if val != nil { // "rport=" with nothing after it
					rportAt = -1
				}
			}
			if next < 0 {
				break
			}
			off += next + 1
		}
	}
	n := 0
	base := via.start
	if bareRport && rportAt > 0 {
		out[n] = edit{from: base + rportAt, to: base + rportAt, text: "=" + strconv.Itoa(int(src.Port()))}
		n++
	}
	ip := src.Addr().Unmap()
	needReceived := !hasReceived && ip.IsValid() && (bareRport || !sameAddr(host, ip))
	if !needReceived && hasBranch {
		return n
	}
	var add strings.Builder
	if needReceived {
		add.WriteString(";received=")
		add.WriteString(ip.String())
	}
	if !hasBranch {
		add.WriteString(";branch=")
		add.WriteString(branch2543(data, sentBy))
	}
	out[n] = edit{from: base + end, to: base + end, text: add.String()}
	return n + 1
}

// sentBy reads "SIP / 2.0 / transport sent-by" (RFC 3261 §20.42; LWS may
// surround "/" and ":") and returns the host of sent-by (brackets of an
// IPv6 reference removed) and the whole sent-by.
func sentBy(head []byte) (host, all []byte, ok bool) {
	// The protocol, with the LWS around its "/"s skipped: "sip/2.0/" and a token.
	const proto = "sip/2.0/"
	i, k := 0, 0
	for i < len(head) && k < len(proto) {
		c := head[i]
		i++
		if isLWS(c) {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != proto[k] {
			return nil, nil, false
		}
		k++
	}
	for i < len(head) && isLWS(head[i]) {
		i++
	}
	t := i
	for i < len(head) && (isAlpha(head[i]) || head[i] >= '0' && head[i] <= '9') {
		i++
	}
	if k < len(proto) || i == t || i == len(head) || !isLWS(head[i]) {
		return nil, nil, false
	}
	all = bytes.TrimSpace(head[i:])
	if len(all) == 0 {
		return nil, nil, false
	}
	if bytes.ContainsAny(all, " \t\r\n") { // "host : port": rare, so tidy it the slow way
		all = []byte(tightAround(string(all), ':'))
	}
	host = all
	if host[0] == '[' {
		if j := bytes.IndexByte(host, ']'); j > 0 {
			host = host[1:j]
		}
	} else if j := bytes.LastIndexByte(host, ':'); j >= 0 {
		host = host[:j]
	}
	return host, all, true
}

// sameAddr reports whether host (from a Via) is the address ip, without
// allocating when it is written the way ip prints.
func sameAddr(host []byte, ip netip.Addr) bool {
	var buf [64]byte
	if bytes.Equal(host, ip.AppendTo(buf[:0])) {
		return true
	}
	a, err := netip.ParseAddr(string(host))
	return err == nil && a.Unmap() == ip
}

// tightAround removes the whitespace around every sep in s.
func tightAround(s string, sep byte) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isLWS(c) {
			j := i
			for j < len(s) && isLWS(s[j]) {
				j++
			}
			if j < len(s) && s[j] == sep || len(b) > 0 && b[len(b)-1] == sep {
				i = j - 1
				continue
			}
		}
		b = append(b, c)
	}
	return string(b)
}

// indexFoldASCII is strings.Index ignoring ASCII case, on bytes (the
// header may not be UTF-8: lower-casing it could move every index).
func indexFoldASCII(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// branch2543 derives a branch from what RFC 3261 §17.2.3 matches RFC 2543
// transactions on, the method left out so that a CANCEL and the ACK of a
// failure match their INVITE. (Rare: only requests without any branch.)
func branch2543(data []byte, sentBy []byte) string {
	eol := bytes.Index(data, crlf)
	ruri := []byte(nil)
	if sp := bytes.IndexByte(data[:eol], ' '); sp > 0 {
		if sp2 := bytes.IndexByte(data[sp+1:eol], ' '); sp2 > 0 {
			ruri = data[sp+1 : sp+1+sp2]
		}
	}
	value := func(long, short string) string {
		if h, ok := findHeader(data, eol+2, long, short); ok {
			return strings.TrimSpace(string(data[h.start:h.end]))
		}
		return ""
	}
	num := ""
	if f := strings.Fields(value("cseq", "cseq")); len(f) > 0 {
		num = f[0]
	}
	from := value("from", "f")
	tag := ""
	if i := indexFoldASCII(from, ";tag="); i >= 0 {
		tag = from[i+5:]
		if j := strings.IndexAny(tag, "; \t\r\n"); j >= 0 {
			tag = tag[:j]
		}
	}
	hs := fnv.New64a()
	for _, part := range []string{value("call-id", "i"), num, tag, string(sentBy), string(ruri)} {
		hs.Write([]byte(part))
		hs.Write([]byte{0})
	}
	return "z9hG4bK-2543-" + strconv.FormatUint(hs.Sum64(), 16)
}
