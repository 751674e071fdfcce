package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/softswitch/softswitch/appliance/ha"
	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/core/q850"
	"github.com/softswitch/softswitch/core/running"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/interwork/gateway"
	"github.com/softswitch/softswitch/interwork/trunkreg"
	"github.com/softswitch/softswitch/oam/alarm"
	"github.com/softswitch/softswitch/oam/snmp"
	"github.com/softswitch/softswitch/oam/stats"
)

// Objects of SOFTSWITCH-MIB (oam/snmp/mib/SOFTSWITCH-MIB.txt).
var (
	ssCalls   = snmp.Enterprise.Append(1, 1, 1)
	ssSystem  = snmp.Enterprise.Append(1, 1, 3)
	ssGateway = snmp.Enterprise.Append(1, 1, 4, 1)
	ssAlarm   = snmp.Enterprise.Append(1, 1, 7, 1)
	ssBilling = snmp.Enterprise.Append(1, 1, 2)
	ssTrunk   = snmp.Enterprise.Append(1, 1, 5, 1)
	ssAAA     = snmp.Enterprise.Append(1, 1, 6, 1)
	ssNotify  = snmp.Enterprise.Append(1, 0)
	ssCause   = snmp.Enterprise.Append(1, 1, 8, 1)
)

// notification is each alarm type's raise under ssNotifications; its
// clear is the next one.
var notification = map[alarm.Type]uint32{
	alarm.GatewayDown: 1, alarm.TrunkRegLost: 3, alarm.AAAServerDown: 5, alarm.CDRDelivery: 7,
	alarm.DiskThreshold: 9, alarm.Overload: 11, alarm.AuthBan: 13, alarm.CDRSpoolFailing: 16,
}

// startSNMP serves SNMP as the running configuration's snmp section
// says (gate): the MIB, the notifications of alarms and role changes, and
// the agent, built again whole when a commit changes the section.
func startSNMP(ctx context.Context, cfg config.Config, src *node, gate *snmpGate, log *slog.Logger) error {
	// The pair role is no alarm: its changes are notified as they come.
	src.bus.Subscribe(func(e *events.Event) {
		if n := gate.notifier.Load(); n != nil && e.Kind == events.HARole {
			n.Notify(ssNotify.Append(15), []snmp.Var{{OID: ssSystem.Append(1, 0), Type: gosnmp.Integer, Value: haRole(e.State)}})
		}
	})
	logged := src.alarms.Notify
	src.alarms.Notify = func(no alarm.Notice) {
		logged(no)
		n := gate.notifier.Load()
		base, ok := notification[no.Type]
		if n == nil || !ok {
			return
		}
		if no.Clear {
			base++
		}
		row := snmp.OID{no.ID}
		n.Notify(ssNotify.Append(base), []snmp.Var{
			{OID: ssAlarm.Append(3).Append(row...), Type: gosnmp.Integer, Value: int(no.Severity)},
			{OID: ssAlarm.Append(4).Append(row...), Type: gosnmp.OctetString, Value: []byte(no.Resource)},
			{OID: ssAlarm.Append(5).Append(row...), Type: gosnmp.OctetString, Value: []byte(no.Text)},
		})
	}
	return gate.Attach(func(s provision.SNMP) (func(), *snmp.Notifier, error) {
		a := &snmp.Agent{MIB: &snmp.MIB{}, EngineFile: filepath.Join(cfg.Data.Dir, "snmp-engine"), Log: log}
		for _, c := range s.Communities {
			var sources []netip.Prefix
			for _, p := range c.Sources {
				pf, _ := config.ParsePrefix(p) // checked
				sources = append(sources, pf)
			}
			a.Communities = append(a.Communities, snmp.Community{Name: c.Name, Write: c.Access == "write", Sources: sources})
		}
		for _, u := range s.Users {
			auth := map[string]gosnmp.SnmpV3AuthProtocol{"SHA-224": gosnmp.SHA224, "SHA-256": gosnmp.SHA256,
				"SHA-384": gosnmp.SHA384, "SHA-512": gosnmp.SHA512, "": gosnmp.SHA256}[u.Auth]
			priv := map[string]gosnmp.SnmpV3PrivProtocol{"AES": gosnmp.AES, "AES-192": gosnmp.AES192, "AES-256": gosnmp.AES256,
				"": gosnmp.AES, "none": gosnmp.NoPriv}[u.Priv]
			a.Users = append(a.Users, snmp.User{Name: u.Name, Auth: auth, AuthPass: u.AuthPassword, Priv: priv,
				PrivPass: u.PrivPassword, Write: u.Access == "write"})
		}
		a.MIB.RegisterSystem(snmp.System{Descr: "softswitch " + buildVersion(), Contact: s.Contact, Name: src.name,
			Location: s.Location, Start: src.start})
		registerCalls(a.MIB, src)
		a.SetDone = registerGateways(a.MIB, src.gateways, src.running)
		registerAlarms(a.MIB, src.alarms, src.start)
		registerNode(a.MIB, src)
		registerTrunks(a.MIB, src.trunks)
		registerAAA(a.MIB, src.aaa, src.counters)
		registerSIPMIB(a.MIB, src.sip, src.name)
		if err := a.Listen(s.Listen); err != nil {
			return nil, nil, fmt.Errorf("snmp: %w", err)
		}
		actx, cancel := context.WithCancel(ctx)
		n := &snmp.Notifier{Start: src.start, Agent: a, Log: log}
		for _, t := range s.Targets {
			ap, _ := t.AddrPort() // checked
			tg := snmp.Target{Addr: ap, Community: t.Community, Inform: t.Inform}
			for i := range a.Users {
				if t.User != "" && a.Users[i].Name == t.User {
					tg.User = &a.Users[i]
				}
			}
			n.Targets = append(n.Targets, tg)
		}
		n.Run(actx)
		safe.Go("SNMP agent", func() { a.Serve(actx) })
		log.Info("SNMP agent", "listen", a.Addr().String(), "communities", len(a.Communities), "users", len(a.Users),
			"targets", len(n.Targets), "engine", fmt.Sprintf("%x", a.EngineID()))
		if len(a.Communities) == 0 && len(a.Users) == 0 {
			log.Warn("SNMP agent: no community and no user: it answers nobody")
		}
		// The socket is closed before stop returns: the next agent may
		// bind the same address at once.
		return func() { cancel(); a.Close() }, n, nil
	})
}

