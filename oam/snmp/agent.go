// Package snmp is the switch's SNMP agent (RFC 3416 operations over
// SNMPv2c and SNMPv3 USM): gosnmp encodes and decodes messages and does
// USM's cryptography; the tree, the operations, access and the USM
// procedures around them are ours (docs/snmp.md).
package snmp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/softswitch/softswitch/core/safe"
)

// Community is an SNMPv2c community: its name (a secret), whether it may
// SET, and the sources allowed to use it (none: no source is).
type Community struct {
	Name    string
	Write   bool
	Sources []netip.Prefix
}

// User is an SNMPv3 USM user. Auth and Priv are gosnmp's protocols;
// NoAuth/NoPriv are refused at start (authNoPriv and authPriv only).
type User struct {
	Name     string
	Auth     gosnmp.SnmpV3AuthProtocol
	AuthPass string
	Priv     gosnmp.SnmpV3PrivProtocol
	PrivPass string
	Write    bool
}

// Agent answers SNMP requests on one UDP socket.
type Agent struct {
	MIB         *MIB
	Communities []Community
	Users       []User
	EngineFile  string // engine ID and boots, kept across restarts
	Log         *slog.Logger
	// SetDone, when set, ends every SET: ok, the commits the columns
	// collected are applied whole (an error: commitFailed); not ok, they
	// are dropped. So a SET of several variables changes all or nothing.
	SetDone func(ok bool) error

	engine engineState
	start  time.Time
	users  map[string]*usmUser
	conn   *net.UDPConn
	salt   atomic.Uint64
	Stats  Stats
}

// Stats are the agent's own counters (SNMPv2-MIB snmp group,
// SNMP-MPD-MIB, SNMP-USER-BASED-SM-MIB usmStats).
type Stats struct {
	InPkts, BadVersions, BadCommunityNames, BadCommunityUses, ASNParseErrs, SilentDrops atomic.Uint64
	UnknownSecurityModels, InvalidMsgs                                                  atomic.Uint64
	UnsupportedSecLevels, NotInTimeWindows, UnknownUserNames, UnknownEngineIDs          atomic.Uint64
	WrongDigests, DecryptionErrors                                                      atomic.Uint64
}

type usmUser struct {
	level  gosnmp.SnmpV3MsgFlags
	params *gosnmp.UsmSecurityParameters // keys localised to our engine ID once
	write  bool
}

// maxMessage is the largest message the agent sends (UDP over IPv4).
const maxMessage = 65507

// Listen loads the engine state (counting this start), prepares the users'
// keys and binds addr.
func (a *Agent) Listen(addr string) error {
	st, err := loadEngine(a.EngineFile)
	if err != nil {
		return fmt.Errorf("snmp engine state: %w", err)
	}
	a.engine, a.start = st, time.Now()
	a.salt.Store(uint64(time.Now().UnixNano())) // AES salts: never repeated under one key
	a.users = map[string]*usmUser{}
	for _, u := range a.Users {
		if u.Auth <= gosnmp.NoAuth {
			return fmt.Errorf("snmp user %q: an authentication protocol is required", u.Name)
		}
		p := &gosnmp.UsmSecurityParameters{UserName: u.Name, AuthenticationProtocol: u.Auth, AuthenticationPassphrase: u.AuthPass,
			PrivacyProtocol: gosnmp.NoPriv, AuthoritativeEngineID: string(st.ID)}
		level := gosnmp.AuthNoPriv
		if u.Priv > gosnmp.NoPriv {
			p.PrivacyProtocol, p.PrivacyPassphrase, level = u.Priv, u.PrivPass, gosnmp.AuthPriv
		}
		if err := p.InitSecurityKeys(); err != nil {
			return fmt.Errorf("snmp user %q: %w", u.Name, err)
		}
		a.users[u.Name] = &usmUser{level: level, params: p, write: u.Write}
	}
	a.registerOwn()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	if a.conn, err = net.ListenUDP("udp", ua); err != nil {
		return err
	}
	return nil
}

// Addr is the bound address.
func (a *Agent) Addr() net.Addr { return a.conn.LocalAddr() }

// EngineID is the agent's snmpEngineID.
func (a *Agent) EngineID() []byte { return a.engine.ID }

// Serve answers until ctx ends. One goroutine: management traffic is
// small, and one at a time keeps a SET's check and commit whole.
func (a *Agent) Serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { a.conn.Close() })
	defer stop()
	buf := make([]byte, maxMessage+1)
	for {
		n, from, err := a.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		msg := append([]byte(nil), buf[:n]...)
		var out []byte
		safe.Func("snmp request", func() { out = a.handle(msg, from) })()
		if out != nil {
			a.conn.WriteToUDPAddrPort(out, from)
		}
	}
}

// Close releases the socket.
func (a *Agent) Close() error { return a.conn.Close() }

// handle answers one message (nil: nothing to send).
func (a *Agent) handle(msg []byte, from netip.AddrPort) []byte {
	a.Stats.InPkts.Add(1)
	m := (&reader{b: msg}).seq()
	version := m.int()
	if m.err != nil {
		a.Stats.ASNParseErrs.Add(1)
		return nil
	}
	switch version {
	case 1: // SNMPv2c
		return a.handleV2c(msg, from)
	case 3:
		return a.handleV3(msg)
	default: // SNMPv1 is not served
		a.Stats.BadVersions.Add(1)
		return nil
	}
}

