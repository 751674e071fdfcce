// Package routing decides where a called number goes: a local
// subscriber's registered contacts, or the gateway of the longest
// matching static prefix route. Full number analysis replaces the prefix
// part in a later stage; the interface (call.Router) stays.
package routing

import (
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/call"
	"github.com/softswitch/softswitch/core/registrar"
)

// Route is a static prefix route.
type Route struct {
	Prefix    string
	Host      string
	Port      int
	Transport string
}

// Router implements call.Router.
type Router struct {
	Subs   *auth.Subscribers
	Loc    *registrar.Location
	routes atomic.Pointer[[]Route]
}

// SetRoutes replaces the route table (longest prefix first).
func (r *Router) SetRoutes(rs []Route) {
	cp := append([]Route(nil), rs...)
	sort.SliceStable(cp, func(i, j int) bool { return len(cp[i].Prefix) > len(cp[j].Prefix) })
	r.routes.Store(&cp)
}

// Route picks the targets for called.
func (r *Router) Route(called string, _ call.Caller) call.Decision {
	if _, ok := r.Subs.Get(called); ok {
		bs := r.Loc.Lookup(called)
		if len(bs) == 0 {
			return call.Decision{Status: 480, Reason: "Temporarily Unavailable"}
		}
		out := make([]call.Target, 0, len(bs))
		for _, b := range bs {
			var u sip.Uri
			if err := sip.ParseUri(b.Contact, &u); err != nil {
				continue
			}
			out = append(out, call.Target{URI: u, Dest: b.Dest, Transport: b.Transport})
		}
		return call.Decision{Targets: out}
	}
	if p := r.routes.Load(); p != nil {
		for _, rt := range *p {
			if strings.HasPrefix(called, rt.Prefix) {
				u := sip.Uri{Scheme: "sip", User: called, Host: rt.Host, Port: rt.Port}
				tp := rt.Transport
				if tp == "" {
					tp = "udp"
				}
				return call.Decision{Targets: []call.Target{{URI: u, Dest: net.JoinHostPort(rt.Host, strconv.Itoa(rt.Port)),
					Transport: tp, Gateway: rt.Prefix}}}
			}
		}
	}
	return call.Decision{Status: 404, Reason: "Not Found"}
}
