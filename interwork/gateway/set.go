package gateway

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/softswitch/softswitch/core/numbering"
)

// Defaults.
const (
	DefaultProbeInterval = 30 * time.Second
	DefaultDownAfter     = 3
	DefaultUpAfter       = 2
	DefaultInviteTimeout = 3 * time.Second
)

// Set is a compiled, immutable set of gateways, groups and routes.
type Set struct {
	gateways map[string]*Gateway
	names    []string // sorted, for stable listings
	groups   map[string]*Group
	routes   map[string]*Route
	regs     []RegistrationSpec

	mu  sync.Mutex // rnd is not safe for concurrent use
	rnd *rand.Rand
}

var (
	fieldErr = numbering.FieldErrorf
	ops      = numbering.OpsAt
)

// Compile validates spec and builds a Set. Gateways that prev also has
// (same name) keep their live state: channels in use, probe results,
// counters. prev may be nil.
func Compile(spec Spec, prev *Set) (*Set, error) {
	s := &Set{gateways: map[string]*Gateway{}, groups: map[string]*Group{}, routes: map[string]*Route{},
		regs: spec.Registrations, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed))}
	for i, g := range spec.Gateways {
		key := fmt.Sprintf("gateway[%d]", i)
		if g.Name == "" {
			return nil, fieldErr(key+".name", "empty")
		}
		if _, dup := s.gateways[g.Name]; dup {
			return nil, fieldErr(key+".name", "%q declared twice", g.Name)
		}
		gw := &Gateway{Name: g.Name, spec: g, Transport: strings.ToLower(g.Transport)}
		if gw.Transport != "" && gw.Transport != "udp" && gw.Transport != "tcp" {
			return nil, fieldErr(key+".transport", "%q: udp or tcp", g.Transport)
		}
		host, port, err := splitAddress(g.Address)
		if err != nil {
			return nil, fieldErr(key+".address", "%v", err)
		}
		gw.Host, gw.Port = host, port
		_, ipErr := netip.ParseAddr(host)
		gw.IsName = ipErr != nil
		if g.MaxChannels < 0 || g.MaxCPS < 0 {
			return nil, fieldErr(key+".max_channels", "limits are 0 (none) or positive")
		}
		gw.probeEvery = DefaultProbeInterval
		if g.ProbeEvery != "" {
			d, err := time.ParseDuration(g.ProbeEvery)
			if err != nil || d < 100*time.Millisecond {
				return nil, fieldErr(key+".probe_interval", "%q: a duration of at least 100ms, like 30s", g.ProbeEvery)
			}
			gw.probeEvery = d
		}
		if g.DownAfter < 0 || g.UpAfter < 0 {
			return nil, fieldErr(key+".probe_failures", "thresholds are positive")
		}
		if gw.spec.DownAfter == 0 {
			gw.spec.DownAfter = DefaultDownAfter
		}
		if gw.spec.UpAfter == 0 {
			gw.spec.UpAfter = DefaultUpAfter
		}
		if gw.CalledOps, err = ops(key+".called_ops", g.CalledOps); err != nil {
			return nil, err
		}
		if gw.CallingOps, err = ops(key+".calling_ops", g.CallingOps); err != nil {
			return nil, err
		}
		if old := prev.Gateway(g.Name); old != nil {
			gw.live = old.live
		} else {
			gw.live = &live{}
		}
		if !g.Probe {
			gw.live.down.Store(false) // not probed: never marked down
		}
		s.gateways[g.Name] = gw
		s.names = append(s.names, g.Name)
	}
	slices.Sort(s.names)

	for i, g := range spec.Groups {
		key := fmt.Sprintf("group[%d]", i)
		if g.Name == "" {
			return nil, fieldErr(key+".name", "empty")
		}
		if _, dup := s.groups[g.Name]; dup {
			return nil, fieldErr(key+".name", "%q declared twice", g.Name)
		}
		if len(g.Members) == 0 {
			return nil, fieldErr(key+".member", "a group needs at least one gateway")
		}
		grp := &Group{Name: g.Name, failover: map[int]bool{}, InviteTimeout: DefaultInviteTimeout}
		seen := map[string]bool{}
		for j, m := range g.Members {
			mk := fmt.Sprintf("%s.member[%d]", key, j)
			gw := s.gateways[m.Gateway]
			if gw == nil {
				return nil, fieldErr(mk+".gateway", "no gateway named %q", m.Gateway)
			}
			if seen[m.Gateway] {
				return nil, fieldErr(mk+".gateway", "%q is in the group twice", m.Gateway)
			}
			seen[m.Gateway] = true
			if m.Weight < 0 || m.Priority < 0 {
				return nil, fieldErr(mk+".weight", "priority and weight are 0 or positive")
			}
			w := m.Weight
			if w == 0 {
				w = 1
			}
			grp.members = append(grp.members, member{gw: gw, priority: m.Priority, weight: w})
		}
		slices.SortStableFunc(grp.members, func(a, b member) int { return a.priority - b.priority })
		for _, c := range g.FailoverCodes {
			if c < 400 || c > 699 {
				return nil, fieldErr(key+".failover_codes", "%d: failover codes are 400..699", c)
			}
			grp.failover[c] = true
		}
		if g.InviteTimeout != "" {
			d, err := time.ParseDuration(g.InviteTimeout)
			if err != nil || d < 100*time.Millisecond || d > 32*time.Second {
				return nil, fieldErr(key+".invite_timeout", "%q: a duration from 100ms to 32s", g.InviteTimeout)
			}
			grp.InviteTimeout = d
		}
		s.groups[g.Name] = grp
	}

	for i, r := range spec.Routes {
		key := fmt.Sprintf("route[%d]", i)
		if r.Name == "" {
			return nil, fieldErr(key+".name", "empty")
		}
		if _, dup := s.routes[r.Name]; dup {
			return nil, fieldErr(key+".name", "%q declared twice", r.Name)
		}
		grp := s.groups[r.Group]
		if grp == nil {
			return nil, fieldErr(key+".group", "no group named %q", r.Group)
		}
		rt := &Route{Name: r.Name, Group: grp}
		var err error
		if rt.CalledOps, err = ops(key+".called_ops", r.CalledOps); err != nil {
			return nil, err
		}
		if rt.CallingOps, err = ops(key+".calling_ops", r.CallingOps); err != nil {
			return nil, err
		}
		s.routes[r.Name] = rt
	}

	for i, r := range spec.Registrations {
		key := fmt.Sprintf("registration[%d]", i)
		if r.Name == "" || r.User == "" || r.Password == "" {
			return nil, fieldErr(key+".name", "name, user and password are required")
		}
		if _, _, err := splitAddress(r.Registrar); err != nil {
			return nil, fieldErr(key+".registrar", "%v", err)
		}
		if r.Expires != 0 && (r.Expires < 10 || r.Expires > 86400) {
			return nil, fieldErr(key+".expires", "10..86400 seconds")
		}
	}
	return s, nil
}

