package snmp

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/gosnmp/gosnmp"
)

// Var is one instance and its value (gosnmp's types: Integer int,
// OctetString []byte, ObjectIdentifier string, Counter32/Gauge32 uint,
// TimeTicks uint32, Counter64 uint64).
type Var struct {
	OID   OID
	Type  gosnmp.Asn1BER
	Value any
}

// Error is a SET's refusal: the RFC 3416 error status and why.
type Error struct {
	Status gosnmp.SNMPError
	Why    string
}

func (e *Error) Error() string { return fmt.Sprintf("%v: %s", e.Status, e.Why) }

// WrongValue refuses a value of the right type that the object cannot take.
func WrongValue(format string, a ...any) error {
	return &Error{Status: gosnmp.WrongValue, Why: fmt.Sprintf(format, a...)}
}

// SetFunc checks a new value (commit false) or applies it (commit true,
// only after every variable of the request passed its check).
type SetFunc func(v gosnmp.SnmpPDU, commit bool) error

// Row is a table row: its index arcs and whatever its columns read.
type Row struct {
	Index OID
	Data  any
}

// Column is a table column: sub-identifier under the entry, type, read
// and (optionally) write.
type Column struct {
	Sub  uint32
	Type gosnmp.Asn1BER
	Get  func(r Row) any
	Set  func(r Row, v gosnmp.SnmpPDU, commit bool) error
}

// entry is a registered subtree: a scalar (instance .0) or a table.
type entry struct {
	prefix OID
	typ    gosnmp.Asn1BER // scalars
	get    func() any     // scalars
	set    SetFunc        // scalars
	cols   []Column       // tables
	rows   func() []Row   // tables, in index order
}

// MIB is the agent's tree: subtrees registered at start, read at each
// request (values are read when asked, never cached).
type MIB struct {
	mu      sync.RWMutex
	entries []*entry
}

func (m *MIB) add(e *entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.entries {
		if e.prefix.HasPrefix(x.prefix) || x.prefix.HasPrefix(e.prefix) {
			panic(fmt.Sprintf("snmp: %v overlaps %v", e.prefix, x.prefix))
		}
	}
	m.entries = append(m.entries, e)
	sort.Slice(m.entries, func(i, j int) bool { return m.entries[i].prefix.Compare(m.entries[j].prefix) < 0 })
}

// Scalar registers a read-only scalar object (its instance is oid.0).
func (m *MIB) Scalar(oid OID, typ gosnmp.Asn1BER, get func() any) {
	m.add(&entry{prefix: oid, typ: typ, get: get})
}

// WritableScalar registers a scalar that SET may change.
func (m *MIB) WritableScalar(oid OID, typ gosnmp.Asn1BER, get func() any, set SetFunc) {
	m.add(&entry{prefix: oid, typ: typ, get: get, set: set})
}

// Table registers a conceptual table by its entry OID (table.1).
func (m *MIB) Table(entryOID OID, cols []Column, rows func() []Row) {
	cols = slices.Clone(cols)
	slices.SortFunc(cols, func(a, b Column) int { return int(a.Sub) - int(b.Sub) })
	m.add(&entry{prefix: entryOID, cols: cols, rows: rows})
}

// walk lists e's instances in OID order.
func (e *entry) walk() []Var {
	if e.cols == nil {
		return []Var{{OID: e.prefix.Append(0), Type: e.typ, Value: e.get()}}
	}
	rows := e.rows()
	vars := make([]Var, 0, len(rows)*len(e.cols))
	for _, c := range e.cols {
		for _, r := range rows {
			vars = append(vars, Var{OID: e.prefix.Append(c.Sub).Append(r.Index...), Type: c.Type, Value: c.Get(r)})
		}
	}
	return vars
}

// find returns the entry holding o, and the index of the first entry
// after o otherwise.
func (m *MIB) find(o OID) (*entry, int) {
	i := sort.Search(len(m.entries), func(i int) bool { return m.entries[i].prefix.Compare(o) > 0 })
	if i > 0 && o.HasPrefix(m.entries[i-1].prefix) {
		return m.entries[i-1], i - 1
	}
	return nil, i
}

// Get answers a GET of o.
func (m *MIB) Get(o OID) Var {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, _ := m.find(o)
	if e == nil {
		return Var{OID: o, Type: gosnmp.NoSuchObject}
	}
	if e.cols != nil && (len(o) <= len(e.prefix) || !slices.ContainsFunc(e.cols, func(c Column) bool { return c.Sub == o[len(e.prefix)] })) {
		return Var{OID: o, Type: gosnmp.NoSuchObject}
	}
	for _, v := range e.walk() {
		if v.OID.Compare(o) == 0 {
			return v
		}
	}
	return Var{OID: o, Type: gosnmp.NoSuchInstance}
}

// Next answers a GETNEXT of o: the first instance after it.
func (m *MIB) Next(o OID) Var {
	m.mu.RLock()
	defer m.mu.RUnlock()
	// From the entry holding o, else the first after it.
	_, i := m.find(o)
	for ; i < len(m.entries); i++ {
		for _, v := range m.entries[i].walk() {
			if v.OID.Compare(o) > 0 {
				return v
			}
		}
	}
	return Var{OID: o, Type: gosnmp.EndOfMibView}
}

// set checks (commit false) or applies one variable of a SET.
func (m *MIB) set(v gosnmp.SnmpPDU, commit bool) error {
	o, err := ParseOID(v.Name)
	if err != nil {
		return &Error{Status: gosnmp.NoCreation, Why: err.Error()}
	}
	m.mu.RLock()
	e, _ := m.find(o)
	m.mu.RUnlock()
	if e == nil {
		return &Error{Status: gosnmp.NotWritable, Why: "no such object"}
	}
	if e.cols == nil {
		switch {
		case len(o) != len(e.prefix)+1 || o[len(e.prefix)] != 0:
			return &Error{Status: gosnmp.NoCreation, Why: "a scalar's only instance is .0"}
		case e.set == nil:
			return &Error{Status: gosnmp.NotWritable, Why: "read-only object"}
		case v.Type != e.typ:
			return &Error{Status: gosnmp.WrongType, Why: fmt.Sprintf("%v expected", e.typ)}
		}
		return e.set(v, commit)
	}
	if len(o) <= len(e.prefix) {
		return &Error{Status: gosnmp.NotWritable, Why: "not a column"}
	}
	ci := slices.IndexFunc(e.cols, func(c Column) bool { return c.Sub == o[len(e.prefix)] })
	if ci < 0 {
		return &Error{Status: gosnmp.NotWritable, Why: "no such column"}
	}
	c := e.cols[ci]
	if c.Set == nil {
		return &Error{Status: gosnmp.NotWritable, Why: "read-only column"}
	}
	if v.Type != c.Type {
		return &Error{Status: gosnmp.WrongType, Why: fmt.Sprintf("%v expected", c.Type)}
	}
	index := o[len(e.prefix)+1:]
	for _, r := range e.rows() {
		if r.Index.Compare(index) == 0 {
			return c.Set(r, v, commit)
		}
	}
	return &Error{Status: gosnmp.NoCreation, Why: "no such row (rows are not created by SET)"}
}
