package snmp

import (
	"time"

	"github.com/gosnmp/gosnmp"
)

// Our enterprise subtree (docs/snmp.md) and the product's sysObjectID.
var (
	Enterprise  = MustOID("1.3.6.1.4.1.32473")
	SysObjectID = Enterprise.Append(2, 1) // softswitchProducts.softswitch
)

// System is what MIB-II's system group says of the node.
type System struct {
	Descr, Contact, Name, Location string
	Start                          time.Time // sysUpTime counts from here
}

// RegisterSystem adds MIB-II's system group (RFC 3418).
func (m *MIB) RegisterSystem(s System) {
	sys := MustOID("1.3.6.1.2.1.1")
	str := func(v string) func() any { return func() any { return []byte(v) } }
	m.Scalar(sys.Append(1), gosnmp.OctetString, str(s.Descr))
	m.Scalar(sys.Append(2), gosnmp.ObjectIdentifier, func() any { return SysObjectID.String() })
	m.Scalar(sys.Append(3), gosnmp.TimeTicks, func() any { return uint32(time.Since(s.Start) / (10 * time.Millisecond)) })
	m.Scalar(sys.Append(4), gosnmp.OctetString, str(s.Contact))
	m.Scalar(sys.Append(5), gosnmp.OctetString, str(s.Name))
	m.Scalar(sys.Append(6), gosnmp.OctetString, str(s.Location))
	m.Scalar(sys.Append(7), gosnmp.Integer, func() any { return 72 }) // application and end-to-end layers
}
