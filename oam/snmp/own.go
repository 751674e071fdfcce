package snmp

import "github.com/gosnmp/gosnmp"

// registerOwn adds the agent's own objects: SNMPv2-MIB's snmp group,
// SNMP-MPD-MIB's and SNMP-USER-BASED-SM-MIB's statistics, and
// SNMP-FRAMEWORK-MIB's snmpEngine group.
func (a *Agent) registerOwn() {
	m := a.MIB
	counter := func(oid string, c interface{ Load() uint64 }) {
		m.Scalar(MustOID(oid), gosnmp.Counter32, func() any { return uint(uint32(c.Load())) })
	}
	s := &a.Stats
	counter("1.3.6.1.2.1.11.1", &s.InPkts)
	counter("1.3.6.1.2.1.11.3", &s.BadVersions)
	counter("1.3.6.1.2.1.11.4", &s.BadCommunityNames)
	counter("1.3.6.1.2.1.11.5", &s.BadCommunityUses)
	counter("1.3.6.1.2.1.11.6", &s.ASNParseErrs)
	m.Scalar(MustOID("1.3.6.1.2.1.11.30"), gosnmp.Integer, func() any { return 2 }) // snmpEnableAuthenTraps: disabled
	counter("1.3.6.1.2.1.11.31", &s.SilentDrops)
	m.Scalar(MustOID("1.3.6.1.2.1.11.32"), gosnmp.Counter32, func() any { return uint(0) }) // snmpProxyDrops: no proxy
	counter("1.3.6.1.6.3.11.2.1.1", &s.UnknownSecurityModels)
	counter("1.3.6.1.6.3.11.2.1.2", &s.InvalidMsgs)
	m.Scalar(MustOID("1.3.6.1.6.3.11.2.1.3"), gosnmp.Counter32, func() any { return uint(0) })
	counter(oidUnsupportedSecLevels.String()[1:], &s.UnsupportedSecLevels)
	counter(oidNotInTimeWindows.String()[1:], &s.NotInTimeWindows)
	counter(oidUnknownUserNames.String()[1:], &s.UnknownUserNames)
	counter(oidUnknownEngineIDs.String()[1:], &s.UnknownEngineIDs)
	counter(oidWrongDigests.String()[1:], &s.WrongDigests)
	counter(oidDecryptionErrors.String()[1:], &s.DecryptionErrors)
	m.Scalar(MustOID("1.3.6.1.6.3.10.2.1.1"), gosnmp.OctetString, func() any { return a.engine.ID })
	m.Scalar(MustOID("1.3.6.1.6.3.10.2.1.2"), gosnmp.Integer, func() any { return int(a.engine.Boots) })
	m.Scalar(MustOID("1.3.6.1.6.3.10.2.1.3"), gosnmp.Integer, func() any { return int(a.engineTime()) })
	m.Scalar(MustOID("1.3.6.1.6.3.10.2.1.4"), gosnmp.Integer, func() any { return maxMessage })
}
