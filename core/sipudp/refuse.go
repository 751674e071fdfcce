package sipudp

import (
	"bytes"
	"encoding/hex"
	"hash/maphash"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/udpbatch"
)

// Refusal is what a 503 refusing a new call under overload carries
// besides the request's own headers.
type Refusal struct {
	// Headers are whole header lines, each ending in CRLF (Retry-After,
	// Reason).
	Headers string
	// OC are RFC 7339's parameters (";oc=...;oc-algo=...;...") for the
	// top Via of a request that offered overload control.
	OC string
}

// refusalTag starts the To tag of a refusal made from the bytes, so that
// its ACK is known unread. A switch's own tags are hex: none starts so.
const refusalTag = "x503-"

// shedFast refuses a new call as it is read, before it is parsed or
// queued, when its worker's queue holds QueueNew new calls already
// (full), or in an overload episode when the workers' queues hold
// QueueShed (the episode's admission), or when Shed refuses it (at
// max_calls): the 503 is built from the
// request's bytes and sent without a transaction (as a stateless server
// would), and its ACK is dropped unread. Under overload a refusal must
// cost a small part of what an admitted call costs, or refusing the
// excess eats the capacity the admitted calls need.
//
// A copy of an INVITE in progress is never refused: one with a server
// transaction is recognised by its Call-ID, one whose transaction ended
// (answered) by Shed (the calls in progress). A copy can only overtake
// its original in a queue when the original waited there longer than the
// caller's retransmission interval (T1, 500 ms): LateAfter is under it,
// and such an original is refused in its transaction anyway. So the fast
// path runs only with LateAfter set under T1.
//
// done: the datagram was answered here. admitted: Shed admitted the
// call (the transaction layer must not ask again: the queue clocked it
// in, a draw there would refuse calls the switch has room for).
func (e *Endpoint) shedFast(data []byte, callID []byte, src netip.AddrPort, full bool, out *[]udpbatch.Datagram) (done, admitted bool) {
	if e.Shed == nil || e.Shedding == nil || e.LateAfter <= 0 || e.LateAfter >= sip.T1 {
		return false, false
	}
	shedding := e.Shedding()
	if shedding && e.fresh.Load() >= int64(e.queueShed) && e.freshWait.Load() >= e.shedWait {
		full = true // in an episode, a queue of new calls that stands
	}
	if !shedding && !full {
		return false, false
	}
	if len(callID) == 0 || e.invites.has(string(callID)) {
		return false, false
	}
	r := e.Shed(callID, full)
	if r == nil {
		return false, true
	}
	res := buildRefusal(data, r, func(topVia []byte) string { return e.refusalTagOf(callID, topVia) })
	if res == nil {
		return false, false // not plain enough to copy: the parsed path refuses it
	}
	e.refusing.Store(time.Now().UnixNano())
	if out == nil || e.closed.Load() {
		e.writeTo(res, src)
	} else {
		if e.Sent != nil {
			e.Sent(res)
		}
		*out = append(*out, udpbatch.Datagram{Data: res, Addr: src})
	}
	return true, false
}

// refusalACK reports whether data is the ACK of a refusal made from the
// bytes (in the last 64*T1, when such ACKs can still come): nothing to
// do for it.
func (e *Endpoint) refusalACK(data []byte, now time.Time) bool {
	if len(data) < 4 || string(data[:4]) != "ACK " {
		return false
	}
	last := e.refusing.Load()
	if last == 0 || now.UnixNano()-last > int64(64*sip.T1) {
		return false
	}
	tag, _ := tagValue(headerValue(data, "to", "t"))
	return bytes.HasPrefix(tag, []byte(refusalTag))
}

// refusalTagOf is the same for every copy of one request: a hash of its
// Call-ID and top Via line (its branch).
func (e *Endpoint) refusalTagOf(callID, topVia []byte) string {
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.Write(callID)
	h.Write(topVia)
	var sum [8]byte
	v := h.Sum64()
	for i := range sum {
		sum[i] = byte(v >> (8 * i))
	}
	return refusalTag + hex.EncodeToString(sum[:])
}

