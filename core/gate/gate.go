// Package gate is the front door of every UDP datagram, before it is
// parsed: the cheap decisions that protect everything behind it.
//
//  1. Per-source admission (core/admission): a request from a source
//     over its rate, or blocked, is dropped unread.
//  2. The request's bytes are mended for the parser (core/inbound).
//
// Responses pass untouched: they answer our own requests and their
// transactions decide about them. Overload refusals are made one step
// later, in the transaction layer (core/sipudp): a copy of an INVITE in
// progress must be recognised as such, never refused as a new call.
package gate

import (
	"net/netip"
	"time"

	"github.com/softswitch/softswitch/core/admission"
	"github.com/softswitch/softswitch/core/inbound"
)

// Gate holds the front door's parts; a nil part is skipped.
type Gate struct {
	Admission *admission.Gate
}

// Filter returns the datagram to parse (mended), or nil to drop it; now
// is when it was read.
func (g *Gate) Filter(data []byte, src netip.AddrPort, now time.Time) []byte {
	if len(data) < 4 || string(data[:4]) == "SIP/" {
		return data // a response
	}
	if g.Admission != nil && !g.Admission.Admit(src.Addr(), now) {
		return nil
	}
	return inbound.Fix(data, src)
}
