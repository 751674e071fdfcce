// Command softswitch is the carrier SIP softswitch daemon.
//
//	softswitch [--config FILE] [--sip-listen HOST:PORT] [--data-dir DIR] [--log-level LEVEL]
//
// With no config file it runs on embedded defaults (SIP on UDP and TCP
// 0.0.0.0:5060, data under ./data). SIGTERM/SIGINT shut down gracefully;
// SIGHUP reads the trunk registrations again and imports the config
// file's provisioning when it changed since its last import (the running
// configuration is the store's: core/running).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/appliance/ha"
	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/admission"
	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/authlimit"
	"github.com/softswitch/softswitch/core/call"
	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/digest"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/gate"
	"github.com/softswitch/softswitch/core/overload"
	"github.com/softswitch/softswitch/core/registrar"
	"github.com/softswitch/softswitch/core/replica"
	"github.com/softswitch/softswitch/core/routing"
	"github.com/softswitch/softswitch/core/running"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/server"
	"github.com/softswitch/softswitch/core/sipcount"
	"github.com/softswitch/softswitch/core/sipparse"
	"github.com/softswitch/softswitch/core/store"
	"github.com/softswitch/softswitch/interwork/gateway"
	"github.com/softswitch/softswitch/interwork/resolve"
	"github.com/softswitch/softswitch/interwork/trunkreg"
	"github.com/softswitch/softswitch/oam/alarm"
	"github.com/softswitch/softswitch/oam/control"
	"github.com/softswitch/softswitch/oam/stats"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "softswitch:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if ok, err := subcommand(args); ok {
		return err
	}
	fs := flag.NewFlagSet("softswitch", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file (TOML); embedded defaults when empty")
	listen := fs.String("sip-listen", "", "SIP listen address HOST:PORT for UDP and TCP (overrides sip.listen)")
	dataDir := fs.String("data-dir", "", "data directory (overrides data.dir)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (overrides log.level)")
	pprofAddr := fs.String("pprof", "", "serve Go profiling on HOST:PORT (off by default; bind it to loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.SIP.Listen = *listen
	}
	if *dataDir != "" {
		cfg.Data.Dir = *dataDir
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("command line: %w", err)
	}
	// Signals are caught before any socket opens: a supervisor that sees
	// the port answer may stop us at once, and an uncaught SIGTERM would
	// skip the clean stop (open CDR file closed, hand-over saved). One
	// that arrives during start-up is served once start-up is done.
	started := time.Now()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	if *pprofAddr != "" {
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("pprof listen: %w", err)
		}
		safe.Go("pprof server", func() { http.Serve(ln, nil) }) // net/http/pprof registers on the default mux
	}

	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level))
	levelVar := new(slog.LevelVar) // SNMP may change it
	levelVar.Set(level)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: levelVar}))
	safe.SetLogger(log)
	tuneRuntime(cfg.Runtime, log)
	// sipgo's own logs: warnings and up, rate limited.
	stackLevel := max(level, slog.LevelWarn)
	if os.Getenv("SOFTSWITCH_STACK_DEBUG") != "" {
		stackLevel = slog.LevelDebug
	}
	stackLog := slog.New(server.RateLimited(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: stackLevel}), 5)).With("component", "sipgo")
	sip.SetDefaultLogger(stackLog)

	db, err := store.Open(cfg.Data.Dir, log)
	if err != nil {
		return err
	}
	defer db.Close()

	bus := events.New()
	// Call records first: the calls a crash cut are recorded before any
	// new call starts.
	bill, err := openBilling(cfg, bus, log)
	if err != nil {
		return err
	}
	counters := &stats.Counters{}
	counters.Attach(bus)
	alarms := alarm.New()
	alarms.Attach(bus)
	bus.Subscribe(func(e *events.Event) { logProtection(log, e) })

	subs := &auth.Subscribers{}
	secret, err := digestSecret(db)
	if err != nil {
		return err
	}
	// The algorithms offered change with the running [aaa] (aaaGate).
	authority := digest.NewAuthorityWith(cfg.SIP.Realm, cfg.Auth.Algorithms, cfg.Auth.NonceLifetime.Duration, secret)
	limiter := authlimit.New(limiterConfig(cfg.Auth))
	takeHandover(db, authority, limiter, log)
	authn := &auth.Authenticator{Digest: authority, Subs: subs, Limiter: limiter, Bus: bus, Log: log}
	// The AAA servers of the running configuration (started by Attach,
	// once call control exists).
	aaaLive := &aaaGate{log: log, bus: bus, authn: authn, algorithms: cfg.Auth.Algorithms, nas: nasName(cfg, bill), bill: bill}
	// The front door (core/gate): per-source admission and overload
	// control, before a datagram is parsed.
	admit := admission.New(admission.Config{Rate: cfg.Admission.Rate, Burst: cfg.Admission.Burst,
		TrustedRate: cfg.Admission.TrustedRate, Block: cfg.Admission.Block.Duration,
		MaxSources: cfg.Admission.MaxSources}, bus)
	authn.OnPeers = func(ps []auth.Peer) {
		prefixes := make([]netip.Prefix, len(ps))
		for i, p := range ps {
			prefixes[i] = p.Prefix
		}
		admit.SetTrusted(prefixes)
	}
	router := &routing.Router{Subs: subs, Log: log}
	dnsServers := cfg.DNS.Servers
	if len(dnsServers) == 0 {
		if dnsServers, err = resolve.FromResolvConf(); err != nil {
			log.Warn("no DNS servers ([dns] servers empty, /etc/resolv.conf unreadable): gateways must be IP addresses", "err", err)
		}
	}
	router.Resolver = &resolve.Resolver{Servers: dnsServers}
	// The running configuration (core/running): the stored one, or the
	// file's provisioning on the first start and after the file changed.
	// In a pair the registrar's bindings and the running configuration go
	// through the replication hub, which streams them to the standby
	// (core/replica).
	var hub *replica.Hub
	var onSave func(*running.State)
	if cfg.HA.Replicates() {
		hub = &replica.Hub{Inner: db, Key: []byte(cfg.HA.ReplicationKey), Node: nasName(cfg, bill), Log: log,
			Counts: func() []byte { return encodeJSON(authority.Snapshot(time.Now())) }}
		onSave = func(st *running.State) { hub.SetState(stateConfig, encodeJSON(st)) }
		hub.SetState(stateDigestSecret, encodeJSON(authority.Secret()))
		authority.OnCount = hub.Count
	}
	telnet := &telnetGate{log: log}
	snmpLive := &snmpGate{log: log}
	pushing := &pushGate{log: log, bill: bill}
	conf, err := running.Open(running.Config{DB: db, Realm: cfg.SIP.Realm, Registrations: cfg.Registrations,
		PasswordCost: cfg.CLI.PasswordCost, TelnetListen: cfg.CLI.TelnetListen, AAA: cfg.AAABootstrap(), Prev: router.Tables, Log: log, OnSave: onSave,
		Apply: func(chk *running.Checked) {
			applyRunning(chk, subs, authn, router, bill, bus, log)
			telnet.Set(chk.Doc.Management.Telnet)
			aaaLive.Set(chk.Doc.AAA)
			snmpLive.Set(chk.Doc.SNMP)
			if bill != nil {
				pushing.Set(chk.Doc.Push)
			}
		}}, cfg.Doc, *cfgPath)
	if err != nil {
		var re *running.Error
		if errors.As(err, &re) { // the file's provisioning, refused
			return config.At(*cfgPath, re.Key, re.Reason)
		}
		return err
	}
	var bindings registrar.BindingStore = db
	if hub != nil {
		bindings = hub
	}
	loc, err := registrar.NewLocation(bindings, bus)
	if err != nil {
		return fmt.Errorf("loading registrations: %w", err)
	}
	var follower *replica.Follower
	var prober *gateway.Prober   // made below; the follower runs after that
	var regs *trunkreg.Registrar // likewise
	if hub != nil {
		// The probed gateways found down, for the standby (it does not
		// probe), at each change.
		gws := func() []*gateway.Gateway { return router.Tables().Set.Gateways() }
		hub.SetState(stateGatewaysDown, gatewaysDown(gws()))
		bus.Subscribe(func(e *events.Event) {
			if e.Kind == events.GatewayState {
				hub.SetState(stateGatewaysDown, gatewaysDown(gws()))
			}
		})
		hub.SetState(stateConfig, encodeJSON(conf.Current()))
		follower = &replica.Follower{Peer: cfg.HA.Peer, Key: []byte(cfg.HA.ReplicationKey), Node: nasName(cfg, bill), Apply: loc, Log: log,
			State: func(name string, b []byte) error {
				return adoptState(name, b, conf, authority, db, hub, prober, gws, regs)
			},
			Count: authority.Count}
	}
	router.Loc = loc

	var calls *call.Manager // set below; the stack starts serving after that
	shed := overload.New(overload.Config{MaxCalls: cfg.Overload.MaxCalls, QueueTarget: cfg.Overload.QueueTarget,
		AgeTarget: cfg.Overload.AgeTarget.Duration, CPUTarget: cfg.Overload.CPUTarget, RetryAfterMin: cfg.Overload.RetryAfterMin,
		RetryAfterMax: cfg.Overload.RetryAfterMax}, func() int { return calls.Active() }, bus)
	parser := sipparse.New()
	delay := &stats.Delay{}
	sipCounts := &sipcount.Counters{} // RFC 4780's statistics
	srv := &server.Server{Log: log, Gate: &gate.Gate{Admission: admit}, Overload: shed, Count: sipCounts,
		Parser: parser, StackLog: stackLog, SlowRegister: func() bool { return authn.Remote(false) },
		Handled: delay.Record}
	bound, err := srv.Listen(cfg.SIP.Listen)
	if err != nil {
		return err
	}
	configured := cfg.SIP.Advertise
	if configured == "" && cfg.HA.Enabled {
		// A pair is reached at its virtual address: Via and Contact name
		// it, so that responses and in-dialog requests follow the address
		// to whichever node holds it.
		configured = netip.MustParsePrefix(cfg.HA.VirtualAddress).Addr().String()
	}
	host, port := advertise(configured, bound)
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsLoopback() && configured != "" {
		// UDP sent to peers not heard from leaves from the address Via
		// names, when this node has it (answers leave from the address
		// asked: core/udpsrc). An address we guessed is no such promise:
		// then the route picks.
		srv.Source = ip
	}
	sip.SetTimers(cfg.SIP.T1.Duration, 4*time.Second, 5*time.Second)
	// sipgo refuses to send a UDP message over 1300 bytes. A response must
	// go back the way its request came (RFC 3261 §18.2.2), and gateways
	// that speak UDP only get large INVITEs over UDP all the same: let IP
	// fragment them, as other carrier switches do.
	sip.UDPMTUSize = 65535
	// Answered INVITE client transactions stay 2 s, not RFC 6026's 32 s:
	// they hold every answered call's messages, and at thousands of calls
	// a second 32 s of them is gigabytes for the collector to mark. Later
	// 2xx retransmissions reach HandleStrayResponse, which re-sends the ACK.
	sip.Timer_M = 2 * time.Second
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.SIP.UserAgent), sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentParser(parser),
		// Every UDP datagram is mended before sipgo parses it (core/inbound);
		// TCP streams are, in core/server's listener.
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(srv.Filter)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerUnhandledResponseHandler(func(r *sip.Response) {
			if calls != nil {
				calls.HandleStrayResponse(r)
			}
		})))
	if err != nil {
		return err
	}
	srv.UA = ua
	if srv.SIP, err = sipgo.NewServer(ua); err != nil {
		return err
	}
	// sipgo's client sends from its own UDP socket (probes, trunk
	// registrations): their responses must come back to it, not to the
	// call path's socket (core/sipudp).
	if srv.Client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(srv.SidePort())); err != nil {
		return err
	}
	srv.Calls = call.NewManager(call.Config{
		Host: host, Port: port, UDPAddr: bound,
		NoAnswerTimeout: cfg.Call.NoAnswerTimeout.Duration, TimerC: cfg.Call.TimerC.Duration,
		SessionExpires: cfg.Call.SessionExpires, MinSE: cfg.Call.MinSE, MaxForwards: cfg.Call.MaxForwards,
	}, srv.Client, srv.UDPEndpoint(), authn, router, bus, log)
	calls = srv.Calls
	if bill != nil {
		if cfg.Billing.OnSpoolFault == "refuse" {
			calls.Hold = bill.Refusing
		}
		// No wait for the spool: a call's events are safe from a crash of
		// the process once published (billing's journal, docs/cdr.md).
	}
	srv.Reg = &registrar.Registrar{Loc: loc, Auth: authn, MinExpires: cfg.Registrar.MinExpires,
		MaxExpires: cfg.Registrar.MaxExpires, DefaultExpires: cfg.Registrar.DefaultExpires, Log: log}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	billCtx, stopBilling := context.WithCancel(context.Background())
	defer stopBilling()
	if bill != nil {
		safe.Go("CDR writer", func() { bill.Run(billCtx) })
		pushing.Attach(billCtx)
		if err := startPull(ctx, cfg, bill, log); err != nil {
			return err
		}
	}
	nasIP, _ := netip.ParseAddr(host)
	aaaLive.Attach(billCtx, calls, nasIP)
	defer aaaLive.Stop()
	ctl := &control.Server{Path: controlPath(cfg.Data.Dir), Log: log}
	controlCommands(ctl, limiter, admit, bus)
	var repl *replication // nil: the node does not replicate
	if hub != nil {
		repl = &replication{hub: hub, follower: follower, running: conf, calls: calls, bill: bill, log: log}
		if p, err := netip.ParsePrefix(cfg.HA.VirtualAddress); err == nil {
			repl.vip = p.Addr()
		}
		follower.InStep = func() {
			repl.settleHeld()
			repl.peerBack(follower.PeerNode())
		}
		hub.Joined = repl.peerBack
		follower.Noted = repl.noted
		follower.Removed = repl.removed
		hub.Ended = repl.ended
		bus.Subscribe(func(e *events.Event) {
			if e.Kind == events.CallAttempt {
				repl.attempted(e.CallID)
			}
		})
		if bill != nil {
			follower.Releases = repl
			// A standby's closed CDR files go to the active node, which
			// pushes them (docs/ha.md, split brain).
			follower.Files = cdrFiles{bill}
			hub.Relay = bill.Relay
			bill.SetPeerWait(cfg.HA.PeerRecordsWait.Duration)
		}
		calls.SetRescue(repl.rescue)
		calls.SetReplicator(repl)
		if bill != nil {
			bill.SetReplicator(repl)
		}
		replicationCommand(ctl, repl)
	}
	calls.SetReleasedThere(releasedThere(bill, repl, time.Now()))
	var switching *switchover
	if cfg.HA.Enabled {
		switching = &switchover{role: func() string { return ha.ReadRole(cfg.Data.Dir) }, repl: repl}
		srv.Yielding = switching.Yielding
		switchoverCommand(ctl, switching)
	}
	users := cliUsers(conf, cfg.CLI.PasswordCost)
	takeOldUsers(db, users, log)
	takeFirstUser(cfg.Data.Dir, conf, log)
	telnetCommand(ctl, conf)
	userCommands(ctl, users)
	if bill != nil {
		cdrCommands(ctl, bill)
	}
	ctlLn, err := ctl.Listen()
	if err != nil {
		return err
	}
	safe.Go("control socket", func() { ctl.Serve(ctx, ctlLn) })
	safe.Loop("housekeeping", ctx.Done(), func() {
		every(ctx, 10*time.Second, func(now time.Time) { authority.Purge(now); loc.Purge(now) })
	})
	safe.Loop("collector pacing", ctx.Done(), func() { adaptGC(ctx, cfg.Runtime, log) })
	// Idle sources are forgotten and ended blocks announced.
	safe.Loop("admission sweep", ctx.Done(), func() { every(ctx, time.Second, admit.Sweep) })
	probe := overload.NewProbe(srv.UDPConn())
	probe.Stack = srv.UDPEndpoint().Load
	safe.Loop("overload control", ctx.Done(), func() { shed.Run(ctx, probe.Sample) })
	prober = &gateway.Prober{Set: func() *gateway.Set { return router.Tables().Set },
		Ping: router.Pinger(srv.Client), Bus: bus, Log: log}
	safe.Loop("gateway prober", ctx.Done(), func() { prober.Run(ctx) })
	alarms.Notify = func(n alarm.Notice) {
		log.Info("alarm", "id", n.ID, "type", string(n.Type), "severity", n.Severity.String(), "resource", n.Resource,
			"text", n.Text, "cleared", n.Clear)
	}
	regs = &trunkreg.Registrar{Client: srv.Client, ContactHost: host, ContactPort: port, Bus: bus, Log: log}
	if hub != nil {
		// The trunk registrations' dialogs, for the standby: a takeover
		// refreshes the same registrations.
		regs.Changed = func(ds map[string]trunkreg.Dialog) { hub.SetState(stateTrunkRegs, encodeJSON(ds)) }
	}
	// The running switch as one thing, for the management interfaces.
	src := &node{alarms: alarms, counters: counters, delay: delay, level: levelVar, name: nasName(cfg, bill), start: started,
		gateways: func() []*gateway.Gateway { return router.Tables().Set.Gateways() }, trunks: regs.Status,
		aaa: aaaLive.Current, limiter: limiter, admit: admit, bus: bus, lookup: loc.Lookup, calls: calls.Snapshot, running: conf, tables: router.Tables, log: log, sip: sipCounts}
	src.bill = bill
	src.repl = repl
	src.switching = switching
	if cfg.HA.Enabled {
		src.role = func() string { return ha.ReadRole(cfg.Data.Dir) }
	}
	if err := startSNMP(ctx, cfg, src, snmpLive, log); err != nil {
		return err
	}
	if err := startMetrics(ctx, cfg, src, log); err != nil {
		return err
	}
	if err := startCLI(ctx, cfg, src, users, telnet, log); err != nil {
		return err
	}
	safe.Go("alarms", func() { alarms.Run(ctx.Done()) }) // after Notify is set for good
	defer regs.Stop()
	// What speaks to the outside runs on the active node only: with [ha]
	// on, the role keepalived's notify hook records decides (none yet:
	// standby); a node alone is active.
	if hub != nil {
		ln, err := net.Listen("tcp", cfg.HA.ReplicationListen)
		if err != nil {
			return fmt.Errorf("ha.replication_listen: %w", err)
		}
		safe.Go("replication hub", func() { hub.Serve(ctx, ln) })
		safe.Loop("replication follower", ctx.Done(), func() { follower.Run(ctx) })
		log.Info("replication", "listen", cfg.HA.ReplicationListen, "peer", cfg.HA.Peer)
	}
	out := outward{prober: prober, aaa: aaaLive, repl: repl,
		regs: &regGate{ctx: ctx, regs: regs, specs: func() []gateway.RegistrationSpec { return router.Tables().Set.Registrations() }}}
	if bill != nil {
		out.push = pushing
	}
	served := make(chan error, 1)
	safe.Go("SIP server", func() { served <- srv.Serve(ctx) }, func() { served <- errors.New("SIP server failed") })
	if cfg.HA.Enabled {
		out.setActive(false)
		safe.Loop("HA role", ctx.Done(), func() { followRole(ctx, cfg.Data.Dir, out, bus, log) })
	} else {
		out.setActive(true)
	}
	log.Info("softswitch ready", "sip", bound, "advertise", net.JoinHostPort(host, strconv.Itoa(port)),
		"data", cfg.Data.Dir, "subscribers", len(cfg.Subscribers))

	for {
		select {
		case err := <-served:
			srv.Close()
			return err
		case s := <-sigs:
			if s == syscall.SIGHUP {
				src.reload(*cfgPath, out.regs.Reload)
				continue
			}
			log.Info("shutting down", "signal", s.String(), "active_calls", srv.Calls.Active())
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			srv.Calls.Shutdown(sctx)
			cancel()
			stop()
			srv.Close()
			if bill != nil {
				// The releases of the calls just ended are in its queue.
				aaaLive.Drain(3 * time.Second)
				stopBilling()
				if !bill.Wait(10 * time.Second) {
					log.Error("CDR writer did not finish within 10s: the spool keeps the rest for the next start")
				}
			}
			stopBilling()  // (when billing is off, the AAA's context all the same)
			aaaLive.Stop() // DPR, after the last accounting and credit control
			saveHandover(db, authority, limiter, log)
			db.Flush()
			snap := counters.Snapshot()
			log.Info("stopped", "attempts", snap.Attempts, "answers", snap.Answers,
				"invalid_responses", srv.Calls.InvalidResponses(), "unparseable", server.Unparseable(),
				"refused_overload", shed.Refused(), "dropped_blocked", admit.Dropped(),
				"dropped_queue_full", srv.UDPEndpoint().Dropped(), "dropped_send_queue_full", srv.UDPEndpoint().SendDrops(),
				"cdr_records", billRecords(bill), "recovered_panics", safe.Panics())
			return nil
		}
	}
}

