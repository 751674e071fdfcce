// Package routing joins number analysis (core/numbering) to its outcomes:
// a local subscriber's registered contacts, a hunt through a route's
// gateway group (interwork/gateway, with RFC 3263 resolution by
// interwork/resolve), a redirect, or a refusal with its Q.850 cause. It
// implements call.Router. The tables are swapped whole (SetTables).
package routing

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/call"
	"github.com/softswitch/softswitch/core/numbering"
	"github.com/softswitch/softswitch/core/registrar"
	"github.com/softswitch/softswitch/interwork/gateway"
	"github.com/softswitch/softswitch/interwork/resolve"
)

// Tables are one consistent generation of routing data.
type Tables struct {
	Plan     *numbering.Plan
	Set      *gateway.Set
	Controls *Controls // the operator's blocks and call gaps; nil: none
}

// Router implements call.Router.
type Router struct {
	Subs     *auth.Subscribers
	Loc      *registrar.Location
	Resolver *resolve.Resolver // for gateways given by domain name; nil: IP gateways only
	Log      *slog.Logger
	Now      func() time.Time // for time-of-day analysis; time.Now when nil
	tables   atomic.Pointer[Tables]
}

// SetTables swaps in a new generation: calls being routed finish with
// the tables they started with.
func (r *Router) SetTables(t *Tables) { r.tables.Store(t) }

// Tables in use.
func (r *Router) Tables() *Tables { return r.tables.Load() }

func (r *Router) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Route analyses called and says where the call goes.
func (r *Router) Route(called string, caller call.Caller) call.Decision {
	t := r.tables.Load()
	if t == nil || t.Plan == nil {
		return call.Decision{Status: 503, Reason: "Service Unavailable", Cause: 41, Text: "no routing tables loaded"}
	}
	if g := t.Set.Gateway(caller.Trunk); g != nil {
		g.CountIn()
	}
	if d, refused := t.Controls.Check(called, r.now()); refused {
		return d
	}
	in := numbering.Input{Called: called, Calling: caller.Number, Trunk: caller.Trunk, Now: r.now()}
	if caller.Trunk == "" {
		in.Subscriber = caller.Number
	}
	res := t.Plan.Analyse(in)
	d := call.Decision{Called: res.Called, Calling: res.Calling}
	if ref := res.Refusal; ref != nil {
		d.Status, d.Cause, d.Text = ref.Status, ref.Cause, ref.Text
		return d
	}
	switch res.Action {
	case numbering.ActionRedirect:
		d.Redirect = res.Contact
		return d
	case numbering.ActionRoute:
		rt := t.Set.Route(res.Route)
		if rt == nil { // Compile checks every name; only a bug gets here
			d.Status, d.Cause, d.Text = 500, 127, "route "+res.Route+" is not defined"
			return d
		}
		country := t.Plan.Country()
		h := &hunter{r: r, hunt: t.Set.Hunt(rt), country: country,
			called:  numbering.Apply(rt.CalledOps, res.Called, country),
			calling: numbering.Apply(rt.CallingOps, res.Calling, country)}
		d.Hunt, d.Route = h, res.Route
		return d
	}
	// Local (an entry said so, or no entry matched): a subscriber.
	return r.local(res.Called, res.Action == numbering.ActionLocal, d)
}

func (r *Router) local(number string, explicit bool, d call.Decision) call.Decision {
	if _, ok := r.Subs.Get(number); !ok {
		d.Status, d.Cause = 404, 1
		d.Text = "no route and no subscriber for the called number"
		if explicit {
			d.Text = "no subscriber for the called number"
		}
		return d
	}
	bs := r.Loc.Lookup(number)
	if len(bs) == 0 {
		d.Status, d.Reason, d.Cause = 480, "Temporarily Unavailable", 20
		return d
	}
	for _, b := range bs {
		var u sip.Uri
		if err := sip.ParseUri(b.Contact, &u); err != nil {
			continue
		}
		d.Targets = append(d.Targets, call.Target{URI: u, Dest: b.Dest, Transport: b.Transport})
	}
	if len(d.Targets) == 0 {
		d.Status, d.Reason, d.Cause = 480, "Temporarily Unavailable", 20
	}
	return d
}

// hunter walks a route's gateway group for one call; for a gateway
// given by domain name it tries each resolved target (SRV order) before
// the next gateway.
type hunter struct {
	r               *Router
	hunt            *gateway.Hunt
	country         numbering.Country
	called, calling string
	cur             *gateway.Gateway
	pending         []resolve.Target
}