func (a *Agent) handleV2c(msg []byte, from netip.AddrPort) []byte {
	m := (&reader{b: msg}).seq()
	m.int()
	community := m.octets()
	if m.err != nil {
		a.Stats.ASNParseErrs.Add(1)
		return nil
	}
	var c *Community
	for i := range a.Communities {
		x := &a.Communities[i]
		if subtle.ConstantTimeCompare([]byte(x.Name), community) == 1 && allowed(x.Sources, from.Addr()) {
			c = x
		}
	}
	if c == nil {
		// Unknown, or not from where it may be used: no answer at all.
		a.Stats.BadCommunityNames.Add(1)
		return nil
	}
	p, err := (&gosnmp.GoSNMP{Version: gosnmp.Version2c, Community: c.Name}).SnmpDecodePacket(msg)
	if err != nil {
		a.Stats.ASNParseErrs.Add(1)
		return nil
	}
	if p.PDUType == gosnmp.SetRequest && !c.Write {
		a.Stats.BadCommunityUses.Add(1)
	}
	resp := a.process(p, c.Write)
	if resp == nil {
		return nil
	}
	resp.Version, resp.Community = gosnmp.Version2c, c.Name
	return a.marshal(resp, p.PDUType, maxMessage)
}

func allowed(sources []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range sources {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// process runs one request PDU; nil: not a request (no answer).
func (a *Agent) process(p *gosnmp.SnmpPacket, write bool) *gosnmp.SnmpPacket {
	r := &gosnmp.SnmpPacket{PDUType: gosnmp.GetResponse, RequestID: p.RequestID}
	switch p.PDUType {
	case gosnmp.GetRequest, gosnmp.GetNextRequest:
		for _, v := range p.Variables {
			o, err := ParseOID(v.Name)
			if err != nil {
				r.Variables = append(r.Variables, gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.NoSuchObject})
				continue
			}
			if p.PDUType == gosnmp.GetRequest {
				r.Variables = append(r.Variables, pdu(a.MIB.Get(o)))
			} else {
				r.Variables = append(r.Variables, pdu(a.MIB.Next(o)))
			}
		}
	case gosnmp.GetBulkRequest:
		r.Variables = a.bulk(p)
	case gosnmp.SetRequest:
		r.Variables = p.Variables
		if !write {
			r.Error, r.ErrorIndex = gosnmp.NoAccess, 1
			return r
		}
		for phase, commit := range []bool{false, true} {
			for i, v := range p.Variables {
				if err := a.MIB.set(v, commit); err != nil {
					var se *Error
					switch {
					case phase == 1:
						r.Error = gosnmp.CommitFailed
					case errors.As(err, &se):
						r.Error = se.Status
					default:
						r.Error = gosnmp.GenErr
					}
					r.ErrorIndex = uint8(min(i+1, 255))
					if a.Log != nil {
						a.Log.Info("snmp SET refused", "oid", v.Name, "err", err)
					}
					if a.SetDone != nil {
						a.SetDone(false)
					}
					return r
				}
			}
		}
		if a.SetDone != nil {
			if err := a.SetDone(true); err != nil {
				r.Error, r.ErrorIndex = gosnmp.CommitFailed, 1
				if a.Log != nil {
					a.Log.Info("snmp SET not committed", "err", err)
				}
			}
		}
	default:
		a.Stats.SilentDrops.Add(1)
		return nil
	}
	return r
}

// bulkMax bounds the variables of one GETBULK answer.
const bulkMax = 1000

func (a *Agent) bulk(p *gosnmp.SnmpPacket) []gosnmp.SnmpPDU {
	var out []gosnmp.SnmpPDU
	nonRep := min(int(p.NonRepeaters), len(p.Variables))
	last := make([]OID, len(p.Variables))
	for i, v := range p.Variables {
		o, err := ParseOID(v.Name)
		if err != nil {
			o = OID{0}
		}
		last[i] = o
	}
	for i := 0; i < nonRep; i++ {
		out = append(out, pdu(a.MIB.Next(last[i])))
	}
	rep := last[nonRep:]
	if len(rep) == 0 {
		return out
	}
	reps := min(int(p.MaxRepetitions), (bulkMax-len(out))/len(rep))
	for r := 0; r < reps; r++ {
		ended := true
		for j, o := range rep {
			v := a.MIB.Next(o)
			if v.Type != gosnmp.EndOfMibView {
				ended = false
				rep[j] = v.OID
			}
			out = append(out, pdu(v))
		}
		if ended {
			break
		}
	}
	return out
}

func pdu(v Var) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: v.OID.String(), Type: v.Type, Value: v.Value}
}

// marshal encodes r within max octets: a GETBULK answer loses variables
// from its end until it fits; anything else too big is tooBig.
func (a *Agent) marshal(r *gosnmp.SnmpPacket, req gosnmp.PDUType, max int) []byte {
	for {
		out, err := r.MarshalMsg()
		if err != nil {
			if a.Log != nil {
				a.Log.Warn("snmp answer not encoded", "err", err)
			}
			r.Variables, r.Error, r.ErrorIndex = nil, gosnmp.GenErr, 0
			if out, err = r.MarshalMsg(); err != nil {
				return nil
			}
			return out
		}
		if len(out) <= max {
			return out
		}
		if req == gosnmp.GetBulkRequest && len(r.Variables) > 1 {
			r.Variables = r.Variables[:len(r.Variables)*3/4]
			continue
		}
		if r.Error == gosnmp.TooBig {
			return nil
		}
		r.Variables, r.Error, r.ErrorIndex = nil, gosnmp.TooBig, 0
	}
}