// snmpGate runs the agent as the running configuration's snmp section
// says: a commit that changes the section stops the agent and starts one
// with the new settings (managers see the engine's boots counted up, as
// after a restart, and resynchronise); one that leaves it alone leaves it
// running.
type snmpGate struct {
	log      *slog.Logger
	mu       sync.Mutex // Set and Attach; no call waits on it
	want     provision.SNMP
	applied  *provision.SNMP
	start    func(provision.SNMP) (func(), *snmp.Notifier, error)
	stop     func()
	notifier atomic.Pointer[snmp.Notifier] // nil: no agent
}

// Set takes the section from a commit.
func (g *snmpGate) Set(s provision.SNMP) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.want = s
	if err := g.applyLocked(); err != nil {
		g.log.Error("SNMP agent not started", "err", err)
	}
}

// Attach gives the gate the way to start an agent and applies the
// section (at start: an error stops the start).
func (g *snmpGate) Attach(start func(provision.SNMP) (func(), *snmp.Notifier, error)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.start = start
	return g.applyLocked()
}

func (g *snmpGate) applyLocked() error {
	if g.start == nil || g.applied != nil && reflect.DeepEqual(*g.applied, g.want) {
		return nil
	}
	if g.stop != nil {
		g.notifier.Store(nil)
		g.stop()
		g.stop = nil
		g.log.Info("SNMP agent stopped for new settings")
	}
	w := g.want
	g.applied = &w
	if w.Listen == "" {
		return nil
	}
	stop, n, err := g.start(w)
	if err != nil {
		return err
	}
	g.stop = stop
	g.notifier.Store(n)
	return nil
}

// gauge clamps a count to Gauge32: never below 0, never wrapping.
func gauge(n int64) uint { return uint(min(max(n, 0), math.MaxUint32)) }

func counter64(n int64) uint64 { return uint64(max(n, 0)) }

