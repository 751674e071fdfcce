// Package gate is the front door of every UDP datagram, before it is
// parsed: the cheap decisions that protect everything behind it.
//
//  1. Per-source admission (core/admission): a request from a source
//     over its rate, or blocked, is dropped unread.
//  2. Overload control (core/overload): a new call (INVITE without a To
//     tag) the switch cannot carry now is refused with a stateless 503
//     and a randomised Retry-After, built from the datagram's bytes; its
//     ACK is absorbed here too.
//  3. The request's bytes are mended for the parser (core/inbound).
//
// Responses pass untouched: they answer our own requests and their
// transactions decide about them.
package gate

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/admission"
	"github.com/softswitch/softswitch/core/inbound"
	"github.com/softswitch/softswitch/core/overload"
)

// Gate holds the front door's parts; a nil part is skipped.
type Gate struct {
	Admission *admission.Gate
	Overload  *overload.Controller
	// Reply sends a stateless answer to the source of a request.
	Reply func(b []byte, to netip.AddrPort)

	absorbed atomic.Int64 // ACKs of stateless refusals
}

// Filter returns the datagram to parse (mended), or nil to drop it.
func (g *Gate) Filter(data []byte, src netip.AddrPort) []byte {
	if len(data) < 4 || string(data[:4]) == "SIP/" {
		return data // a response
	}
	now := time.Now()
	if g.Admission != nil && !g.Admission.Admit(src.Addr(), now) {
		return nil
	}
	if g.Overload != nil && (hasPrefix(data, "INVITE ") || hasPrefix(data, "ACK ")) && g.Overload.Busy(now) {
		var h head
		if readHead(data, &h) {
			switch {
			case h.method[0] == 'I' && !h.toTag && g.Overload.RefuseNew():
				if g.Reply != nil {
					g.Reply(overloaded(&h, g.Overload.RetryAfter(), g.ocParams(h.vias[0])), src)
				}
				return nil
			case h.method[0] == 'A' && isRefusal(tagOf(h.to)):
				g.absorbed.Add(1)
				return nil
			}
		}
	}
	return inbound.Fix(data, src)
}

// ocParams are the RFC 7339 parameters for the top Via of a response to
// a client that offered overload control; "" otherwise.
func (g *Gate) ocParams(topVia []byte) string {
	if g.Overload == nil || !offersOC(topVia) {
		return ""
	}
	return OCParams(g.Overload)
}

// OCParams are the RFC 7339 Via parameters that tell a client what share
// of its requests to shed and for how long.
func OCParams(c *overload.Controller) string {
	return ";oc=" + strconv.Itoa(c.Loss()) + ";oc-algo=\"loss\";oc-validity=" +
		strconv.FormatInt(c.Validity().Milliseconds(), 10) + ";oc-seq=" + strconv.FormatInt(c.Seq(), 10)
}

// Absorbed is the number of ACKs of stateless refusals dropped here.
func (g *Gate) Absorbed() int64 { return g.absorbed.Load() }

func isRefusal(tag []byte) bool {
	return len(tag) > len(refusedTag) && string(tag[:len(refusedTag)]) == refusedTag
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }
