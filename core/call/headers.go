package call

import (
	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/sipmsg"
)

// Headers copied from one leg to the other. Everything else — Via,
// Route, Record-Route, Contact, Call-ID, tags, credentials, User-Agent,
// Server — stays on its own leg: that is the topology hiding.
var requestCopy = sipmsg.NewSet(
	"Content-Type", "Content-Disposition", "Content-Encoding", "Supported", "Require",
	"Allow", "Allow-Events", "Session-Expires", "Min-SE", "P-Asserted-Identity",
	"Privacy", "Accept", "Accept-Language", "Subject", "Alert-Info", "Call-Info",
	"Reason", "Event", "Priority", "User-to-User",
)

var responseCopy = sipmsg.NewSet(
	"Content-Type", "Content-Disposition", "Content-Encoding", "Supported", "Require",
	"Allow", "Allow-Events", "Session-Expires", "Min-SE", "RSeq", "P-Asserted-Identity",
	"Privacy", "Reason", "Warning", "Retry-After", "Unsupported", "Accept", "Call-Info",
	"Alert-Info",
)

// bodyHeaders travel with a body on ACK.
var bodyHeaders = sipmsg.NewSet("Content-Type", "Content-Disposition")

func copyHeaders(set sipmsg.Set, from, to sip.Message) { sipmsg.Copy(set, from, to) }

func hasOption(m sip.Message, name, tag string) bool { return sipmsg.HasOption(m, name, tag) }

func headerValue(m sip.Message, name string) string { return sipmsg.Value(m, name) }
