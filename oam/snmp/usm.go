package snmp

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"
)

// usmStats instances (SNMP-USER-BASED-SM-MIB, RFC 3414), sent in Reports.
var (
	oidUnsupportedSecLevels = MustOID("1.3.6.1.6.3.15.1.1.1")
	oidNotInTimeWindows     = MustOID("1.3.6.1.6.3.15.1.1.2")
	oidUnknownUserNames     = MustOID("1.3.6.1.6.3.15.1.1.3")
	oidUnknownEngineIDs     = MustOID("1.3.6.1.6.3.15.1.1.4")
	oidWrongDigests         = MustOID("1.3.6.1.6.3.15.1.1.5")
	oidDecryptionErrors     = MustOID("1.3.6.1.6.3.15.1.1.6")
)

// v3Header is what must be read before USM may authenticate a message.
type v3Header struct {
	ID, MaxSize int64
	Flags       []byte
	Model       int64
	EngineID    []byte
	Boots, Time int64
	User        []byte
}

func parseV3(msg []byte) (h v3Header, err error) {
	m := (&reader{b: msg}).seq()
	m.int()
	g := m.seq()
	h.ID, h.MaxSize, h.Flags, h.Model = g.int(), g.int(), g.octets(), g.int()
	sec := m.octets()
	if m.err != nil || g.err != nil {
		return h, errBER
	}
	if h.Model != 3 {
		return h, nil
	}
	u := (&reader{b: sec}).seq()
	h.EngineID, h.Boots, h.Time, h.User = u.octets(), u.int(), u.int(), u.octets()
	if u.err != nil {
		return h, errBER
	}
	return h, nil
}

// timeWindow is RFC 3414 §3.2.7's 150 seconds.
const timeWindow = 150

// engineTime is snmpEngineTime: seconds since this start.
func (a *Agent) engineTime() uint32 { return uint32(time.Since(a.start) / time.Second) }

// handleV3 follows RFC 3414 §3.2: engine, user, level, digest, time
// window, then the PDU; each failure is counted and, when the message
// asks for one, answered with a Report of the counter.
func (a *Agent) handleV3(msg []byte) []byte {
	h, err := parseV3(msg)
	if err != nil {
		a.Stats.ASNParseErrs.Add(1)
		return nil
	}
	if h.Model != 3 {
		a.Stats.UnknownSecurityModels.Add(1)
		return nil
	}
	if len(h.Flags) != 1 || h.Flags[0]&3 == 2 || h.ID < 0 || h.ID > 2147483647 || h.MaxSize < 484 {
		a.Stats.InvalidMsgs.Add(1)
		return nil
	}
	flags := gosnmp.SnmpV3MsgFlags(h.Flags[0])
	rep := &report{msgID: uint32(h.ID), reportable: flags&gosnmp.Reportable != 0}
	level := flags & gosnmp.AuthPriv
	max := int(min(h.MaxSize, maxMessage))

	if !bytes.Equal(h.EngineID, a.engine.ID) {
		// Engine discovery (RFC 3414 §4) or another engine's message.
		if level == gosnmp.NoAuthNoPriv {
			if p, err := (&gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
				SecurityParameters: &gosnmp.UsmSecurityParameters{}}).UnmarshalTrap(append([]byte(nil), msg...), true); err == nil {
				rep.requestID = p.RequestID
			}
		}
		return a.report(rep, oidUnknownEngineIDs, a.Stats.UnknownEngineIDs.Add(1), nil, max)
	}
	u := a.users[string(h.User)]
	if u == nil {
		return a.report(rep, oidUnknownUserNames, a.Stats.UnknownUserNames.Add(1), nil, max)
	}
	if level != u.level {
		// A user has one level: authPriv users never answer in clear.
		return a.report(rep, oidUnsupportedSecLevels, a.Stats.UnsupportedSecLevels.Add(1), nil, max)
	}
	g := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: flags,
		SecurityParameters: u.params.Copy()}
	p, err := g.UnmarshalTrap(append([]byte(nil), msg...), true)
	if err != nil {
		if strings.Contains(err.Error(), "decrypt") {
			return a.report(rep, oidDecryptionErrors, a.Stats.DecryptionErrors.Add(1), nil, max)
		}
		return a.report(rep, oidWrongDigests, a.Stats.WrongDigests.Add(1), nil, max)
	}
	rep.requestID = p.RequestID
	now := int64(a.engineTime())
	if a.engine.Boots == 2147483647 || h.Boots != int64(a.engine.Boots) || h.Time < now-timeWindow || h.Time > now+timeWindow {
		// Authenticated, so that the manager may trust our clock.
		return a.report(rep, oidNotInTimeWindows, a.Stats.NotInTimeWindows.Add(1), u, max)
	}
	r := a.process(p, u.write)
	if r == nil {
		return nil
	}
	r.MsgID, r.MsgFlags, r.ContextName = p.MsgID, level, p.ContextName
	return a.marshal(a.v3(r, u), p.PDUType, max)
}

type report struct {
	msgID, requestID uint32
	reportable       bool
}

// report answers with a Report PDU of one usmStats counter; signed by u
// when given (notInTimeWindow), else in clear.
func (a *Agent) report(r *report, counter OID, value uint64, u *usmUser, max int) []byte {
	if !r.reportable {
		return nil
	}
	p := &gosnmp.SnmpPacket{PDUType: gosnmp.Report, MsgID: r.msgID, RequestID: r.requestID,
		Variables: []gosnmp.SnmpPDU{{Name: counter.Append(0).String(), Type: gosnmp.Counter32, Value: uint(uint32(value))}}}
	if u != nil {
		p.MsgFlags = gosnmp.AuthNoPriv
		return a.marshal(a.v3(p, u), gosnmp.Report, max)
	}
	p.MsgFlags = gosnmp.NoAuthNoPriv
	return a.marshal(a.v3(p, nil), gosnmp.Report, max)
}

// v3 fills in the message fields of an answer from this engine.
func (a *Agent) v3(p *gosnmp.SnmpPacket, u *usmUser) *gosnmp.SnmpPacket {
	p.Version, p.SecurityModel, p.ContextEngineID = gosnmp.Version3, gosnmp.UserSecurityModel, string(a.engine.ID)
	sp := &gosnmp.UsmSecurityParameters{AuthoritativeEngineID: string(a.engine.ID), AuthoritativeEngineBoots: a.engine.Boots,
		AuthoritativeEngineTime: a.engineTime(), AuthenticationProtocol: gosnmp.NoAuth, PrivacyProtocol: gosnmp.NoPriv}
	if u != nil {
		sp.UserName = u.params.UserName
		sp.AuthenticationProtocol, sp.SecretKey = u.params.AuthenticationProtocol, u.params.SecretKey
		if p.MsgFlags&gosnmp.AuthPriv == gosnmp.AuthPriv {
			sp.PrivacyProtocol, sp.PrivacyKey = u.params.PrivacyProtocol, u.params.PrivacyKey
			salt := make([]byte, 8)
			binary.BigEndian.PutUint64(salt, a.salt.Add(1))
			sp.PrivacyParameters = salt
		}
	}
	p.SecurityParameters = sp
	return p
}