// splitAddress reads host, host:port, [v6]:port.
func splitAddress(a string) (string, int, error) {
	if a == "" {
		return "", 0, fmt.Errorf("empty address")
	}
	host, ps, err := net.SplitHostPort(a)
	if err != nil {
		// No port: a bare host or IP.
		if strings.ContainsAny(a, " /@;") {
			return "", 0, fmt.Errorf("%q: want host, host:port or IP:port", a)
		}
		return strings.Trim(a, "[]"), 0, nil
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 1 || p > 65535 || host == "" {
		return "", 0, fmt.Errorf("%q: want host:port with a port 1..65535", a)
	}
	return host, p, nil
}

// Gateway by name, nil if none (also on a nil Set).
func (s *Set) Gateway(name string) *Gateway {
	if s == nil {
		return nil
	}
	return s.gateways[name]
}

// Gateways in name order.
func (s *Set) Gateways() []*Gateway {
	out := make([]*Gateway, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.gateways[n])
	}
	return out
}

// Route by name, nil if none.
func (s *Set) Route(name string) *Route {
	if s == nil {
		return nil
	}
	return s.routes[name]
}

// Registrations to upstream carriers.
func (s *Set) Registrations() []RegistrationSpec { return s.regs }

// Hunt starts hunting through a route's group.
func (s *Set) Hunt(r *Route) *Hunt {
	s.mu.Lock()
	list := r.Group.order(s.rnd)
	s.mu.Unlock()
	return &Hunt{group: r.Group, list: list}
}

// Hunt walks a group's gateways for one call.
type Hunt struct {
	group *Group
	list  []*Gateway
	i     int
	Tried int // gateways attempted
}

// Next takes the next gateway that has a free channel and call-rate slot;
// nil when none is left. The caller gives the channel back with
// g.Release when the call on that gateway ends.
func (h *Hunt) Next(now time.Time) *Gateway {
	for h.i < len(h.list) {
		g := h.list[h.i]
		h.i++
		if g.State() == Up && !g.Shed(now) && g.Acquire(now) {
			h.Tried++
			return g
		}
	}
	return nil
}

// Group being hunted.
func (h *Hunt) Group() *Group { return h.group }

// StateChanges lists the gateways whose state differs between prev and s
// (a lock or unlock by provisioning, a gateway added or removed), for
// events when a new set is swapped in.
func (s *Set) StateChanges(prev *Set) map[string]State {
	out := map[string]State{}
	for _, g := range s.Gateways() {
		old := prev.Gateway(g.Name)
		if old == nil || old.State() != g.State() {
			out[g.Name] = g.State()
		}
	}
	return out
}
