package numbering

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// FieldError names the provisioning field at fault, as a path like
// "analysis[3].called_ops", so the config loader can point at its line.
type FieldError struct {
	Key string
	Err error
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrorf is a FieldError with a formatted reason.
func FieldErrorf(key string, format string, a ...any) error {
	return &FieldError{Key: key, Err: fmt.Errorf(format, a...)}
}

func fieldErr(key string, format string, a ...any) error { return FieldErrorf(key, format, a...) }

// OpsAt parses the operations of the provisioning field key.
func OpsAt(key string, list []string) ([]Op, error) {
	o, err := ParseOps(list)
	if err != nil {
		return nil, &FieldError{Key: key, Err: err}
	}
	return o, nil
}

type entry struct {
	index         int // position in the spec, for records and tests
	callingPrefix string
	trunk         string
	windows       []Window
	action        string
	route         string
	contact       string
	refusal       *Refusal
	calledOps     []Op
	callingOps    []Op
	bypass        bool
}

type trunkOps struct{ called, calling []Op }

// Plan is a compiled, immutable number-analysis table. Swap plans whole.
type Plan struct {
	limits  Limits
	country Country
	loc     *time.Location
	trie    *trie   // called prefix -> group g
	order   []int32 // entries of group g are order[start[g]:start[g+1]], most specific first
	start   []int32
	entries []entry
	trunks  map[string]trunkOps
	lists   lists
}

// Input is one call to analyse.
type Input struct {
	Called     string    // Request-URI user part, as received
	Calling    string    // calling number, as received
	Trunk      string    // source trusted peer name, "" for subscribers
	Subscriber string    // authenticated subscriber number, "" for trunks
	Now        time.Time // for time-of-day conditions
}

// Result is what to do with the call.
type Result struct {
	Action  string   // one of the Action constants, or "" when no entry matched
	Route   string   // ActionRoute
	Contact string   // ActionRedirect
	Refusal *Refusal // set when the call is refused (by an entry, a list or a limit)
	Called  string   // the numbers after trunk and entry manipulation
	Calling string
	Entry   int // index of the matching analysis entry, -1 for none
}

// Compile validates spec and builds its plan. Nothing is half-applied: on
// error the caller keeps its running plan.
func Compile(spec Spec) (*Plan, error) {
	s := spec.Settings
	p := &Plan{trunks: map[string]trunkOps{}}
	p.limits = Limits{MaxCalling: s.MaxCallingDigits, MaxCalled: s.MaxCalledDigits, AllowStarHash: s.AllowStarHash}
	if err := p.limits.Validate(); err != nil {
		return nil, &FieldError{Key: "numbering", Err: err}
	}
	for key, v := range map[string]string{"country_code": s.CountryCode, "national_prefix": s.NationalPrefix, "international_prefix": s.InternationalPrefix} {
		if v != "" && strings.Trim(v, "0123456789") != "" {
			return nil, fieldErr("numbering."+key, "%q: digits only", v)
		}
	}
	p.country = Country{Code: s.CountryCode, NationalPrefix: s.NationalPrefix, InternationalPrefix: s.InternationalPrefix}
	p.loc = time.Local
	if s.Timezone != "" {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			return nil, fieldErr("numbering.timezone", "%v", err)
		}
		p.loc = loc
	}

	for i, t := range spec.Trunks {
		key := fmt.Sprintf("trunk_plan[%d]", i)
		if t.Name == "" {
			return nil, fieldErr(key+".name", "empty")
		}
		if _, dup := p.trunks[t.Name]; dup {
			return nil, fieldErr(key+".name", "%q declared twice", t.Name)
		}
		var ops trunkOps
		var err error
		if ops.called, err = OpsAt(key+".called_ops", t.CalledOps); err != nil {
			return nil, err
		}
		if ops.calling, err = OpsAt(key+".calling_ops", t.CallingOps); err != nil {
			return nil, err
		}
		p.trunks[t.Name] = ops
	}

	byPrefix := make(map[string][]int32, len(spec.Analysis))
	seen := make(map[string]int, len(spec.Analysis))
	for i, e := range spec.Analysis {
		key := fmt.Sprintf("analysis[%d]", i)
		ce, err := compileEntry(key, i, e)
		if err != nil {
			return nil, err
		}
		sig := e.Prefix + "|" + e.CallingPrefix + "|" + e.Trunk + "|" + strings.Join(e.Time, ";")
		if j, dup := seen[sig]; dup {
			return nil, fieldErr(key+".prefix", "same prefix and conditions as analysis[%d]", j)
		}
		seen[sig] = i
		p.entries = append(p.entries, ce)
		byPrefix[e.Prefix] = append(byPrefix[e.Prefix], int32(i))
	}
	items := make([]kv, 0, len(byPrefix))
	p.order = make([]int32, 0, len(spec.Analysis))
	p.start = make([]int32, 0, len(byPrefix)+1)
	for pfx, idx := range byPrefix {
		slices.SortStableFunc(idx, func(a, b int32) int { return p.specificity(b) - p.specificity(a) })
		items = append(items, kv{pfx, int32(len(p.start))})
		p.start = append(p.start, int32(len(p.order)))
		p.order = append(p.order, idx...)
	}
	p.start = append(p.start, int32(len(p.order)))
	p.trie = buildTrie(items)

	var err error
	if p.lists, err = compileLists(spec.Lists); err != nil {
		return nil, err
	}
	return p, nil
}