func (h *hunter) Failover(status int) bool     { return h.hunt.Group().Failover(status) }
func (h *hunter) InviteTimeout() time.Duration { return h.hunt.Group().InviteTimeout }

func (h *hunter) Next() (call.Target, bool) {
	now := time.Now()
	for {
		if h.cur != nil && len(h.pending) > 0 {
			t := h.pending[0]
			h.pending = h.pending[1:]
			if !h.cur.Acquire(now) {
				h.pending = nil
				continue
			}
			return h.target(h.cur, t), true
		}
		g := h.hunt.Next(now) // holds a channel on g
		if g == nil {
			return call.Target{}, false
		}
		ts, err := h.resolve(g)
		if err != nil || len(ts) == 0 {
			if h.r.Log != nil {
				h.r.Log.Warn("gateway address does not resolve", "gateway", g.Name, "address", g.Host, "err", err)
			}
			g.Release()
			continue
		}
		h.cur, h.pending = g, ts[1:]
		return h.target(g, ts[0]), true
	}
}

func (h *hunter) resolve(g *gateway.Gateway) ([]resolve.Target, error) {
	if !g.IsName { // no DNS: no deadline (a timer per call) needed
		return h.r.targets(context.Background(), g)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return h.r.targets(ctx, g)
}

// targets resolves a gateway's address (RFC 3263 for domain names).
func (r *Router) targets(ctx context.Context, g *gateway.Gateway) ([]resolve.Target, error) {
	if !g.IsName || r.Resolver == nil {
		var plain resolve.Resolver // IPs need no DNS server
		return plain.Resolve(ctx, g.Host, g.Port, g.Transport)
	}
	return r.Resolver.Resolve(ctx, g.Host, g.Port, g.Transport)
}

// Pinger sends the gateway probes: an OPTIONS to the gateway's first
// resolved target, answered by any final status.
func (r *Router) Pinger(client *sipgo.Client) gateway.PingFunc {
	return func(ctx context.Context, g *gateway.Gateway) (int, error) {
		ts, err := r.targets(ctx, g)
		if err != nil {
			return 0, err
		}
		req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: g.Host, Port: g.Port})
		req.SetDestination(ts[0].HostPort())
		req.SetTransport(strings.ToUpper(ts[0].Transport))
		res, err := client.Do(ctx, req)
		if err != nil {
			return 0, err
		}
		return res.StatusCode, nil
	}
}

func (h *hunter) target(g *gateway.Gateway, t resolve.Target) call.Target {
	called := numbering.Apply(g.CalledOps, h.called, h.country)
	calling := numbering.Apply(g.CallingOps, h.calling, h.country)
	// The Request-URI names the gateway as configured (a domain stays a
	// domain, RFC 3263); the packet goes to the resolved address.
	u := sip.Uri{Scheme: "sip", User: called, Host: g.Host, Port: g.Port}
	if t.Transport == "tcp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	}
	return call.Target{URI: u, Dest: t.HostPort(), Transport: t.Transport, Gateway: g.Name,
		Calling: calling, Trusted: true, Release: g.Release, Outcome: g.RecordOutcome, OC: g.Feedback}
}

// Describe is a one-line summary of the tables, for logs.
func (t *Tables) Describe() string {
	if t == nil || t.Set == nil {
		return "none"
	}
	return strconv.Itoa(len(t.Set.Gateways())) + " gateways"
}

// Compile builds a generation of tables from provisioning data and checks
// that they fit together (every route an analysis entry names exists).
// Gateways of prev keep their live state. On error nothing changes.
func Compile(ns numbering.Spec, gs gateway.Spec, prev *Tables) (*Tables, error) {
	plan, err := numbering.Compile(ns)
	if err != nil {
		return nil, err
	}
	var prevSet *gateway.Set
	if prev != nil {
		prevSet = prev.Set
	}
	set, err := gateway.Compile(gs, prevSet)
	if err != nil {
		return nil, err
	}
	for name, entries := range plan.Routes() {
		if set.Route(name) == nil {
			return nil, &numbering.FieldError{Key: "analysis[" + strconv.Itoa(entries[0]) + "].route",
				Err: fmt.Errorf("no route named %q", name)}
		}
	}
	return &Tables{Plan: plan, Set: set}, nil
}
