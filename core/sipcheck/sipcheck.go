// Package sipcheck validates what the softswitch relies on in a request
// before acting on it. sipgo's parser accepts many messages that RFC 3261
// forbids (RFC 4475 §3.1.2); each rule here maps a defect to the status a
// server should answer.
package sipcheck

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/sipmsg"
	"github.com/softswitch/softswitch/core/sipparse"
)

// Supported lists the option tags the softswitch implements (Require of
// anything else gets 420).
var Supported = []string{"100rel", "timer"}

// Problem is a validation failure: the status and reason to answer with.
type Problem struct {
	Status int
	Reason string
	// Unsupported carries the option tags for a 420.
	Unsupported []string
}

// single headers that must not repeat.
var single = []string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type"}

// Request checks req; nil means acceptable.
func Request(req *sip.Request) *Problem {
	switch req.Recipient.Scheme {
	case "sip", "sips":
		if req.Recipient.Host == "" || len(req.Recipient.Headers) > 0 || !validHost(req.Recipient.Host) {
			// Headers are not allowed in a Request-URI (RFC 3261 §19.1.5).
			return &Problem{Status: 400, Reason: "Bad Request-URI"}
		}
	case "tel":
	default:
		return &Problem{Status: 416, Reason: "Unsupported URI Scheme"}
	}
	if req.SipVersion != "SIP/2.0" {
		return &Problem{Status: 505, Reason: "Version Not Supported"}
	}
	via := req.Via()
	if via == nil || via.Host == "" {
		return &Problem{Status: 400, Reason: "Missing Via"}
	}
	if b, _ := via.Params.Get("branch"); b == sip.RFC3261BranchMagicCookie {
		// The cookie and nothing after it: no transaction identifier
		// (RFC 4475 §3.2.1), answered statelessly by the stack's rules.
		return &Problem{Status: 400, Reason: "Bad Via branch"}
	}
	for _, name := range single {
		if sipmsg.Count(req, name) > 1 {
			return &Problem{Status: 400, Reason: "Repeated " + name}
		}
	}
	if !sipparse.Valid(req) {
		return &Problem{Status: 400, Reason: "Bad display name in From or To"}
	}
	from, to := req.From(), req.To()
	if from == nil || to == nil {
		return &Problem{Status: 400, Reason: "Missing From or To"}
	}
	if !validAddrScheme(from.Address.Scheme) || !validAddrScheme(to.Address.Scheme) {
		return &Problem{Status: 400, Reason: "Bad From or To URI"}
	}
	if c := req.CallID(); c == nil || c.Value() == "" {
		return &Problem{Status: 400, Reason: "Missing Call-ID"}
	}
	cseq := req.CSeq()
	if cseq == nil {
		return &Problem{Status: 400, Reason: "Missing CSeq"}
	}
	// sipgo upper-cases the request line's method, not the CSeq's.
	if !strings.EqualFold(string(cseq.MethodName), string(req.Method)) {
		return &Problem{Status: 400, Reason: "CSeq method does not match"}
	}
	if cseq.SeqNo >= 1<<31 {
		return &Problem{Status: 400, Reason: "CSeq number out of range"}
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() > 255 {
		return &Problem{Status: 400, Reason: "Bad Max-Forwards"}
	}
	body := req.Body()
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(body) {
		return &Problem{Status: 400, Reason: "Content-Length does not match body"}
	}
	if len(body) > 0 && req.ContentType() == nil {
		return &Problem{Status: 400, Reason: "Body without Content-Type"}
	}
	badExpires := false
	sipmsg.Each(req, "Expires", func(h sip.Header) {
		if _, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32); err != nil {
			badExpires = true
		}
	})
	if badExpires {
		return &Problem{Status: 400, Reason: "Bad Expires"}
	}
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		if un := unsupported(req); len(un) > 0 {
			return &Problem{Status: 420, Reason: "Bad Extension", Unsupported: un}
		}
	}
	return nil
}

// validHost accepts a host name or IPv4 address as the parser left it,
// and an IPv6 reference only when it is one (RFC 5118 §4.10: three
// colons in a row are not).
func validHost(h string) bool {
	if !strings.ContainsRune(h, ':') {
		return true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	return err == nil && a.Is6()
}

func validAddrScheme(s string) bool {
	return s == "sip" || s == "sips" || s == "tel"
}

func unsupported(req *sip.Request) []string {
	var out []string
	sipmsg.Each(req, "Require", func(h sip.Header) {
		for _, tag := range strings.Split(h.Value(), ",") {
			tag = strings.TrimSpace(tag)
			if tag == "" {
				continue
			}
			known := false
			for _, s := range Supported {
				if strings.EqualFold(s, tag) {
					known = true
				}
			}
			if !known {
				out = append(out, tag)
			}
		}
	})
	return out
}

// Response builds the answer to p for req.
func (p *Problem) Response(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, p.Status, p.Reason, nil)
	if len(p.Unsupported) > 0 {
		res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(p.Unsupported, ", ")))
	}
	return res
}

// Response checks a response from the network before anything acts on
// it: the status line and the headers a transaction and a dialog are
// matched and built from. nil means acceptable. A response has nobody to
// answer to: the caller drops a bad one (RFC 3261 §18.1.2) and counts it.
func Response(res *sip.Response) *Problem {
	if res.StatusCode < 100 || res.StatusCode > 699 {
		return &Problem{Reason: "status code out of range"}
	}
	if res.SipVersion != "SIP/2.0" {
		return &Problem{Reason: "not SIP/2.0"}
	}
	if via := res.Via(); via == nil || via.Host == "" {
		return &Problem{Reason: "missing Via"}
	}
	for _, name := range single {
		if sipmsg.Count(res, name) > 1 {
			return &Problem{Reason: "repeated " + name}
		}
	}
	from, to := res.From(), res.To()
	if from == nil || to == nil {
		return &Problem{Reason: "missing From or To"}
	}
	if c := res.CallID(); c == nil || c.Value() == "" {
		return &Problem{Reason: "missing Call-ID"}
	}
	cseq := res.CSeq()
	if cseq == nil || cseq.MethodName == "" {
		return &Problem{Reason: "missing CSeq"}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 && cseq.MethodName == sip.INVITE {
		// A 2xx to INVITE makes a dialog: without the callee's tag it
		// could be neither acknowledged nor hung up (RFC 3261 §12.1.1).
		if t, _ := to.Params.Get("tag"); t == "" {
			return &Problem{Reason: "2xx to INVITE without a To tag"}
		}
	}
	if cl := res.ContentLength(); cl != nil && int(*cl) != len(res.Body()) {
		return &Problem{Reason: "Content-Length does not match body"}
	}
	return nil
}
