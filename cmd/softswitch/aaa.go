package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/aaa/acct"
	"github.com/softswitch/softswitch/aaa/diameter"
	"github.com/softswitch/softswitch/aaa/radius"
	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/call"
	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/core/safe"
)

// accountingOutbox is billing's outbox the accounting reads.
const accountingOutbox = "radius"

// retireGrace is how long a replaced RADIUS client stays open for the
// requests already sent through it (longer than an authorisation's wait,
// which bounds RADIUS's tries too).
const retireGrace = call.AuthorizeWait + 5*time.Second

// aaaGate runs the AAA servers of the running configuration (docs/aaa.md)
// and changes them at run time: a commit that changes [aaa] builds a new
// plant (clients, peers, the accounting sender) and swaps it in for the
// next request; the old one is retired once what it carries has ended.
// Nothing is lost: accounting records wait in billing's outbox (durable
// with the CDR), so a sender stopped mid-way is resumed by the next.
type aaaGate struct {
	log        *slog.Logger
	bus        *events.Bus
	authn      *auth.Authenticator
	algorithms []string // [auth] algorithms: offered unless RADIUS checks digests
	nas        string
	bill       *billing.Billing

	mu       sync.Mutex
	want     atomic.Pointer[provision.AAA] // the last Set (read without g.mu by show and SNMP)
	have     *aaaPlant                     // nil until Attach
	calls    *call.Manager
	ctx      context.Context // the accounting's (billing's) context
	nasIP    netip.Addr
	pool     peerPool
	retiring sync.WaitGroup
	active   bool // accounting is sent (the active node of a pair, or alone)
}

// SetActive starts accounting (the node became the active one of its
// pair, or is alone) or stops it: a standby sends none. Records wait in
// the outbox meanwhile.
func (g *aaaGate) SetActive(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active = on
	if g.have == nil {
		return
	}
	if on && g.have.stop == nil {
		g.startAccounting(g.have)
	} else if !on {
		g.have.stopAccounting(g.log)
	}
}

// aaaPlant is one configuration's running AAA clients.
type aaaPlant struct {
	cfg     provision.AAA
	peers   []*pooledPeer
	closers []func() // RADIUS clients
	cc      *diameter.CreditControl
	authz   call.Authorizer
	// Digest checkers of REGISTER and INVITE (nil: the local table).
	register, invite auth.Remote
	acct             acct.Transport     // nil: no accounting
	retired          atomic.Bool        // replaced: its clients no longer report
	stop             context.CancelFunc // the accounting sender's
	done             chan struct{}      // closed when the sender has returned
}

// Set takes a running configuration's [aaa] (running.Config's Apply):
// recorded before Attach, applied after.
func (g *aaaGate) Set(a provision.AAA) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.want.Store(&a)
	if g.calls != nil {
		g.applyLocked()
	}
}

// Attach starts the AAA clients once call control exists; ctx is
// billing's (the accounting sender stops with it).
func (g *aaaGate) Attach(ctx context.Context, calls *call.Manager, nasIP netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls, g.ctx, g.nasIP = calls, ctx, nasIP
	g.applyLocked()
}

// Current is the [aaa] in force.
func (g *aaaGate) Current() provision.AAA {
	if a := g.want.Load(); a != nil {
		return *a
	}
	return provision.DefaultAAA()
}

// applyLocked builds the plant of the [aaa] last Set when it differs
// from the one running, swaps it in, and retires the old one. g.mu is
// held; nothing here waits on the network (peers connect on their own
// goroutines).
func (g *aaaGate) applyLocked() {
	want := g.want.Load()
	if want == nil || (g.have != nil && reflect.DeepEqual(g.have.cfg, *want)) {
		return
	}
	old := g.have
	p := g.build(*want)
	// Swapped in for the next request: digests, authorisation.
	algs := g.algorithms
	if p.cfg.RemoteAuth() {
		algs = []string{"MD5"} // what a RADIUS server's digest module checks (provision.AAA.Check)
	}
	g.authn.Digest.SetAlgorithms(algs)
	g.authn.SetRemote(p.register, p.invite)
	g.calls.SetAuthz(p.authz, p.cfg.FailOpen())
	if old != nil {
		old.stopAccounting(g.log)
	}
	if g.bill != nil {
		g.bill.SetOutboxActive(accountingOutbox, p.acct != nil)
	}
	g.startAccounting(p)
	g.have = p
	if old != nil {
		old.retired.Store(true)
		g.announceRemoved(old.cfg, p.cfg)
		g.retire(old)
		g.log.Info("AAA servers changed at run time", "radius", len(p.cfg.Radius), "diameter", len(p.cfg.Diameter))
	}
}

