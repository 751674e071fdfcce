package snmp

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// OID is an object identifier, arc by arc.
type OID []uint32

// ParseOID reads "1.3.6.1..." (a leading dot allowed).
func ParseOID(s string) (OID, error) {
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return nil, fmt.Errorf("empty OID")
	}
	parts := strings.Split(s, ".")
	o := make(OID, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("OID %q: arc %d: %v", s, i+1, err)
		}
		o[i] = uint32(n)
	}
	return o, nil
}

// MustOID is ParseOID for constants.
func MustOID(s string) OID {
	o, err := ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// String is the dotted form with a leading dot, as gosnmp writes names.
func (o OID) String() string {
	var b strings.Builder
	for _, a := range o {
		b.WriteByte('.')
		b.WriteString(strconv.FormatUint(uint64(a), 10))
	}
	return b.String()
}

// Compare orders OIDs lexicographically, arc by arc (RFC 3416's order).
func (o OID) Compare(p OID) int { return slices.Compare(o, p) }

// HasPrefix tells whether p is o or an ancestor of o.
func (o OID) HasPrefix(p OID) bool { return len(o) >= len(p) && slices.Equal(o[:len(p)], p) }

// Append returns o followed by arcs, in a new slice.
func (o OID) Append(arcs ...uint32) OID {
	r := make(OID, 0, len(o)+len(arcs))
	return append(append(r, o...), arcs...)
}
