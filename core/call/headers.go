package call

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Headers copied from one leg to the other. Everything else — Via,
// Route, Record-Route, Contact, Call-ID, tags, credentials, User-Agent,
// Server — stays on its own leg: that is the topology hiding.
var requestCopy = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Supported", "Require",
	"Allow", "Allow-Events", "Session-Expires", "Min-SE", "P-Asserted-Identity",
	"Privacy", "Accept", "Accept-Language", "Subject", "Alert-Info", "Call-Info",
	"Reason", "Event", "Priority", "User-to-User",
}

var responseCopy = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Supported", "Require",
	"Allow", "Allow-Events", "Session-Expires", "Min-SE", "RSeq", "P-Asserted-Identity",
	"Privacy", "Reason", "Warning", "Retry-After", "Unsupported", "Accept", "Call-Info",
	"Alert-Info",
}

func copyHeaders(names []string, from, to sip.Message) {
	for _, n := range names {
		for _, h := range from.GetHeaders(n) {
			to.AppendHeader(sip.NewHeader(h.Name(), h.Value()))
		}
	}
}

// hasOption reports whether an option tag is listed in header name.
func hasOption(m sip.Message, name, tag string) bool {
	for _, h := range m.GetHeaders(name) {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

func headerValue(m sip.Message, name string) string {
	if hs := m.GetHeaders(name); len(hs) > 0 {
		return hs[0].Value()
	}
	return ""
}
