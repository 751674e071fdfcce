package gate

import (
	"bytes"
	"math/rand/v2"
	"strconv"
)

// head is what the gate reads of a request without parsing it: the
// method and the headers a stateless answer needs. Values alias the
// datagram.
type head struct {
	method                 []byte
	vias                   [][]byte // each Via header line's value, in order
	from, to, callID, cseq []byte
	toTag                  bool
	viaStore               [4][]byte
}

var crlf = []byte("\r\n")

// readHead reads the start line and headers of a request; false when
// they are not there in the plain form (a response, folded lines, a
// header missing): the normal path decides about those.
func readHead(data []byte, h *head) bool {
	eol := bytes.Index(data, crlf)
	if eol < 0 {
		return false
	}
	sp := bytes.IndexByte(data[:eol], ' ')
	if sp <= 0 || bytes.HasPrefix(data, []byte("SIP/")) {
		return false
	}
	h.method = data[:sp]
	h.vias = h.viaStore[:0]
	at := eol + 2
	for {
		n := bytes.Index(data[at:], crlf)
		if n < 0 {
			return false
		}
		if n == 0 {
			break // the empty line: end of headers
		}
		line := data[at : at+n]
		if line[0] == ' ' || line[0] == '\t' {
			return false // folded: leave it to the parser
		}
		at += n + 2
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false
		}
		name := bytes.TrimRight(line[:colon], " \t")
		value := bytes.TrimSpace(line[colon+1:])
		switch {
		case is(name, "via", "v"):
			h.vias = append(h.vias, value)
		case is(name, "from", "f"):
			h.from = value
		case is(name, "to", "t"):
			h.to = value
			h.toTag = hasTag(value)
		case is(name, "call-id", "i"):
			h.callID = value
		case is(name, "cseq", ""):
			h.cseq = value
		}
	}
	return len(h.vias) > 0 && len(h.from) > 0 && len(h.to) > 0 && len(h.callID) > 0 && len(h.cseq) > 0
}

// is compares a header name with its long and compact forms, ignoring
// ASCII case.
func is(name []byte, long, short string) bool {
	return bytes.EqualFold(name, []byte(long)) || short != "" && bytes.EqualFold(name, []byte(short))
}

var emptyTag = []byte{}

// hasTag reports whether a From/To value has a tag parameter.
func hasTag(v []byte) bool { return tagOf(v) != nil }

// tagOf returns the tag value of a From/To value, or nil.
func tagOf(v []byte) []byte {
	if i := bytes.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	for {
		i := bytes.IndexByte(v, ';')
		if i < 0 {
			return nil
		}
		v = bytes.TrimLeft(v[i+1:], " \t")
		if len(v) >= 3 && bytes.EqualFold(v[:3], []byte("tag")) {
			rest := bytes.TrimLeft(v[3:], " \t")
			if len(rest) > 0 && rest[0] == '=' {
				rest = bytes.TrimLeft(rest[1:], " \t")
				if j := bytes.IndexAny(rest, "; \t"); j >= 0 {
					rest = rest[:j]
				}
				if len(rest) == 0 {
					return emptyTag // a tag all the same
				}
				return rest
			}
		}
	}
}

// refusedTag starts the To tag of every stateless refusal: the ACK of
// such a refusal is recognised by it and absorbed at the gate.
const refusedTag = "ovl-"

// overloaded builds the stateless 503 for a new call refused for load
// (RFC 3261 §21.5.4; RFC 6357: Retry-After spreads the retries; Reason
// Q.850 42, switching equipment congestion). oc, when the client offered
// RFC 7339 overload control, is appended to the top Via.
func overloaded(h *head, retryAfter int, oc string) []byte {
	n := 200 + len(h.from) + len(h.to) + len(h.callID) + len(h.cseq) + len(oc)
	for _, v := range h.vias {
		n += len(v) + 7
	}
	b := make([]byte, 0, n)
	b = append(b, "SIP/2.0 503 Service Unavailable\r\n"...)
	for i, v := range h.vias {
		b = append(b, "Via: "...)
		if i == 0 && oc != "" {
			// oc belongs to the first value of the line ("Via: a, b").
			end := len(v)
			if j := bytes.IndexByte(v, ','); j >= 0 {
				end = j
			}
			b = appendWithoutOC(b, v[:end])
			b = append(b, oc...)
			v = v[end:]
		}
		b = append(b, v...)
		b = append(b, crlf...)
	}
	b = append(b, "From: "...)
	b = append(b, h.from...)
	b = append(b, "\r\nTo: "...)
	b = append(b, h.to...)
	b = append(b, ";tag="+refusedTag...)
	b = strconv.AppendUint(b, rand.Uint64(), 36)
	b = append(b, "\r\nCall-ID: "...)
	b = append(b, h.callID...)
	b = append(b, "\r\nCSeq: "...)
	b = append(b, h.cseq...)
	b = append(b, "\r\nRetry-After: "...)
	b = strconv.AppendInt(b, int64(retryAfter), 10)
	b = append(b, "\r\nReason: Q.850;cause=42;text=\"Switching equipment congestion\"\r\nContent-Length: 0\r\n\r\n"...)
	return b
}

// offersOC reports whether the top Via carries the oc parameter (RFC
// 7339 §5.1: the client supports overload control).
func offersOC(via []byte) bool {
	if i := bytes.IndexByte(via, ','); i >= 0 {
		via = via[:i]
	}
	for {
		i := bytes.IndexByte(via, ';')
		if i < 0 {
			return false
		}
		via = bytes.TrimLeft(via[i+1:], " \t")
		if len(via) >= 2 && bytes.EqualFold(via[:2], []byte("oc")) {
			rest := bytes.TrimLeft(via[2:], " \t")
			if len(rest) == 0 || rest[0] == ';' || rest[0] == '=' || rest[0] == ',' {
				return true
			}
		}
	}
}

// appendWithoutOC appends a Via value without its oc parameter (the one
// the client offered: the answer sets its value, RFC 7339 §5.2).
func appendWithoutOC(b, via []byte) []byte {
	for len(via) > 0 {
		i := bytes.IndexByte(via, ';')
		if i < 0 {
			return append(b, via...)
		}
		b = append(b, via[:i]...)
		via = via[i+1:]
		end := bytes.IndexByte(via, ';')
		if end < 0 {
			end = len(via)
		}
		name := bytes.TrimSpace(via[:end])
		if j := bytes.IndexByte(name, '='); j >= 0 {
			name = bytes.TrimSpace(name[:j])
		}
		if !bytes.EqualFold(name, []byte("oc")) {
			b = append(b, ';')
			b = append(b, via[:end]...)
		}
		via = via[end:]
	}
	return b
}