func registerCalls(m *snmp.MIB, src *node) {
	c := src.counters
	m.Scalar(ssCalls.Append(1), gosnmp.Gauge32, func() any { return gauge(c.Active.Load()) })
	m.Scalar(ssCalls.Append(2), gosnmp.Gauge32, func() any { return gauge(c.Peak.Load()) })
	m.Scalar(ssCalls.Append(3), gosnmp.Counter64, func() any { return counter64(c.Attempts.Load()) })
	m.Scalar(ssCalls.Append(4), gosnmp.Counter64, func() any { return counter64(c.Answers.Load()) })
	m.Scalar(ssCalls.Append(5), gosnmp.Counter64, func() any { return counter64(c.Failed.Load()) })
	m.Scalar(ssCalls.Append(6), gosnmp.Gauge32, func() any { return uint(math.Round(c.Rolling(time.Now()).ASR15 * 100)) })
	m.Scalar(ssCalls.Append(12), gosnmp.Gauge32, func() any { return uint(math.Round(c.Rolling(time.Now()).ASR60 * 100)) })
	// ssCauseTable: a row per Q.850 cause some call ended with.
	m.Table(ssCause, []snmp.Column{
		{Sub: 2, Type: gosnmp.OctetString, Get: func(r snmp.Row) any { return []byte(q850.Name(r.Data.(int))) }},
		{Sub: 3, Type: gosnmp.Counter64, Get: func(r snmp.Row) any { return counter64(c.Causes[r.Data.(int)].Load()) }},
	}, func() []snmp.Row {
		var rows []snmp.Row
		for cause := 1; cause < len(c.Causes); cause++ {
			if c.Causes[cause].Load() > 0 {
				rows = append(rows, snmp.Row{Index: snmp.OID{uint32(cause)}, Data: cause})
			}
		}
		return rows
	})
	m.Scalar(ssCalls.Append(7), gosnmp.Gauge32, func() any { return gauge(c.Rolling(time.Now()).BusyHourAttempts) })
	m.Scalar(ssCalls.Append(8), gosnmp.Gauge32, func() any { return uint(math.Round(c.Rolling(time.Now()).CallsPerSecond)) })
	m.Scalar(ssCalls.Append(9), gosnmp.Gauge32, func() any {
		mean, _, _ := src.delay.LastMinute(time.Now())
		return gauge(int64(mean / time.Microsecond))
	})
	m.Scalar(ssCalls.Append(10), gosnmp.Gauge32, func() any {
		_, p99, _ := src.delay.LastMinute(time.Now())
		return gauge(int64(p99 / time.Microsecond))
	})
	m.Scalar(ssCalls.Append(11), gosnmp.Gauge32, func() any { return gauge(c.Registrations.Load()) })
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}
	m.WritableScalar(ssSystem.Append(2), gosnmp.Integer, func() any {
		for i, l := range levels {
			if src.level.Level() <= l {
				return i + 1
			}
		}
		return 4
	}, func(v gosnmp.SnmpPDU, commit bool) error {
		n, _ := v.Value.(int)
		if n < 1 || n > 4 {
			return snmp.WrongValue("debug(1), info(2), warn(3) or error(4)")
		}
		if commit {
			src.level.Set(levels[n-1])
			slog.Default().Info("log level set over SNMP", "level", levels[n-1].String())
		}
		return nil
	})
}

