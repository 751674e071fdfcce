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
// request it can read). src is where the request came from.
func Fix(data []byte, src netip.AddrPort) []byte {
	if len(data) < 16 || bytes.HasPrefix(data, []byte("SIP/")) {
		return data
	}
	eol := bytes.Index(data, crlf)
	if eol < 0 {
		return data
	}
	var edits []edit
	if e, ok := fixScheme(data[:eol]); ok {
		edits = append(edits, e)
	}
	h := headerBlock(data, eol+2)
	if h.via.end > h.via.start {
		edits = append(edits, fixVia(data, h, src)...)
	}
	if len(edits) == 0 {
		return data
	}
	return apply(data, edits)
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

type headers struct {
	via, callID, cseq, from span
	ruri                    []byte
}

// headerBlock finds the values of the headers Fix needs, from the start
// of the header lines to the empty line.
func headerBlock(data []byte, at int) headers {
	var h headers
	if sp := bytes.IndexByte(data, ' '); sp > 0 {
		if sp2 := bytes.IndexByte(data[sp+1:], ' '); sp2 > 0 {
			h.ruri = data[sp+1 : sp+1+sp2]
		}
	}
	for at < len(data) {
		eol := bytes.Index(data[at:], crlf)
		if eol <= 0 { // the empty line, or no line end at all
			return h
		}
		end := at + eol
		for end+2 < len(data) && (data[end+2] == ' ' || data[end+2] == '\t') { // folded
			next := bytes.Index(data[end+2:], crlf)
			if next < 0 {
				return h
			}
			end += 2 + next
		}
		line := data[at:end]
		if colon := bytes.IndexByte(line, ':'); colon > 0 {
			name := strings.ToLower(strings.TrimSpace(string(line[:colon])))
			s := span{at + colon + 1, end}
			switch name {
			case "via", "v":
				if h.via.end == 0 {
					h.via = s
				}
			case "call-id", "i":
				h.callID = s
			case "cseq":
				h.cseq = s
			case "from", "f":
				h.from = s
			}
		}
		at = end + 2
	}
	return h
}

// fixVia adds received (and rport's value) to the top Via, and a branch
// when it has none.
func fixVia(data []byte, h headers, src netip.AddrPort) []edit {
	v := data[h.via.start:h.via.end]
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
	// protocol "/" version "/" transport, then sent-by, then ;params.
	semi := bytes.IndexByte(first, ';')
	head := first
	if semi >= 0 {
		head = first[:semi]
	}
	// "SIP / 2.0 / UDP host : port": whitespace may surround "/" and ":".
	f := strings.Fields(tightAround(string(head), '/'))
	if len(f) < 2 || !sentProtocol(f[0]) {
		return nil // not a Via the parser takes: leave it to refuse
	}
	sentBy := strings.Join(f[1:], "")
	host := sentBy
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	var hasBranch, hasReceived, bareRport bool
	rportAt := -1
	if semi >= 0 {
		off := semi
		for _, p := range bytes.Split(first[semi+1:], []byte(";")) {
			off++ // the ';'
			key, val, hasVal := strings.Cut(string(p), "=")
			switch strings.ToLower(strings.TrimSpace(key)) {
			case "branch":
				hasBranch = true
			case "received":
				hasReceived = true
			case "rport":
				if !hasVal || strings.TrimSpace(val) == "" {
					bareRport = true
					rportAt = off + len(p) // just after "rport"
					for rportAt > off && isLWS(first[rportAt-1]) {
						rportAt--
					}
				}
			}
			off += len(p)
		}
	}
	base := h.via.start
	var edits []edit
	if bareRport && rportAt > 0 {
		edits = append(edits, edit{from: base + rportAt, to: base + rportAt, text: "=" + strconv.Itoa(int(src.Port()))})
	}
	ip := src.Addr().Unmap()
	var add strings.Builder
	if !hasReceived && ip.IsValid() {
		if a, err := netip.ParseAddr(host); bareRport || err != nil || a.Unmap() != ip {
			add.WriteString(";received=")
			add.WriteString(ip.String())
		}
	}
	if !hasBranch {
		add.WriteString(";branch=")
		add.WriteString(branch2543(data, h, sentBy))
	}
	if add.Len() > 0 {
		edits = append(edits, edit{from: base + end, to: base + end, text: add.String()})
	}
	return edits
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

// sentProtocol checks "SIP/2.0/" transport (RFC 3261 §20.42).
func sentProtocol(p string) bool {
	if len(p) < 9 || !strings.EqualFold(p[:8], "SIP/2.0/") {
		return false
	}
	for i := 8; i < len(p); i++ {
		if !isAlpha(p[i]) && (p[i] < '0' || p[i] > '9') {
			return false
		}
	}
	return true
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
// failure match their INVITE.
func branch2543(data []byte, h headers, sentBy string) string {
	hs := fnv.New64a()
	cseq := strings.Fields(string(data[h.cseq.start:h.cseq.end]))
	num := ""
	if len(cseq) > 0 {
		num = cseq[0]
	}
	from := string(data[h.from.start:h.from.end])
	tag := ""
	if i := indexFoldASCII(from, ";tag="); i >= 0 {
		tag = from[i+5:]
		if j := strings.IndexAny(tag, "; \t\r\n"); j >= 0 {
			tag = tag[:j]
		}
	}
	for _, part := range []string{strings.TrimSpace(string(data[h.callID.start:h.callID.end])), num, tag, sentBy, string(h.ruri)} {
		hs.Write([]byte(part))
		hs.Write([]byte{0})
	}
	return "z9hG4bK-2543-" + strconv.FormatUint(hs.Sum64(), 16)
}