// applyRunning swaps a checked running configuration into the parts
// that use it: subscribers, trusted peers, routing tables, tariffs.
func applyRunning(chk *running.Checked, subs *auth.Subscribers, a *auth.Authenticator, r *routing.Router,
	bill *billing.Billing, bus *events.Bus, log *slog.Logger) {
	subs.Set(chk.Subscribers)
	a.SetPeers(chk.Peers)
	var prevSet *gateway.Set
	if old := r.Tables(); old != nil {
		prevSet = old.Set
	}
	r.SetTables(chk.Tables)
	if prevSet != nil { // at start every gateway is simply up (or locked)
		for name, st := range chk.Tables.Set.StateChanges(prevSet) {
			log.Warn("gateway state", "gateway", name, "state", st.String(), "by", "provisioning")
			bus.Publish(&events.Event{Kind: events.GatewayState, Gateway: name, State: st.String()})
		}
	}
	if bill != nil {
		bill.SetPlan(chk.Plan)
	}
	log.Info("provisioning applied", "subscribers", len(chk.Subscribers), "trusted_peers", len(chk.Peers),
		"gateways", len(chk.Tables.Set.Gateways()), "tariffs", len(chk.Doc.Rating.Tariffs))
}

// reload is SIGHUP: the file's trunk registrations, and its provisioning
// when it changed since its last import. false if refused (nothing
// changed).
func reload(path string, conf *running.Running, log *slog.Logger) (config.Config, bool) {
	if path == "" {
		log.Warn("SIGHUP: no config file to reload")
		return config.Config{}, false
	}
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("SIGHUP: config refused, running provisioning unchanged", "err", err)
		return cfg, false
	}
	if _, err := conf.Reload(cfg.Doc, cfg.Registrations, path); err != nil {
		var re *running.Error
		if errors.As(err, &re) {
			err = config.At(path, re.Key, re.Reason)
		}
		log.Error("SIGHUP: provisioning refused, the running configuration is unchanged", "err", err)
		return cfg, false
	}
	return cfg, true
}

