package snmp

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/softswitch/softswitch/core/safe"
)

// Target is a manager notifications go to: SNMPv2c with a community,
// or SNMPv3 as one of the agent's users. For an SNMPv3 trap this engine is
// the authoritative one; for an SNMPv3 inform the manager is (RFC 3414
// §1.5.2): its engine ID, boots and time are discovered first, and the
// user's keys localised to it.
type Target struct {
	Addr      netip.AddrPort
	Community string
	User      *User // SNMPv3; nil: v2c
	Inform    bool  // acknowledged, retried; else a trap, sent once
}

// Notifier sends notifications to its targets, each from a queue of its
// own, so that a slow or dead manager delays nobody else.
type Notifier struct {
	Targets []Target
	Start   time.Time // sysUpTime counts from here
	Agent   *Agent    // the engine SNMPv3 traps come from
	Log     *slog.Logger

	queues  []chan []gosnmp.SnmpPDU
	Dropped atomic.Uint64 // notifications lost to a full queue
	Failed  atomic.Uint64 // informs never acknowledged
}

var (
	oidSysUpTime   = MustOID("1.3.6.1.2.1.1.3.0")
	oidSnmpTrapOID = MustOID("1.3.6.1.6.3.1.1.4.1.0")
)

// queueLen bounds what waits for one target.
const queueLen = 256

// Run starts a sender per target; they stop with ctx.
func (n *Notifier) Run(ctx context.Context) {
	for _, t := range n.Targets {
		q := make(chan []gosnmp.SnmpPDU, queueLen)
		n.queues = append(n.queues, q)
		safe.Go("SNMP notifications to "+t.Addr.String(), func() { n.send(ctx, t, q) })
	}
}

// Notify queues notification oid with vars for every target (never
// blocks: a full queue drops it, counted).
func (n *Notifier) Notify(oid OID, vars []Var) {
	pdus := []gosnmp.SnmpPDU{
		{Name: oidSysUpTime.String(), Type: gosnmp.TimeTicks, Value: uint32(time.Since(n.Start) / (10 * time.Millisecond))},
		{Name: oidSnmpTrapOID.String(), Type: gosnmp.ObjectIdentifier, Value: oid.String()},
	}
	for _, v := range vars {
		pdus = append(pdus, pdu(v))
	}
	for _, q := range n.queues {
		select {
		case q <- pdus:
		default:
			n.Dropped.Add(1)
		}
	}
}

func (n *Notifier) send(ctx context.Context, t Target, q chan []gosnmp.SnmpPDU) {
	g := &gosnmp.GoSNMP{Target: t.Addr.Addr().String(), Port: t.Addr.Port(), Version: gosnmp.Version2c,
		Community: t.Community, Transport: "udp", Timeout: 2 * time.Second, Retries: 2, Context: ctx}
	var sp *gosnmp.UsmSecurityParameters
	if t.User != nil {
		g.Version, g.SecurityModel, g.Community = gosnmp.Version3, gosnmp.UserSecurityModel, ""
		g.MsgFlags = gosnmp.AuthNoPriv
		if t.User.Priv > gosnmp.NoPriv {
			g.MsgFlags = gosnmp.AuthPriv
		}
		if t.Inform {
			// The manager is authoritative: gosnmp discovers its engine
			// (an empty engine ID asks for it) and localises the keys.
			g.SecurityParameters = &gosnmp.UsmSecurityParameters{UserName: t.User.Name,
				AuthenticationProtocol: t.User.Auth, AuthenticationPassphrase: t.User.AuthPass,
				PrivacyProtocol: t.User.Priv, PrivacyPassphrase: t.User.PrivPass}
		} else {
			sp = n.usm(t.User)
			g.SecurityParameters = sp
		}
	}
	connected := false
	for {
		select {
		case <-ctx.Done():
			if connected {
				g.Conn.Close()
			}
			return
		case pdus := <-q:
			if !connected {
				if err := g.Connect(); err != nil {
					n.Failed.Add(1)
					n.log("SNMP notification not sent", t, err)
					continue
				}
				connected = true
			}
			if sp != nil {
				// Our engine's boots and time, as of now, in each trap.
				sp.AuthoritativeEngineBoots, sp.AuthoritativeEngineTime = n.Agent.engine.Boots, n.Agent.engineTime()
			}
			// Informs wait for the manager's answer (Timeout, Retries);
			// traps go once.
			if _, err := g.SendTrap(gosnmp.SnmpTrap{Variables: pdus, IsInform: t.Inform}); err != nil {
				n.Failed.Add(1)
				n.log("SNMP notification not acknowledged", t, err)
			}
		}
	}
}

// usm is u's security parameters for a trap from this engine.
func (n *Notifier) usm(u *User) *gosnmp.UsmSecurityParameters {
	a := n.Agent
	sp := &gosnmp.UsmSecurityParameters{UserName: u.Name, AuthoritativeEngineID: string(a.engine.ID),
		AuthoritativeEngineBoots: a.engine.Boots, AuthoritativeEngineTime: a.engineTime(),
		AuthenticationProtocol: u.Auth, PrivacyProtocol: gosnmp.NoPriv}
	if k := a.users[u.Name]; k != nil {
		sp.SecretKey, sp.PrivacyKey = k.params.SecretKey, k.params.PrivacyKey
		sp.PrivacyProtocol = k.params.PrivacyProtocol
	}
	return sp
}

func (n *Notifier) log(msg string, t Target, err error) {
	if n.Log != nil {
		n.Log.Warn(msg, "target", t.Addr.String(), "inform", strconv.FormatBool(t.Inform), "err", err)
	}
}