// registerGateways adds ssGatewayTable: one row per configured gateway,
// indexed by its place in the configuration.
func registerGateways(m *snmp.MIB, gateways func() []*gateway.Gateway, conf *running.Running) func(ok bool) error {
	// A SET's locks are committed together, once every variable passed.
	var mu sync.Mutex
	pending := map[string]bool{}
	gw := func(r snmp.Row) *gateway.Gateway { return r.Data.(*gateway.Gateway) }
	m.Table(ssGateway, []snmp.Column{
		{Sub: 2, Type: gosnmp.OctetString, Get: func(r snmp.Row) any { return []byte(gw(r).Name) }},
		{Sub: 3, Type: gosnmp.Integer, Get: func(r snmp.Row) any {
			if gw(r).Down() {
				return 2
			}
			return 1
		}},
		{Sub: 4, Type: gosnmp.Integer, Get: func(r snmp.Row) any {
			if gw(r).State() == gateway.Locked {
				return 2
			}
			return 1
		}, Set: func(r snmp.Row, v gosnmp.SnmpPDU, commit bool) error {
			n, _ := v.Value.(int)
			if n != 1 && n != 2 {
				return snmp.WrongValue("unlocked(1) or locked(2)")
			}
			if commit {
				mu.Lock()
				pending[gw(r).Name] = n == 2
				mu.Unlock()
			}
			return nil
		}},
		{Sub: 5, Type: gosnmp.Gauge32, Get: func(r snmp.Row) any { return gauge(gw(r).Counters().Active) }},
		{Sub: 6, Type: gosnmp.Gauge32, Get: func(r snmp.Row) any { return gauge(int64(gw(r).Spec().MaxChannels)) }},
		{Sub: 7, Type: gosnmp.Counter64, Get: func(r snmp.Row) any { return counter64(gw(r).Counters().Out) }},
		{Sub: 8, Type: gosnmp.Gauge32, Get: func(r snmp.Row) any {
			ans, failed, _ := gw(r).Outcomes()
			if ans+failed == 0 {
				return uint(0)
			}
			return uint(ans * 100 / (ans + failed))
		}},
		{Sub: 9, Type: gosnmp.Gauge32, Get: func(r snmp.Row) any {
			if _, _, st := gw(r).Outcomes(); st != 0 {
				return uint(q850.CauseForStatus(st))
			}
			return uint(0)
		}},
	}, func() []snmp.Row {
		var rows []snmp.Row
		for i, g := range gateways() {
			rows = append(rows, snmp.Row{Index: snmp.OID{uint32(i + 1)}, Data: g})
		}
		return rows
	})
	return func(ok bool) error {
		mu.Lock()
		locks := pending
		pending = map[string]bool{}
		mu.Unlock()
		if !ok || len(locks) == 0 {
			return nil
		}
		return lockGateways(conf, locks, "SNMP")
	}
}

// buildVersion is the module version or VCS revision the binary was built from.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown build)"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return bi.Main.Version
}

// registerAlarms adds ssAlarmTable: the active alarms by their ids.
func registerAlarms(m *snmp.MIB, alarms *alarm.Manager, start time.Time) {
	al := func(r snmp.Row) alarm.Alarm { return r.Data.(alarm.Alarm) }
	m.Table(ssAlarm, []snmp.Column{
		{Sub: 2, Type: gosnmp.ObjectIdentifier, Get: func(r snmp.Row) any { return ssNotify.Append(notification[al(r).Type]).String() }},
		{Sub: 3, Type: gosnmp.Integer, Get: func(r snmp.Row) any { return int(al(r).Severity) }},
		{Sub: 4, Type: gosnmp.OctetString, Get: func(r snmp.Row) any { return []byte(al(r).Resource) }},
		{Sub: 5, Type: gosnmp.OctetString, Get: func(r snmp.Row) any { return []byte(al(r).Text) }},
		{Sub: 6, Type: gosnmp.TimeTicks, Get: func(r snmp.Row) any {
			return uint32(max(0, al(r).Raised.Sub(start)) / (10 * time.Millisecond))
		}},
	}, func() []snmp.Row {
		var rows []snmp.Row
		for _, a := range alarms.Active() {
			rows = append(rows, snmp.Row{Index: snmp.OID{a.ID}, Data: a})
		}
		return rows
	})
}