// build makes the clients of a: Diameter peers from the pool (a peer
// whose settings are unchanged keeps its connection), RADIUS clients,
// the digest checkers and the call authoriser.
func (g *aaaGate) build(a provision.AAA) *aaaPlant {
	p := &aaaPlant{cfg: a}
	apps := map[string][2][]uint32{}
	if a.AccountingDiameter() {
		for _, n := range a.Accounting {
			x := apps[n]
			x[1] = []uint32{3}
			apps[n] = x
		}
	}
	for _, n := range a.CallAuthorization {
		if _, ok := a.DiameterPeer(n); ok {
			x := apps[n]
			x[0] = []uint32{4}
			apps[n] = x
		}
	}
	peers := map[string]*diameter.Peer{}
	for _, dp := range a.Diameter {
		app, ok := apps[dp.Name]
		if !ok {
			continue // named in no list: not connected
		}
		pp := g.pool.acquire(diameter.Config{Addr: dp.Address, OriginHost: a.OriginHost, OriginRealm: a.OriginRealm,
			AuthApps: app[0], AcctApps: app[1], Watchdog: dp.Watchdog.Duration, Log: g.log,
			OnState: func(addr string, open bool) {
				state := map[bool]string{true: "up", false: "down"}[open]
				g.bus.Publish(&events.Event{Kind: events.AAAServer, Source: addr, State: state, Cause: "diameter"})
			}})
		p.peers = append(p.peers, pp)
		peers[dp.Name] = pp.peer
	}
	list := func(names []string) []*diameter.Peer {
		var out []*diameter.Peer
		for _, n := range names {
			out = append(out, peers[n])
		}
		return out
	}
	if names := a.RegistrationAuth; len(names) > 0 {
		cl := radiusClient(a, names, false, g.bus, g.log, &p.retired)
		p.closers = append(p.closers, cl.Close)
		p.register = &radius.DigestChecker{Client: cl, NAS: radius.NAS{Identifier: g.nas}}
		g.log.Info("REGISTER digests checked by RADIUS", "servers", names)
	}
	if names := a.CallAuth; len(names) > 0 {
		cl := radiusClient(a, names, false, g.bus, g.log, &p.retired)
		p.closers = append(p.closers, cl.Close)
		p.invite = &radius.DigestChecker{Client: cl, NAS: radius.NAS{Identifier: g.nas}}
		g.log.Info("INVITE digests checked by RADIUS", "servers", names)
	}
	if names := a.CallAuthorization; len(names) > 0 && peers[names[0]] != nil {
		tx := a.CreditControlTx.Duration
		if tx == 0 {
			tx = provision.DefaultCreditControlTx
		}
		p.cc = &diameter.CreditControl{Client: &diameter.Client{Peers: list(names), Timeout: tx}, ID: diameterID(a),
			FailOpen: a.FailOpen(), Log: g.log}
		p.authz = p.cc
		g.log.Info("subscribers' calls authorised by Diameter credit control", "peers", names,
			"when_unanswered", a.AuthorizationFailure, "tx", tx.String())
	} else if len(names) > 0 {
		cl := radiusClient(a, names, false, g.bus, g.log, &p.retired)
		p.closers = append(p.closers, cl.Close)
		p.authz = &radius.CallAuthorizer{Client: cl, NAS: radius.NAS{Identifier: g.nas}}
		g.log.Info("subscribers' calls authorised by RADIUS", "servers", names, "when_unanswered", a.AuthorizationFailure)
	}
	if len(a.Accounting) > 0 && g.bill != nil {
		if a.AccountingDiameter() {
			p.acct = &acct.Diameter{Client: &diameter.Client{Peers: list(a.Accounting)}, Interval: a.InterimInterval.Duration,
				ID: diameterID(a)}
		} else {
			cl := radiusClient(a, a.Accounting, true, g.bus, g.log, &p.retired)
			p.closers = append(p.closers, cl.Close)
			p.acct = &acct.RADIUS{Client: cl, NAS: radius.NAS{Identifier: g.nas, IP: g.nasIP}}
		}
	}
	return p
}

