package main

import (
	"github.com/gosnmp/gosnmp"

	"github.com/softswitch/softswitch/core/sipcount"
	"github.com/softswitch/softswitch/oam/snmp"
)

// RFC 4780's SIP MIB modules, for the objects that fit a B2BUA and
// registrar (docs/snmp.md): the switch is the one SIP entity, applIndex 1.
var (
	sipCommonObjects = snmp.MustOID("1.3.6.1.2.1.149.1") // SIP-COMMON-MIB
	sipServerObjects = snmp.MustOID("1.3.6.1.2.1.151.1") // SIP-SERVER-MIB
)

const sipApplIndex = 1

// registerSIPMIB serves sipCommonCfgTable (version, status, entity
// type), sipCommonSummaryStatsTable, sipCommonMethodStatsTable,
// sipCommonStatusCodeTable (a row for each method and code seen) and
// sipServerRegStatsTable.
func registerSIPMIB(m *snmp.MIB, c *sipcount.Counters, organization string) {
	one := func() []snmp.Row { return []snmp.Row{{Index: snmp.OID{sipApplIndex}}} }
	m.Table(sipCommonObjects.Append(1, 1, 1), []snmp.Column{
		{Sub: 1, Type: gosnmp.OctetString, Get: func(snmp.Row) any { return []byte("SIP/2.0") }},
		{Sub: 2, Type: gosnmp.Integer, Get: func(snmp.Row) any { return 2 }}, // up(2): it answers, or the agent would not
		{Sub: 3, Type: gosnmp.TimeTicks, Get: func(snmp.Row) any { return uint32(0) }},
		{Sub: 4, Type: gosnmp.TimeTicks, Get: func(snmp.Row) any { return uint32(0) }},
		{Sub: 5, Type: gosnmp.OctetString, Get: func(snmp.Row) any { return []byte(organization) }},
		// SipTCEntityRole BITS: userAgent(1) (a B2BUA's legs) and registrarServer(4).
		{Sub: 8, Type: gosnmp.OctetString, Get: func(snmp.Row) any { return []byte{0x48} }},
	}, one)
	m.Table(sipCommonObjects.Append(3, 1, 1), []snmp.Column{
		{Sub: 1, Type: gosnmp.Counter32, Get: func(snmp.Row) any { return uint32(c.Summary().InRequests) }},
		{Sub: 2, Type: gosnmp.Counter32, Get: func(snmp.Row) any { return uint32(c.Summary().OutRequests) }},
		{Sub: 3, Type: gosnmp.Counter32, Get: func(snmp.Row) any { return uint32(c.Summary().InResponses) }},
		{Sub: 4, Type: gosnmp.Counter32, Get: func(snmp.Row) any { return uint32(c.Summary().OutResponses) }},
		{Sub: 6, Type: gosnmp.TimeTicks, Get: func(snmp.Row) any { return uint32(0) }}, // no discontinuity since the start
	}, one)
	name := func(s string) snmp.OID { // a SipTCMethodName in an index: its length, then its octets
		o := snmp.OID{uint32(len(s))}
		for i := 0; i < len(s); i++ {
			o = append(o, uint32(s[i]))
		}
		return o
	}
	type mc struct{ method, code int }
	m.Table(sipCommonObjects.Append(4, 1, 1), []snmp.Column{
		{Sub: 2, Type: gosnmp.Counter32, Get: func(r snmp.Row) any { _, out := c.Method(r.Data.(int)); return uint32(out) }},
		{Sub: 3, Type: gosnmp.Counter32, Get: func(r snmp.Row) any { in, _ := c.Method(r.Data.(int)); return uint32(in) }},
		{Sub: 4, Type: gosnmp.TimeTicks, Get: func(snmp.Row) any { return uint32(0) }},
	}, func() []snmp.Row {
		var rows []snmp.Row
		for i, mth := range sipcount.Methods {
			if in, out := c.Method(i); in+out > 0 {
				rows = append(rows, snmp.Row{Index: append(snmp.OID{sipApplIndex}, name(mth)...), Data: i})
			}
		}
		return rows
	})
	m.Table(sipCommonObjects.Append(5, 1, 1), []snmp.Column{
		{Sub: 3, Type: gosnmp.Counter32, Get: func(r snmp.Row) any { k := r.Data.(mc); in, _ := c.Status(k.method, k.code); return uint32(in) }},
		{Sub: 4, Type: gosnmp.Counter32, Get: func(r snmp.Row) any { k := r.Data.(mc); _, out := c.Status(k.method, k.code); return uint32(out) }},
		{Sub: 5, Type: gosnmp.Integer, Get: func(snmp.Row) any { return 1 }}, // RowStatus active(1)
		{Sub: 6, Type: gosnmp.TimeTicks, Get: func(snmp.Row) any { return uint32(0) }},
	}, func() []snmp.Row {
		var rows []snmp.Row
		for i, mth := range sipcount.Methods {
			for code := 100; code < 700; code++ {
				if in, out := c.Status(i, code); in+out > 0 {
					idx := append(append(snmp.OID{sipApplIndex}, name(mth)...), uint32(code))
					rows = append(rows, snmp.Row{Index: idx, Data: mc{i, code}})
				}
			}
		}
		return rows
	})
	// Registrations accepted and refused: the registrar's final answers.
	reg := sipcount.Index("REGISTER")
	regs := func(from, to int) uint32 {
		var n uint64
		for code := from; code < to; code++ {
			_, out := c.Status(reg, code)
			n += out
		}
		return uint32(n)
	}
	m.Table(sipServerObjects.Append(6, 1, 1), []snmp.Column{
		{Sub: 1, Type: gosnmp.Counter32, Get: func(snmp.Row) any { return regs(200, 300) }},
		{Sub: 2, Type: gosnmp.Counter32, Get: func(snmp.Row) any { return regs(300, 700) - regs(401, 402) - regs(407, 408) }},
		{Sub: 3, Type: gosnmp.TimeTicks, Get: func(snmp.Row) any { return uint32(0) }},
	}, one)
}
