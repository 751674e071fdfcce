package call

import (
	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/sipmsg"
)

// Headers copied from one leg to the other. P-Asserted-Identity is not
// copied in either direction: the switch asserts identities itself,
// toward gateways only (a subscriber could put anything there, and a
// callee's network-asserted identity is not for a subscriber's phone:
// RFC 3325 keeps it inside the trust domain). Everything else — Via,
// Route, Record-Route, Contact, Call-ID, tags, credentials, User-Agent,
// Server — stays on its own leg: that is the topology hiding.
var requestCopy = sipmsg.NewSet(
	"Content-Type", "Content-Disposition", "Content-Encoding", "Supported", "Require",
	"Allow", "Allow-Events", "Session-Expires", "Min-SE",
	"Privacy", "Accept", "Accept-Language", "Subject", "Alert-Info", "Call-Info",
	"Reason", "Event", "Priority", "User-to-User",
)

var responseCopy = sipmsg.NewSet(
	"Content-Type", "Content-Disposition", "Content-Encoding", "Supported", "Require",
	"Allow", "Allow-Events", "Session-Expires", "Min-SE", "RSeq",
	"Privacy", "Reason", "Warning", "Retry-After", "Unsupported", "Accept", "Call-Info",
	"Alert-Info",
)

// bodyHeaders travel with a body on ACK.
var bodyHeaders = sipmsg.NewSet("Content-Type", "Content-Disposition")

func copyHeaders(set sipmsg.Set, from, to sip.Message) { sipmsg.Copy(set, from, to) }

func hasOption(m sip.Message, name, tag string) bool { return sipmsg.HasOption(m, name, tag) }

func headerValue(m sip.Message, name string) string { return sipmsg.Value(m, name) }

// reasonPhrases are RFC 3261's phrases for the statuses the switch sends
// on its own (refusals configured by status only).
var reasonPhrases = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 410: "Gone",
	480: "Temporarily Unavailable", 484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here",
	487: "Request Terminated", 488: "Not Acceptable Here", 500: "Server Internal Error",
	501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
	600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

func reasonPhrase(status int) string {
	if p, ok := reasonPhrases[status]; ok {
		return p
	}
	switch status / 100 {
	case 4:
		return "Request Failure"
	case 5:
		return "Server Failure"
	}
	return "Global Failure"
}