// startAccounting sends the CDR writer's accounting outbox to p's
// accounting servers until p is replaced or billing stops.
func (g *aaaGate) startAccounting(p *aaaPlant) {
	if p.acct == nil || !g.active {
		return
	}
	ctx, stop := context.WithCancel(g.ctx)
	p.stop, p.done = stop, make(chan struct{})
	s := &acct.Sender{Name: accountingOutbox, Box: g.bill, Interim: p.cfg.InterimInterval.Duration, Log: g.log, T: p.acct,
		OnFailing: func(failing bool, err error) {
			if failing {
				g.bus.Publish(&events.Event{Kind: events.AAADelivery, State: "failing", Cause: err.Error()})
			} else {
				g.bus.Publish(&events.Event{Kind: events.AAADelivery, State: "ok"})
			}
		}}
	done := p.done
	safe.Go("accounting", func() {
		defer close(done)
		s.Run(ctx)
	}, func() { close(done) })
	g.log.Info("accounting", "servers", p.cfg.Accounting, "diameter", p.cfg.AccountingDiameter(),
		"interim", p.cfg.InterimInterval.Duration.String())
}

// stopAccounting stops p's sender and waits up to 3 s for it: what it
// had not delivered stays in the outbox for the next sender.
func (p *aaaPlant) stopAccounting(log *slog.Logger) {
	if p.stop == nil {
		return
	}
	p.stop()
	p.stop = nil
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		log.Warn("accounting did not finish within 3 s of its stop")
	}
}

// announceRemoved says that servers old had and a has not are gone, so
// that their alarms clear and their state is not inherited.
func (g *aaaGate) announceRemoved(old, a provision.AAA) {
	addrs := func(x provision.AAA) map[string]string {
		m := map[string]string{}
		for _, r := range x.Radius {
			au, ac := r.Addrs()
			m[au.String()], m[ac.String()] = "radius", "radius"
		}
		for _, d := range x.Diameter {
			m[d.Address] = "diameter"
		}
		return m
	}
	now := addrs(a)
	for addr, kind := range addrs(old) {
		if _, ok := now[addr]; !ok {
			g.bus.Publish(&events.Event{Kind: events.AAAServer, Source: addr, State: "removed", Cause: kind})
		}
	}
}

// retire closes a replaced plant once what runs through it has ended:
// its RADIUS clients after retireGrace (exchanges under way finish),
// its Diameter peers once the calls its credit control authorised have
// ended (a session keeps the peers that granted it).
func (g *aaaGate) retire(p *aaaPlant) {
	g.retiring.Add(1)
	safe.Go("AAA retire", func() {
		defer g.retiring.Done()
		t := time.NewTimer(retireGrace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-g.ctx.Done():
		}
		for _, c := range p.closers {
			c()
		}
		for p.cc != nil && !p.cc.Wait(time.Second) {
			if g.ctx.Err() != nil { // the switch stops: 3 s more, as Stop gives
				p.cc.Wait(3 * time.Second)
				break
			}
		}
		g.mu.Lock()
		g.releasePeers(p)
		g.mu.Unlock()
	}, g.retiring.Done)
}

// releasePeers gives p's Diameter peers back to the pool (the last user
// of one says goodbye). g.mu is held.
func (g *aaaGate) releasePeers(p *aaaPlant) {
	for _, pp := range p.peers {
		g.pool.release(pp)
	}
}