// specificity orders entries sharing a called prefix: a source trunk
// first, then the longer calling prefix, then time-restricted ones; equal
// ones keep the order they were declared in.
func (p *Plan) specificity(i int32) int {
	e := &p.entries[i]
	s := len(e.callingPrefix) * 2
	if e.trunk != "" {
		s += 1000
	}
	if len(e.windows) > 0 {
		s++
	}
	return s
}

func validPrefix(s string, maxDigits int) bool {
	body := strings.TrimPrefix(s, "+")
	if len(body) > maxDigits {
		return false
	}
	for i := 0; i < len(body); i++ {
		if symOf[body[i]] < 0 || body[i] == '+' {
			return false
		}
	}
	return true
}

func compileEntry(key string, i int, e EntrySpec) (entry, error) {
	ce := entry{index: i, callingPrefix: e.CallingPrefix, trunk: e.Trunk, action: e.Action,
		route: e.Route, contact: e.Contact, bypass: e.BypassLists}
	if !validPrefix(e.Prefix, 10) {
		return ce, fieldErr(key+".prefix", "%q: up to 10 digits (0-9 * #), optional leading +", e.Prefix)
	}
	if e.CallingPrefix != "" && !validPrefix(e.CallingPrefix, HardMaxDigits) {
		return ce, fieldErr(key+".calling_prefix", "%q: digits (0-9 * #), optional leading +", e.CallingPrefix)
	}
	for j, t := range e.Time {
		w, err := ParseWindow(t)
		if err != nil {
			return ce, &FieldError{Key: fmt.Sprintf("%s.time[%d]", key, j), Err: err}
		}
		ce.windows = append(ce.windows, w)
	}
	var err error
	if ce.calledOps, err = OpsAt(key+".called_ops", e.CalledOps); err != nil {
		return ce, err
	}
	if ce.callingOps, err = OpsAt(key+".calling_ops", e.CallingOps); err != nil {
		return ce, err
	}
	switch e.Action {
	case ActionRoute:
		if e.Route == "" {
			return ce, fieldErr(key+".route", "action route needs a route name")
		}
	case ActionLocal:
	case ActionRedirect:
		if !strings.HasPrefix(e.Contact, "sip:") && !strings.HasPrefix(e.Contact, "sips:") && !strings.HasPrefix(e.Contact, "tel:") {
			return ce, fieldErr(key+".contact", "action redirect needs a sip:, sips: or tel: URI, got %q", e.Contact)
		}
	case ActionRefuse:
		if e.Status < 400 || e.Status > 699 {
			return ce, fieldErr(key+".status", "action refuse needs a status 400..699")
		}
		if e.Cause < 0 || e.Cause > 127 {
			return ce, fieldErr(key+".cause", "Q.850 causes are 1..127")
		}
		ce.refusal = &Refusal{Status: e.Status, Cause: e.Cause, Text: "refused by number analysis"}
	default:
		return ce, fieldErr(key+".action", "%q: want route, local, redirect or refuse", e.Action)
	}
	return ce, nil
}