// registerNode adds the billing delivery objects and the pair role.
func registerNode(m *snmp.MIB, src *node) {
	m.Scalar(ssBilling.Append(1), gosnmp.Gauge32, func() any {
		n, _, _ := src.pushBacklog()
		return gauge(int64(n))
	})
	m.Scalar(ssBilling.Append(2), gosnmp.Integer, func() any {
		_, pushing, _ := src.pushBacklog()
		switch {
		case !pushing:
			return 1 // disabled
		case src.counters.State("cdr-delivery") == "failing":
			return 3
		}
		return 2
	})
	m.Scalar(ssSystem.Append(1), gosnmp.Integer, func() any {
		if src.role == nil {
			return 1 // standalone
		}
		return haRole(src.role())
	})
	replState := func() (replicationState, bool) {
		if src.repl == nil {
			return replicationState{}, false
		}
		return src.repl.state(), true
	}
	m.Scalar(ssSystem.Append(3), gosnmp.Integer, func() any {
		st, ok := replState()
		switch {
		case !ok:
			return 1 // notConfigured
		case st.Standbys > 0:
			return 2 // streaming
		case st.InStep:
			return 3 // inStep
		}
		return 4 // notInStep
	})
	m.Scalar(ssSystem.Append(4), gosnmp.Gauge32, func() any {
		st, _ := replState()
		return gauge(st.Lag.Milliseconds())
	})
	m.Scalar(ssSystem.Append(5), gosnmp.Gauge32, func() any {
		st, _ := replState()
		return gauge(int64(st.Standbys))
	})
}

// haRole is ssHaRole's value of a keepalived role.
func haRole(role string) int {
	switch role {
	case ha.RoleMaster:
		return 2
	case ha.RoleBackup:
		return 3
	}
	return 4 // fault, stopped, or no role yet: not serving
}

// registerTrunks adds ssTrunkRegTable, rows in name order.
func registerTrunks(m *snmp.MIB, trunks func() []trunkreg.Status) {
	st := func(r snmp.Row) trunkreg.Status { return r.Data.(trunkreg.Status) }
	m.Table(ssTrunk, []snmp.Column{
		{Sub: 2, Type: gosnmp.OctetString, Get: func(r snmp.Row) any { return []byte(st(r).Name) }},
		{Sub: 3, Type: gosnmp.Integer, Get: func(r snmp.Row) any {
			switch st(r).State {
			case "registered":
				return 1
			case "failed":
				return 2
			}
			return 3
		}},
	}, func() []snmp.Row {
		list := trunks()
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
		rows := make([]snmp.Row, len(list))
		for i, s := range list {
			rows[i] = snmp.Row{Index: snmp.OID{uint32(i + 1)}, Data: s}
		}
		return rows
	})
}

// aaaServer is a row of ssAaaServerTable.
type aaaServer struct {
	name, protocol string
	addrs          []string // as the server events name them
}

// aaaServers lists the RADIUS servers, then the Diameter peers, in
// configuration order.
func aaaServers(a provision.AAA) []aaaServer {
	var servers []aaaServer
	for _, r := range a.Radius {
		auth, acct := r.Addrs()
		servers = append(servers, aaaServer{name: r.Name, protocol: "radius", addrs: []string{auth.String(), acct.String()}})
	}
	for _, d := range a.Diameter {
		servers = append(servers, aaaServer{name: d.Name, protocol: "diameter", addrs: []string{d.Address}})
	}
	return servers
}

// up tells whether no event said one of the server's addresses is down
// (and none said up since).
func (s aaaServer) up(c *stats.Counters) bool {
	for _, addr := range s.addrs {
		if c.State("aaa "+addr) == "down" {
			return false
		}
	}
	return true
}

// registerAAA adds ssAaaServerTable.
func registerAAA(m *snmp.MIB, aaa func() provision.AAA, c *stats.Counters) {
	sv := func(r snmp.Row) aaaServer { return r.Data.(aaaServer) }
	m.Table(ssAAA, []snmp.Column{
		{Sub: 2, Type: gosnmp.OctetString, Get: func(r snmp.Row) any { return []byte(sv(r).name) }},
		{Sub: 3, Type: gosnmp.Integer, Get: func(r snmp.Row) any {
			if sv(r).protocol == "diameter" {
				return 2
			}
			return 1
		}},
		{Sub: 4, Type: gosnmp.Integer, Get: func(r snmp.Row) any {
			if sv(r).up(c) {
				return 1
			}
			return 2
		}},
	}, func() []snmp.Row {
		servers := aaaServers(aaa()) // read at each request: changed at run time
		rows := make([]snmp.Row, len(servers))
		for i, s := range servers {
			rows[i] = snmp.Row{Index: snmp.OID{uint32(i + 1)}, Data: s}
		}
		return rows
	})
}