// Drain gives the accounting of the calls a stop has just ended up to max
// to be delivered; what is not stays in the spool and goes at the next
// start.
func (g *aaaGate) Drain(max time.Duration) {
	g.mu.Lock()
	accounting := g.have != nil && g.have.stop != nil
	g.mu.Unlock()
	if !accounting {
		return
	}
	deadline := time.Now().Add(max)
	for !g.bill.OutboxSettled(accountingOutbox) {
		if time.Now().After(deadline) {
			g.log.Warn("accounting not all delivered at the stop: the rest goes at the next start")
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the AAA at the switch's stop (after billing's context
// ended): the sender returns, credit-control sessions are given 3 s to be
// ended, then every Diameter peer is told goodbye (DPR), waited up to 3 s.
func (g *aaaGate) Stop() {
	g.mu.Lock()
	p := g.have
	if p != nil {
		p.stopAccounting(g.log)
	}
	g.mu.Unlock()
	if p == nil {
		return
	}
	if p.cc != nil && !p.cc.Wait(3*time.Second) {
		g.log.Warn("credit control: not every session's end was acknowledged within 3 s of the stop")
	}
	waitFor(&g.retiring, 3*time.Second)
	for _, c := range p.closers {
		c()
	}
	g.mu.Lock()
	g.releasePeers(p)
	g.have = nil
	g.mu.Unlock()
	waitFor(&g.pool.wg, 3*time.Second)
}

// waitFor waits for wg up to max.
func waitFor(wg *sync.WaitGroup, max time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(max):
		return false
	}
}

// peerPool keeps one connection per Diameter peer setting, shared by the
// plants that use it: a change elsewhere in [aaa] does not reconnect it.
// Its methods are called with aaaGate.mu held.
type peerPool struct {
	peers map[string]*pooledPeer
	wg    sync.WaitGroup
}

type pooledPeer struct {
	key  string
	peer *diameter.Peer
	refs int
	stop context.CancelFunc
	// stopped: released by its last user, so its goodbye is no "down".
	stopped atomic.Bool
}

func (pp *peerPool) acquire(c diameter.Config) *pooledPeer {
	key := fmt.Sprint(c.Addr, c.OriginHost, c.OriginRealm, c.AuthApps, c.AcctApps, c.Watchdog)
	if x := pp.peers[key]; x != nil {
		x.refs++
		return x
	}
	if pp.peers == nil {
		pp.peers = map[string]*pooledPeer{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &pooledPeer{key: key, refs: 1, stop: cancel}
	if report := c.OnState; report != nil {
		c.OnState = func(addr string, open bool) {
			if !x.stopped.Load() {
				report(addr, open)
			}
		}
	}
	x.peer = diameter.NewPeer(c)
	pp.peers[key] = x
	pp.wg.Add(1)
	safe.Go("Diameter peer", func() { defer pp.wg.Done(); x.peer.Run(ctx) }, pp.wg.Done)
	return x
}

// release drops one use; the last says goodbye (DPR, on the peer's own
// goroutine).
func (pp *peerPool) release(x *pooledPeer) {
	if x.refs--; x.refs == 0 {
		delete(pp.peers, x.key)
		x.stopped.Store(true)
		x.stop()
	}
}

// diameterID is the switch's Diameter identity.
func diameterID(a provision.AAA) diameter.Identity {
	realm := a.DestinationRealm
	if realm == "" {
		realm = a.OriginRealm
	}
	return diameter.Identity{OriginHost: a.OriginHost, OriginRealm: a.OriginRealm, DestinationRealm: realm}
}

// radiusClient is a client of the [[aaa.radius]] servers named, on their
// accounting or authentication ports, reporting on the bus and the log.
//
// Once retired is true (the client is replaced and finishing what it
// carries), its servers' states are no longer reported: a removed server
// raises no alarm.
func radiusClient(a provision.AAA, names []string, accounting bool, bus *events.Bus, log *slog.Logger, retired *atomic.Bool) *radius.Client {
	var servers []radius.Server
	var first provision.RadiusServer
	for i, name := range names {
		r, _ := a.RadiusServer(name) // checked
		if i == 0 {
			first = r
		}
		authAddr, acctAddr := r.Addrs()
		if accounting {
			authAddr = acctAddr
		}
		servers = append(servers, radius.Server{Addr: authAddr, Secret: []byte(r.Secret)})
	}
	cl := radius.New(servers)
	// One client, so one timing: that of the first server named.
	cl.Timeout, cl.Tries, cl.DeadTime = first.Timeout.Duration, first.Tries, first.DeadTime.Duration
	cl.OnState = func(addr netip.AddrPort, up bool) {
		if retired.Load() {
			return
		}
		state := "down"
		if up {
			state = "up"
			log.Info("RADIUS server answers again", "server", addr.String())
		} else {
			log.Warn("RADIUS server not answering: passed over for its dead time", "server", addr.String())
		}
		bus.Publish(&events.Event{Kind: events.AAAServer, Source: addr.String(), State: state, Cause: "radius"})
	}
	var lastDropLog atomic.Int64
	cl.OnDrop = func(addr netip.AddrPort, why string) {
		// A flood of forgeries must not flood the log: one line in 10 s,
		// the count is in the statistics.
		if now := time.Now().UnixNano(); now-lastDropLog.Load() > int64(10*time.Second) {
			lastDropLog.Store(now)
			log.Warn("RADIUS answer dropped: it failed verification (forged, or the secret differs)",
				"server", addr.String(), "why", why, "dropped_total", cl.Stats.Dropped.Load())
		}
		bus.Publish(&events.Event{Kind: events.AAADropped, Source: addr.String(), Cause: why})
	}
	return cl
}

// nasName is how the switch names itself to AAA servers: its CDR node
// name, else the host name.
func nasName(cfg config.Config, bill *billing.Billing) string {
	if bill != nil {
		return bill.Node()
	}
	if cfg.Billing.Node != "" {
		return cfg.Billing.Node
	}
	h, _ := os.Hostname()
	return h
}