// buildRefusal renders the 503 to request data: status line, its Via
// lines (the top one given r.OC when it offered oc), From, To with tag,
// Call-ID and CSeq copied, then r.Headers; the To tag is tagOf(the top
// Via line), from the lines this pass finds. nil when the request is not
// plain enough to copy (a folded line, a header missing, a CSeq of
// another method): it then takes the parsed path.
func buildRefusal(data []byte, r *Refusal, tagOf func(topVia []byte) string) []byte {
	var from, to, callID, cseq []byte
	var vias [][]byte
	at := bytes.IndexByte(data, '\n') + 1
	for at > 0 && at < len(data) {
		end := bytes.IndexByte(data[at:], '\n')
		if end < 0 {
			return nil // no end of headers
		}
		line := bytes.TrimRight(data[at:at+end], "\r")
		at += end + 1
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil // folded: leave it to the parser
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil
		}
		name := bytes.TrimRight(line[:colon], " \t")
		switch {
		case isName(name, "via", "v"):
			vias = append(vias, line)
		case isName(name, "from", "f"):
			from = line
		case isName(name, "to", "t"):
			to = line
		case isName(name, "call-id", "i"):
			callID = line
		case isName(name, "cseq", ""):
			cseq = line
		}
	}
	if len(vias) == 0 || from == nil || to == nil || callID == nil || cseq == nil ||
		!bytes.Contains(cseq, []byte("INVITE")) {
		return nil
	}
	tag := tagOf(vias[0])
	b := make([]byte, 0, 256+len(r.Headers)+len(r.OC)+len(from)+len(to)+len(callID)+len(cseq)+len(vias)*len(vias[0]))
	b = append(b, "SIP/2.0 503 Service Unavailable\r\n"...)
	for i, v := range vias {
		if i == 0 && r.OC != "" && bytes.IndexByte(v, ',') < 0 {
			if w, ok := withoutOC(v); ok {
				v = append(w, r.OC...)
			}
		}
		b = append(append(b, v...), "\r\n"...)
	}
	b = append(append(b, from...), "\r\n"...)
	b = append(append(append(append(b, to...), ";tag="...), tag...), "\r\n"...)
	b = append(append(b, callID...), "\r\n"...)
	b = append(append(b, cseq...), "\r\n"...)
	b = append(b, r.Headers...)
	b = append(b, "Content-Length: 0\r\n\r\n"...)
	return b
}

// withoutOC returns a copy of Via line v without its RFC 7339
// parameters, and whether it had oc (the client offers the extension).
func withoutOC(v []byte) ([]byte, bool) {
	parts := bytes.Split(v, []byte(";"))
	out := make([]byte, 0, len(v)+64)
	out = append(out, parts[0]...)
	offered := false
	for _, p := range parts[1:] {
		name := p
		if i := bytes.IndexByte(p, '='); i >= 0 {
			name = p[:i]
		}
		switch strings.ToLower(string(bytes.TrimSpace(name))) {
		case "oc":
			offered = true
			continue
		case "oc-algo", "oc-validity", "oc-seq":
			continue
		}
		out = append(append(out, ';'), p...)
	}
	return out, offered
}

func isName(name []byte, long, short string) bool {
	return bytes.EqualFold(name, []byte(long)) || short != "" && bytes.EqualFold(name, []byte(short))
}

// headerValue is the value of the first header named long or short in
// data's headers, trimmed; nil when there is none.
func headerValue(data []byte, long, short string) []byte {
	at := bytes.IndexByte(data, '\n') + 1
	for at > 0 && at < len(data) {
		end := bytes.IndexByte(data[at:], '\n')
		if end < 0 {
			end = len(data) - at
		}
		line := data[at : at+end]
		at += end + 1
		if len(bytes.TrimRight(line, "\r")) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		if isName(bytes.TrimRight(line[:colon], " \t"), long, short) {
			return bytes.TrimSpace(line[colon+1:])
		}
	}
	return nil
}

// tagValue is a To or From value's tag parameter (after the <...> of its
// URI) and whether it has one (perhaps empty).
func tagValue(v []byte) ([]byte, bool) {
	if i := bytes.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	for {
		i := bytes.IndexByte(v, ';')
		if i < 0 {
			return nil, false
		}
		v = bytes.TrimLeft(v[i+1:], " \t")
		if len(v) >= 3 && bytes.EqualFold(v[:3], []byte("tag")) {
			rest := bytes.TrimLeft(v[3:], " \t")
			if len(rest) > 0 && rest[0] == '=' {
				rest = bytes.TrimLeft(rest[1:], " \t")
				if j := bytes.IndexAny(rest, "; \t,"); j >= 0 {
					rest = rest[:j]
				}
				return rest, true
			}
		}
	}
}