// every runs f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func(now time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}

// logProtection logs what the front door does to protect the switch:
// sources blocked and unblocked, overload episodes.
func logProtection(log *slog.Logger, e *events.Event) {
	switch e.Kind {
	case events.SourceBlock:
		if e.State == "blocked" {
			log.Warn("source blocked: request rate over its limit", "source", e.Source, "until", e.Until.UTC().Format(time.RFC3339))
		} else {
			log.Info("source unblocked", "source", e.Source)
		}
	case events.Overload:
		if e.State == "start" {
			log.Warn("overload: refusing new calls (503)", "cause", e.Cause, "percent", e.Level)
		} else {
			log.Info("overload ended: new calls accepted again")
		}
	}
}

// advertise picks the host:port put in Via and Contact.
func advertise(configured, bound string) (string, int) {
	bh, bp, _ := net.SplitHostPort(bound)
	port, _ := strconv.Atoi(bp)
	if configured != "" {
		if h, p, err := net.SplitHostPort(configured); err == nil {
			n, _ := strconv.Atoi(p)
			return h, n
		}
		return configured, port
	}
	if ip, err := netip.ParseAddr(bh); err == nil && !ip.IsUnspecified() {
		return bh, port
	}
	return firstAddress(), port
}

// firstAddress returns the first global unicast IPv4 address of an up
// interface, or 127.0.0.1.
func firstAddress() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// openBilling opens the CDR writer ([billing]); nil when it is off.
func openBilling(cfg config.Config, bus *events.Bus, log *slog.Logger) (*billing.Billing, error) {
	b := cfg.Billing
	if !b.Enabled {
		log.Warn("call detail records are off ([billing] enabled = false)")
		return nil, nil
	}
	dir := b.Dir
	if dir == "" {
		dir = filepath.Join(cfg.Data.Dir, "cdr")
	}
	node := b.Node
	if node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return nil, fmt.Errorf("billing.node is empty and the host name is unknown: set [billing] node")
		}
		node = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
				return r
			}
			return '-'
		}, h)
	}
	bill, err := billing.Open(billing.Config{Dir: dir, Node: node, Format: cdr.Format(b.Format),
		RotateInterval: b.RotateInterval.Duration, RotateRecords: b.RotateRecords,
		RotateBytes: int64(b.RotateMB) << 20, QueueLimit: b.QueueLimit,
		RefuseOnFault: b.OnSpoolFault == "refuse", Retention: b.Retention.Duration, DiskAlarmPercent: b.DiskAlarm,
		KeepUntilDelivered: len(b.Push.Servers) > 0, Hot: b.Hot, SyncInterval: b.SyncInterval.Duration,
		Outboxes: outboxes(), HoldCut: cfg.HA.Replicates()}, bus, log)
	if err != nil {
		return nil, err
	}
	bus.Subscribe(bill.Handle)
	log.Info("call detail records", "dir", dir, "node", node, "format", b.Format)
	return bill, nil
}

// outboxes are the billing outboxes accounting reads: there from the
// start, since accounting may be turned on at run time; queued into only
// while accounting is on (aaaGate).
func outboxes() []string { return []string{accountingOutbox} }

func billRecords(b *billing.Billing) int64 {
	if b == nil {
		return 0
	}
	_, n := b.Stats()
	return n
}

// pushTLS is the FTPS client's TLS configuration: the system's roots, or
// those of billing.push.ca_file; no check at all only when the operator
// said so.
func pushTLS(p config.Push) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: p.Insecure}
	if p.CAFile != "" {
		pemData, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("billing.push.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("billing.push.ca_file %s: no PEM certificate in it", p.CAFile)
		}
	}
	return tc, nil
}

// encodeJSON is v as the replication link carries it.
func encodeJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}