// Country is the plan's numbering plan, for route and gateway manipulation.
func (p *Plan) Country() Country { return p.country }

// Limits are the plan's number limits.
func (p *Plan) Limits() Limits { return p.limits }

// Routes lists the route names analysis entries refer to.
func (p *Plan) Routes() map[string][]int {
	out := map[string][]int{}
	for _, e := range p.entries {
		if e.action == ActionRoute {
			out[e.route] = append(out[e.route], e.index)
		}
	}
	return out
}

// Trunks lists the trunk names the plan refers to (trunk plans, entry
// conditions and list scopes), for cross-checks against trusted peers.
func (p *Plan) Trunks() []string {
	var out []string
	for n := range p.trunks {
		out = append(out, n)
	}
	for _, e := range p.entries {
		if e.trunk != "" {
			out = append(out, e.trunk)
		}
	}
	for s := range p.lists.byScope {
		if s.kind == "trunk" {
			out = append(out, s.name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Analyse runs the whole analysis for one call, in the documented order:
// limits on the received numbers, the source trunk's manipulation, the
// table lookup, the entry's manipulation, then the lists.
func (p *Plan) Analyse(in Input) Result {
	r := Result{Called: in.Called, Calling: in.Calling, Entry: -1}
	if ref := p.limits.CheckCalled(in.Called); ref != nil {
		r.Refusal = ref
		return r
	}
	if ref := p.limits.CheckCalling(in.Calling); ref != nil {
		r.Refusal = ref
		return r
	}
	if t, ok := p.trunks[in.Trunk]; ok && in.Trunk != "" {
		r.Called = Apply(t.called, r.Called, p.country)
		r.Calling = Apply(t.calling, r.Calling, p.country)
	}
	e := p.lookup(r.Called, r.Calling, in.Trunk, in.Now)
	if e != nil {
		r.Entry = e.index
		r.Action, r.Route = e.action, e.route
		r.Called = Apply(e.calledOps, r.Called, p.country)
		r.Calling = Apply(e.callingOps, r.Calling, p.country)
		if e.action == ActionRedirect {
			r.Contact = strings.ReplaceAll(e.contact, "{called}", r.Called)
		}
		if e.refusal != nil {
			r.Refusal = e.refusal
			return r
		}
		if e.bypass {
			return r
		}
	}
	if ref := p.lists.check(r.Called, r.Calling, in.Trunk, in.Subscriber); ref != nil {
		r.Refusal = ref
	}
	return r
}

// lookup finds the entry for a called number: the longest prefix with an
// entry whose conditions hold. It allocates nothing.
func (p *Plan) lookup(called, calling, trunk string, now time.Time) *entry {
	var hits [MaxPrefix + 1]int32
	k := p.trie.matches(called, &hits)
	minute := -1
	for i := k - 1; i >= 0; i-- {
		g := hits[i]
		for _, ei := range p.order[p.start[g]:p.start[g+1]] {
			e := &p.entries[ei]
			if e.trunk != "" && e.trunk != trunk {
				continue
			}
			if e.callingPrefix != "" && !strings.HasPrefix(calling, e.callingPrefix) {
				continue
			}
			if len(e.windows) > 0 {
				if minute < 0 {
					minute = minuteOfWeek(now.In(p.loc))
				}
				if !slices.ContainsFunc(e.windows, func(w Window) bool { return w.contains(minute) }) {
					continue
				}
			}
			return e
		}
	}
	return nil
}
