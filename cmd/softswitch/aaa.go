package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
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
	"github.com/softswitch/softswitch/core/safe"
)

// accountingOutbox is billing's outbox the RADIUS accounting reads.
const accountingOutbox = "radius"

// startAccounting sends the CDR writer's accounting outbox to the
// [aaa] accounting servers until ctx ends (docs/aaa.md); the returned
// function waits, up to 3 s, for the sender to finish once ctx has ended.
func startAccounting(ctx context.Context, cfg config.Config, bill *billing.Billing, nasIP netip.Addr, dia *diameterSet,
	bus *events.Bus, log *slog.Logger) (wait func()) {
	var wg sync.WaitGroup
	a := cfg.AAA
	var t acct.Transport
	closeT := func() {}
	if a.AccountingDiameter() {
		t = &acct.Diameter{Client: &diameter.Client{Peers: dia.list(a.Accounting)}, Interval: a.InterimInterval.Duration,
			ID: diameterID(cfg)}
	} else {
		cl := radiusClient(cfg, a.Accounting, true, bus, log)
		t, closeT = &acct.RADIUS{Client: cl, NAS: radius.NAS{Identifier: bill.Node(), IP: nasIP}}, cl.Close
	}
	s := &acct.Sender{Name: accountingOutbox, Box: bill, Interim: a.InterimInterval.Duration, Log: log, T: t,
		OnFailing: func(failing bool, err error) {
			if failing {
				bus.Publish(&events.Event{Kind: events.AAADelivery, State: "failing", Cause: err.Error()})
			} else {
				bus.Publish(&events.Event{Kind: events.AAADelivery, State: "ok"})
			}
		}}
	wg.Add(1)
	safe.Go("accounting", func() {
		defer wg.Done()
		defer closeT()
		s.Run(ctx)
	}, wg.Done)
	log.Info("accounting", "servers", a.Accounting, "diameter", a.AccountingDiameter(), "interim", a.InterimInterval.Duration.String())
	return func() {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			log.Warn("accounting did not finish within 3 s of the stop")
		}
	}
}

// diameterSet is the [[aaa.diameter]] peers the configuration uses, each
// kept connected until stop (then DPR), advertising the applications it
// serves: 3 (base accounting) for accounting, 4 (credit control) for
// call authorisation.
type diameterSet struct {
	peers  map[string]*diameter.Peer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startDiameter(cfg config.Config, bus *events.Bus, log *slog.Logger) *diameterSet {
	ctx, cancel := context.WithCancel(context.Background())
	d := &diameterSet{peers: map[string]*diameter.Peer{}, cancel: cancel}
	apps := map[string][2][]uint32{}
	a := cfg.AAA
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
	for name, app := range apps {
		dp, _ := a.DiameterPeer(name) // validated
		p := diameter.NewPeer(diameter.Config{Addr: dp.Address, OriginHost: a.OriginHost, OriginRealm: a.OriginRealm,
			AuthApps: app[0], AcctApps: app[1], Watchdog: dp.Watchdog.Duration, Log: log,
			OnState: func(addr string, open bool) {
				state := map[bool]string{true: "up", false: "down"}[open]
				bus.Publish(&events.Event{Kind: events.AAAServer, Source: addr, State: state, Cause: "diameter"})
			}})
		d.wg.Add(1)
		safe.Go("Diameter peer", func() { defer d.wg.Done(); p.Run(ctx) }, d.wg.Done)
		d.peers[name] = p
	}
	return d
}

// list is the peers named, in order.
func (d *diameterSet) list(names []string) []*diameter.Peer {
	var out []*diameter.Peer
	for _, n := range names {
		out = append(out, d.peers[n])
	}
	return out
}

// stop says goodbye to every peer (DPR) and waits up to 3 s.
func (d *diameterSet) stop() {
	d.cancel()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
}

// diameterID is the switch's Diameter identity.
func diameterID(cfg config.Config) diameter.Identity {
	a := cfg.AAA
	realm := a.DestinationRealm
	if realm == "" {
		realm = a.OriginRealm
	}
	return diameter.Identity{OriginHost: a.OriginHost, OriginRealm: a.OriginRealm, DestinationRealm: realm}
}

// radiusAuth sets the digest checks [aaa] gives RADIUS servers and
// returns the call authoriser (nil: none) and a function that closes
// their clients.
func radiusAuth(cfg config.Config, authn *auth.Authenticator, nas string, dia *diameterSet, bus *events.Bus,
	log *slog.Logger) (authz call.Authorizer, closeAll func()) {
	var closers []func()
	if names := cfg.AAA.RegistrationAuth; len(names) > 0 {
		cl := radiusClient(cfg, names, false, bus, log)
		closers = append(closers, cl.Close)
		authn.RemoteRegister = &radius.DigestChecker{Client: cl, NAS: radius.NAS{Identifier: nas}}
		log.Info("REGISTER digests checked by RADIUS", "servers", names)
	}
	if names := cfg.AAA.CallAuthorization; len(names) > 0 && dia.peers[names[0]] != nil {
		tx := cfg.AAA.CreditControlTx.Duration
		if tx == 0 {
			tx = config.DefaultCreditControlTx
		}
		authz = &diameter.CreditControl{Client: &diameter.Client{Peers: dia.list(names), Timeout: tx}, ID: diameterID(cfg),
			FailOpen: cfg.AAA.AuthorizationFailure == "open", Log: log}
		log.Info("subscribers' calls authorised by Diameter credit control", "peers", names,
			"when_unanswered", cfg.AAA.AuthorizationFailure, "tx", tx.String())
	} else if len(names) > 0 {
		cl := radiusClient(cfg, names, false, bus, log)
		closers = append(closers, cl.Close)
		authz = &radius.CallAuthorizer{Client: cl, NAS: radius.NAS{Identifier: nas}}
		log.Info("subscribers' calls authorised by RADIUS", "servers", names, "when_unanswered", cfg.AAA.AuthorizationFailure)
	}
	if names := cfg.AAA.CallAuth; len(names) > 0 {
		cl := radiusClient(cfg, names, false, bus, log)
		closers = append(closers, cl.Close)
		authn.RemoteCall = &radius.DigestChecker{Client: cl, NAS: radius.NAS{Identifier: nas}}
		log.Info("INVITE digests checked by RADIUS", "servers", names)
	}
	return authz, func() {
		for _, c := range closers {
			c()
		}
	}
}

// radiusClient is a client of the [[aaa.radius]] servers named, on their
// accounting or authentication ports, reporting on the bus and the log.
func radiusClient(cfg config.Config, names []string, accounting bool, bus *events.Bus, log *slog.Logger) *radius.Client {
	var servers []radius.Server
	var first config.RadiusServer
	for i, name := range names {
		r, _ := cfg.AAA.RadiusServer(name) // validated
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

// drainAccounting gives the accounting of the calls a stop has just ended
// up to max to be delivered; what is not stays in the spool and goes at
// the next start.
func drainAccounting(bill *billing.Billing, max time.Duration, log *slog.Logger) {
	deadline := time.Now().Add(max)
	for !bill.OutboxSettled(accountingOutbox) {
		if time.Now().After(deadline) {
			log.Warn("accounting not all delivered at the stop: the rest goes at the next start")
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
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
