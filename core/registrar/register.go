package registrar

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/store"
)

// Registrar answers REGISTER requests.
type Registrar struct {
	Loc            *Location
	Auth           *auth.Authenticator
	MinExpires     int
	MaxExpires     int
	DefaultExpires int
	Log            *slog.Logger
}

// remoteWait bounds a remote digest check (a RADIUS server's answer,
// failover included): well within the 32 s a client retransmits.
const remoteWait = 15 * time.Second

// Handle processes one REGISTER and responds on tx.
func (r *Registrar) Handle(req *sip.Request, tx sip.ServerTransaction) {
	res := r.handle(req)
	if err := tx.Respond(res); err != nil {
		r.Log.Debug("register: respond failed", "err", err)
	}
}

func (r *Registrar) handle(req *sip.Request) *sip.Response {
	to := req.To()
	aor := to.Address.User
	ctx := context.Background()
	if r.Auth.Remote(false) { // only a remote check waits: no timer otherwise
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, remoteWait)
		defer cancel()
	}
	o := r.Auth.AuthenticateCtx(ctx, req, false)
	if !o.OK {
		res := sip.NewResponseFromRequest(req, o.Status, o.Reason, nil)
		r.Auth.Challenge(res, o)
		return res
	}
	if o.Sub.Number != aor {
		// Credentials of one user must not register another.
		return sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
	}

	contacts := req.GetHeaders("Contact")
	if len(contacts) == 0 {
		return r.ok(req, r.Loc.Lookup(aor)) // a query
	}
	defExp := r.DefaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || v < 0 {
			return sip.NewResponseFromRequest(req, 400, "Bad Expires", nil)
		}
		defExp = v
	}

	type change struct {
		uri     string
		expires int
	}
	var changes []change
	wildcard := false
	for _, h := range contacts {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return sip.NewResponseFromRequest(req, 400, "Bad Contact", nil)
		}
		if c.Address.Wildcard {
			wildcard = true
			continue
		}
		exp := defExp
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return sip.NewResponseFromRequest(req, 400, "Bad Contact expires", nil)
			}
			exp = n
		}
		if exp > 0 && exp < r.MinExpires {
			res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
			res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(r.MinExpires)))
			return res
		}
		if exp > r.MaxExpires {
			exp = r.MaxExpires
		}
		s := c.Address.Scheme
		if s != "sip" && s != "sips" {
			return sip.NewResponseFromRequest(req, 400, "Contact must be a SIP URI", nil)
		}
		changes = append(changes, change{uri: c.Address.String(), expires: exp})
	}
	if wildcard && (len(contacts) != 1 || defExp != 0) {
		return sip.NewResponseFromRequest(req, 400, "Contact: * needs Expires: 0 and no other contact", nil)
	}

	callID := req.CallID().Value()
	cseq := req.CSeq().SeqNo
	now := time.Now()
	transport := strings.ToLower(req.Transport())
	src := req.Source()
	natted := behindNAT(req)

	bs, status := r.Loc.Update(aor, func(cur []store.Binding) ([]store.Binding, int) {
		if wildcard {
			for _, b := range cur {
				if b.CallID == callID && cseq <= b.CSeq {
					return nil, 500
				}
			}
			return nil, 0
		}
		next := make([]store.Binding, 0, len(cur)+len(changes))
		for _, b := range cur {
			if b.Expires.After(now) {
				next = append(next, b)
			}
		}
		for _, ch := range changes {
			idx := -1
			for i, b := range next {
				if b.Contact == ch.uri {
					idx = i
				}
			}
			if idx >= 0 && next[idx].CallID == callID && cseq <= next[idx].CSeq {
				return nil, 500 // out-of-order REGISTER (RFC 3261 10.3 step 7)
			}
			if ch.expires == 0 {
				if idx >= 0 {
					next = append(next[:idx], next[idx+1:]...)
				}
				continue
			}
			b := store.Binding{AOR: aor, Contact: ch.uri, Transport: transport,
				Expires: now.Add(time.Duration(ch.expires) * time.Second), CallID: callID, CSeq: cseq}
			b.Dest = destination(ch.uri, transport, src, natted)
			if b.Dest == src && natted {
				b.Received = src
			}
			if idx >= 0 {
				next[idx] = b
			} else {
				if len(next) >= MaxContacts {
					return nil, 403
				}
				next = append(next, b)
			}
		}
		return next, 0
	})
	switch status {
	case 500:
		return sip.NewResponseFromRequest(req, 500, "Out of order CSeq", nil)
	case 403:
		return sip.NewResponseFromRequest(req, 403, "Too many contacts", nil)
	}
	return r.ok(req, bs)
}

func (r *Registrar) ok(req *sip.Request, bs []store.Binding) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	now := time.Now()
	for _, b := range bs {
		left := int(b.Expires.Sub(now).Seconds() + 0.5)
		if left <= 0 {
			continue
		}
		res.AppendHeader(sip.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(left)))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	return res
}

// behindNAT reports whether the top Via's sent-by differs from where the
// request came from (RFC 3581): then we must answer and call the source.
func behindNAT(req *sip.Request) bool {
	v := req.Via()
	src := req.MessageData.Source()
	host, port, err := net.SplitHostPort(src)
	if err != nil || v == nil {
		return false
	}
	vp := v.Port
	if vp == 0 {
		vp = 5060
	}
	return v.Host != host || strconv.Itoa(vp) != port
}

// destination is where requests for a binding go: the Contact's address,
// or the request's source when behind NAT or over a connection (TCP).
func destination(contact, transport, src string, natted bool) string {
	if natted || transport != "udp" {
		return src
	}
	var u sip.Uri
	if err := sip.ParseUri(contact, &u); err != nil {
		return src
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(port))
}
