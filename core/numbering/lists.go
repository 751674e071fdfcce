package numbering

import (
	"fmt"
	"strings"
)

// A scope's lists, one prefix set per match and kind. A white list, where
// set, admits only numbers starting with one of its prefixes; a black list
// refuses numbers starting with one of its prefixes.
type scopeLists struct {
	whiteCalled, blackCalled, whiteCalling, blackCalling *prefixSet
}

type prefixSet struct {
	t        *trie
	refusals []*Refusal // by value stored in t (the list it came from)
	first    *Refusal   // a white list's refusal when nothing matches
}

// scopeKey is a list scope: {"global", ""}, {"trunk", NAME} or
// {"subscriber", NUMBER}; a struct so lookups build no strings.
type scopeKey struct{ kind, name string }

type lists struct {
	byScope map[scopeKey]*scopeLists
}

const (
	defaultListStatus = 403
	defaultListCause  = 21 // call rejected
)

func compileLists(specs []ListSpec) (lists, error) {
	type build struct {
		items    []kv
		seen     map[string]bool
		refusals []*Refusal
	}
	type buildKey struct {
		scope       scopeKey
		match, kind string
	}
	builds := map[buildKey]*build{}
	for i, l := range specs {
		key := fmt.Sprintf("list[%d]", i)
		if l.Kind != "black" && l.Kind != "white" {
			return lists{}, fieldErr(key+".kind", "%q: want black or white", l.Kind)
		}
		if l.Match != "called" && l.Match != "calling" {
			return lists{}, fieldErr(key+".match", "%q: want called or calling", l.Match)
		}
		scope := l.Scope
		if scope == "" {
			scope = "global"
		}
		kind, name, _ := strings.Cut(scope, ":")
		if scope == "global" {
			kind = "global"
		} else if (kind != "trunk" && kind != "subscriber") || name == "" {
			return lists{}, fieldErr(key+".scope", "%q: want global, trunk:NAME or subscriber:NUMBER", l.Scope)
		}
		st, cause := l.Status, l.Cause
		if st == 0 {
			st = defaultListStatus
		}
		if cause == 0 {
			cause = defaultListCause
		}
		if st < 400 || st > 699 || cause < 1 || cause > 127 {
			return lists{}, fieldErr(key+".status", "status must be 400..699 and cause 1..127")
		}
		text := l.Kind + " list"
		if l.Name != "" {
			text += " " + l.Name
		}
		ref := &Refusal{Status: st, Cause: cause, Text: l.Match + " number refused by " + text}
		bk := buildKey{scopeKey{kind, name}, l.Match, l.Kind}
		b := builds[bk]
		if b == nil {
			b = &build{seen: map[string]bool{}}
			builds[bk] = b
		}
		b.refusals = append(b.refusals, ref)
		for j, pfx := range l.Prefixes {
			if pfx == "" || !validPrefix(pfx, MaxPrefix-1) {
				return lists{}, fieldErr(fmt.Sprintf("%s.prefixes[%d]", key, j), "%q: 1..10 digits (0-9 * #), optional leading +", pfx)
			}
			if b.seen[pfx] {
				continue // the first list that names a prefix gives its refusal
			}
			b.seen[pfx] = true
			b.items = append(b.items, kv{pfx, int32(len(b.refusals) - 1)})
		}
	}
	out := lists{byScope: map[scopeKey]*scopeLists{}}
	for bk, b := range builds {
		sl := out.byScope[bk.scope]
		if sl == nil {
			sl = &scopeLists{}
			out.byScope[bk.scope] = sl
		}
		ps := &prefixSet{t: buildTrie(b.items), refusals: b.refusals, first: b.refusals[0]}
		switch bk.match + "|" + bk.kind {
		case "called|white":
			sl.whiteCalled = ps
		case "called|black":
			sl.blackCalled = ps
		case "calling|white":
			sl.whiteCalling = ps
		case "calling|black":
			sl.blackCalling = ps
		}
	}
	return out, nil
}

// check applies the global lists, then the source trunk's, then the
// calling subscriber's.
func (l lists) check(called, calling, trunk, subscriber string) *Refusal {
	if len(l.byScope) == 0 {
		return nil
	}
	if r := l.byScope[scopeKey{"global", ""}].check(called, calling); r != nil {
		return r
	}
	if trunk != "" {
		if r := l.byScope[scopeKey{"trunk", trunk}].check(called, calling); r != nil {
			return r
		}
	}
	if subscriber != "" {
		if r := l.byScope[scopeKey{"subscriber", subscriber}].check(called, calling); r != nil {
			return r
		}
	}
	return nil
}

func (s *scopeLists) check(called, calling string) *Refusal {
	if s == nil {
		return nil
	}
	if r := s.whiteCalled.admit(called); r != nil {
		return r
	}
	if r := s.blackCalled.refuse(called); r != nil {
		return r
	}
	if r := s.whiteCalling.admit(calling); r != nil {
		return r
	}
	return s.blackCalling.refuse(calling)
}

func (p *prefixSet) admit(n string) *Refusal {
	if p == nil {
		return nil
	}
	if _, ok := p.t.longest(n); ok {
		return nil
	}
	return p.first
}

func (p *prefixSet) refuse(n string) *Refusal {
	if p == nil {
		return nil
	}
	if v, ok := p.t.longest(n); ok {
		return p.refusals[v]
	}
	return nil
}
