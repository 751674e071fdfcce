// Package sipmsg reads SIP headers without allocating. sipgo's
// GetHeaders lower-cases every header name of the message on every call
// (one allocation per uncommon name); on the call path we look headers up
// often, so we compare names in place instead.
package sipmsg

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

type lister interface{ Headers() []sip.Header }

// Each calls fn for every header named name (case-insensitive), in order.
func Each(m sip.Message, name string, fn func(sip.Header)) {
	l, ok := m.(lister)
	if !ok {
		return
	}
	for _, h := range l.Headers() {
		if strings.EqualFold(h.Name(), name) {
			fn(h)
		}
	}
}

// Count returns how many headers are named name.
func Count(m sip.Message, name string) int {
	n := 0
	Each(m, name, func(sip.Header) { n++ })
	return n
}

// Value returns the first value of header name, or "".
func Value(m sip.Message, name string) string {
	if l, ok := m.(lister); ok {
		for _, h := range l.Headers() {
			if strings.EqualFold(h.Name(), name) {
				return h.Value()
			}
		}
	}
	return ""
}

// HasOption reports whether option tag is listed in header name
// (Supported, Require, ...), in any of its occurrences.
func HasOption(m sip.Message, name, tag string) bool {
	found := false
	Each(m, name, func(h sip.Header) {
		v := h.Value()
		for v != "" && !found {
			var t string
			if i := strings.IndexByte(v, ','); i >= 0 {
				t, v = v[:i], v[i+1:]
			} else {
				t, v = v, ""
			}
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				found = true
			}
		}
	})
	return found
}

// Set is a set of header names, matched case-insensitively.
type Set struct {
	exact map[string]struct{}
	lower map[string]struct{}
}

// NewSet builds a set of names.
func NewSet(names ...string) Set {
	s := Set{exact: map[string]struct{}{}, lower: map[string]struct{}{}}
	for _, n := range names {
		s.exact[n] = struct{}{}
		s.lower[strings.ToLower(n)] = struct{}{}
	}
	return s
}

// Has reports whether name is in the set.
func (s Set) Has(name string) bool {
	if _, ok := s.exact[name]; ok {
		return true
	}
	if len(name) > 32 {
		return false
	}
	var buf [32]byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	_, ok := s.lower[string(buf[:len(name)])] // no allocation: map lookup by converted key
	return ok
}

// Copy appends to dst a copy of every header of src whose name is in s.
func Copy(s Set, src, dst sip.Message) {
	l, ok := src.(lister)
	if !ok {
		return
	}
	for _, h := range l.Headers() {
		if n := h.Name(); s.Has(n) {
			dst.AppendHeader(sip.NewHeader(n, h.Value()))
		}
	}
}
