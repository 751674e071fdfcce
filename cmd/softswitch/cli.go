package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/core/q850"
	"github.com/softswitch/softswitch/core/running"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/store"
	"github.com/softswitch/softswitch/interwork/gateway"
	"github.com/softswitch/softswitch/oam/cli"
	"github.com/softswitch/softswitch/oam/control"
)

// cliUsers keeps the command line's users in the running configuration
// (bcrypt hashes), where `show running-config` shows them and the CLI's
// user lines change them.
func cliUsers(conf *running.Running, cost int) *cli.Users {
	return &cli.Users{
		Cost: cost,
		Load: func() ([]cli.User, error) { return toCLIUsers(conf.Current().Doc.Users), nil },
		Change: func(f func([]cli.User) ([]cli.User, error)) error {
			return conf.Update("root (control socket)", func(d *provision.Doc) error {
				us, err := f(toCLIUsers(d.Users))
				if err != nil {
					return err
				}
				d.Users = nil
				for _, u := range us {
					d.Users = append(d.Users, provision.User{Name: u.Name, Level: u.Level.String(), Hash: string(u.Hash)})
				}
				return nil
			})
		},
	}
}

func toCLIUsers(list []provision.User) []cli.User {
	var us []cli.User
	for _, u := range list {
		l, _ := cli.ParseLevel(u.Level)
		us = append(us, cli.User{Name: u.Name, Hash: []byte(u.Hash), Level: l})
	}
	return us
}

// telnetCommand lets root turn Telnet on and off with one command
// (softswitch telnet on|off): a commit of `management telnet`.
func telnetCommand(ctl *control.Server, conf *running.Running) {
	ctl.Handle("telnet", "telnet on|off: the command line over Telnet, committed to the running configuration", func(args []string) (string, error) {
		if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
			return "", errors.New("usage: telnet on|off")
		}
		err := conf.Update("root (control socket)", func(d *provision.Doc) error {
			d.Management.Telnet = args[0] == "on"
			return nil
		})
		if err != nil {
			return "", err
		}
		return "Telnet " + args[0] + " (committed)\n", nil
	})
}

// firstUserFile, in the data directory, holds "NAME LEVEL BCRYPT-HASH":
// the appliance's first boot writes it (docs/install.md) and the switch
// takes it as its first command-line user when it has none, then
// deletes it.
const firstUserFile = "cli-first-user"

// takeFirstUser adds the first-boot user when the running configuration
// has no user.
func takeFirstUser(dataDir string, conf *running.Running, log *slog.Logger) {
	path := filepath.Join(dataDir, firstUserFile)
	data, err := os.ReadFile(path)
	if err != nil {
		if !os.IsNotExist(err) {
			log.Error("first command-line user not taken: its file cannot be read", "file", path, "err", err)
		}
		return
	}
	if len(conf.Current().Doc.Users) > 0 {
		os.Remove(path)
		return
	}
	f := strings.Fields(string(data))
	if len(f) != 3 {
		log.Error("first command-line user not taken: the file is not NAME LEVEL HASH", "file", path)
		return
	}
	err = conf.Update("first boot", func(d *provision.Doc) error {
		d.Users = append(d.Users, provision.User{Name: f[0], Level: f[1], Hash: f[2]})
		return nil
	})
	if err != nil {
		log.Error("first command-line user not taken", "file", path, "err", err)
		return
	}
	os.Remove(path)
	log.Info("first command-line user added", "user", f[0], "level", f[1])
}

// takeOldUsers moves the users an older version kept beside the
// provisioning into the running configuration, once.
func takeOldUsers(db *store.DB, users *cli.Users, log *slog.Logger) {
	var old []cli.User
	if found, err := db.GetTable("cli-users", &old); err != nil || !found || len(old) == 0 {
		return
	}
	if have, _ := users.Load(); len(have) > 0 {
		return
	}
	if err := users.Change(func([]cli.User) ([]cli.User, error) { return old, nil }); err != nil {
		log.Error("command-line users of an older version not taken", "err", err)
		return
	}
	// Taken once: a later running configuration without users must not
	// bring them back.
	if err := db.PutTable("cli-users", []cli.User{}); err != nil {
		log.Error("command-line users of an older version: the old table is not emptied", "err", err)
	}
	log.Info("command-line users taken into the running configuration", "users", len(old))
}

// userCommands lets root manage the users through the control socket
// (softswitch cli-user ...): there is no default user.
func userCommands(ctl *control.Server, users *cli.Users) {
	ctl.HandleSecret("cli-user-add", "cli-user-add NAME LEVEL PASSWORD: add or replace a command-line user (view, operator, admin)",
		func(args []string) (string, error) {
			if len(args) != 3 {
				return "", errors.New("usage: cli-user-add NAME LEVEL PASSWORD")
			}
			level, ok := cli.ParseLevel(args[1])
			if !ok {
				return "", fmt.Errorf("level %q: view, operator or admin", args[1])
			}
			if err := users.Add(args[0], args[2], level); err != nil {
				return "", err
			}
			return fmt.Sprintf("user %s (%s) saved", args[0], level), nil
		})
	ctl.Handle("cli-user-del", "cli-user-del NAME: remove a command-line user", func(args []string) (string, error) {
		if len(args) != 1 {
			return "", errors.New("usage: cli-user-del NAME")
		}
		ok, err := users.Delete(args[0])
		if err != nil || !ok {
			return fmt.Sprintf("no user %s", args[0]), err
		}
		return fmt.Sprintf("user %s removed", args[0]), nil
	})
	ctl.Handle("cli-users", "list the command-line users", func([]string) (string, error) {
		us, err := users.List()
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, u := range us {
			fmt.Fprintf(&b, "%-32s %s\n", u.Name, u.Level)
		}
		if b.Len() == 0 {
			return "no users", nil
		}
		return b.String(), nil
	})
}

// switchCLI is the command set: what the switch shows and what an
// operator may change at run time.
func switchCLI(src *node, hostname string, log *slog.Logger) *cli.CLI {
	c := &cli.CLI{Hostname: hostname, Sessions: &cli.Sessions{}}
	c.Audit = func(user, from, line string, err error) {
		refused := ""
		if err != nil {
			refused = err.Error()
		}
		log.Info("CLI audit", "user", user, "from", from, "command", maskSecrets(line), "refused", refused)
	}
	c.Builtins()
	if src.running != nil {
		configCommands(c, src.running)
		trafficCommands(c, src.running, src.tables)
	}
	show := "show what the switch knows"
	gwArg := &cli.Arg{Name: "gateway", Help: "a gateway's name",
		Complete: func() []string {
			var n []string
			for _, g := range src.gateways() {
				n = append(n, g.Name)
			}
			return n
		},
		Check: func(s string) error {
			for _, g := range src.gateways() {
				if g.Name == s {
					return nil
				}
			}
			return errors.New("no such gateway")
		}}
	c.Exec.Add("show version", []string{show, "the build and how long it has run"}, cli.View, nil, func(s *cli.Session, _ []string) error {
		s.Printf("softswitch %s\nnode %s\nup %s (since %s UTC)\n", buildVersion(), src.name,
			time.Since(src.start).Round(time.Second), src.start.UTC().Format("2006-01-02 15:04:05"))
		return nil
	})
	c.Exec.Add("show stats", []string{show, "traffic: calls, ASR, BHCA, calls per second, message delay"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			k := src.counters
			r := k.Rolling(time.Now())
			mean, p99, n := src.delay.LastMinute(time.Now())
			s.Printf("%-28s %d\n%-28s %d\n%-28s %d\n%-28s %d\n%-28s %d\n", "call attempts", k.Attempts.Load(), "calls answered",
				k.Answers.Load(), "calls failed", k.Failed.Load(), "calls active", max(0, k.Active.Load()), "calls active, peak", k.Peak.Load())
			s.Printf("%-28s %.1f %%\n%-28s %.1f %%\n%-28s %d\n%-28s %.1f\n", "ASR, 15 minutes", r.ASR15*100, "ASR, 60 minutes", r.ASR60*100,
				"BHCA, 60 minutes", r.BusyHourAttempts,
				"calls per second, 10 s", r.CallsPerSecond)
			s.Printf("%-28s %d\n%-28s mean %v, p99 %v (%d messages, last minute)\n", "registrations", max(0, k.Registrations.Load()),
				"message delay", mean, p99, n)
			return nil
		})
	c.Exec.Add("show stats causes", []string{show, "", "calls released since the start, by Q.850 cause"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			s.Printf("%-6s %-48s %12s\n", "CAUSE", "NAME", "RELEASES")
			for cause := range src.counters.Causes {
				if n := src.counters.Causes[cause].Load(); n > 0 {
					s.Printf("%-6d %-48s %12d\n", cause, q850.Name(cause), n)
				}
			}
			return nil
		})
	c.Exec.Add("show gateways", []string{show, "gateways: state, admin state, channels, attempts"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			s.Printf("%-20s %-6s %-9s %8s %6s %10s %5s %10s\n", "GATEWAY", "STATE", "ADMIN", "CHANNELS", "LIMIT", "ATTEMPTS",
				"ASR", "LAST-CAUSE")
			for _, g := range src.gateways() {
				state, admin := "up", "unlocked"
				if g.Down() {
					state = "down"
				}
				if g.State() == gateway.Locked {
					admin = "locked"
				}
				c := g.Counters()
				asr, cause := "-", "-"
				if ans, failed, last := g.Outcomes(); ans+failed > 0 {
					asr = fmt.Sprintf("%d%%", ans*100/(ans+failed))
					if last != 0 {
						cause = fmt.Sprintf("%d (%d)", q850.CauseForStatus(last), last)
					}
				}
				s.Printf("%-20s %-6s %-9s %8d %6d %10d %5s %10s\n", g.Name, state, admin, c.Active, g.Spec().MaxChannels, c.Out, asr, cause)
			}
			return nil
		})
	c.Exec.Add("show alarms", []string{show, "the active alarms"}, cli.View, nil, func(s *cli.Session, _ []string) error {
		s.Printf("%-5s %-9s %-26s %-32s %s\n", "ID", "SEVERITY", "TYPE", "RESOURCE", "RAISED (UTC)")
		for _, a := range src.alarms.Active() {
			s.Printf("%-5d %-9s %-26s %-32s %s\n", a.ID, a.Severity, a.Type, a.Resource, a.Raised.UTC().Format("2006-01-02 15:04:05"))
		}
		return nil
	})
	c.Exec.Add("show alarms history", []string{"", "", "alarms raised and cleared, oldest first"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			for _, a := range src.alarms.History() {
				state := "active"
				if !a.Cleared.IsZero() {
					state = "cleared " + a.Cleared.UTC().Format("2006-01-02 15:04:05")
				}
				s.Printf("%-5d %-9s %-26s %-32s %s %s\n", a.ID, a.Severity, a.Type, a.Resource,
					a.Raised.UTC().Format("2006-01-02 15:04:05"), state)
			}
			return nil
		})
	idArg := &cli.Arg{Name: "id", Help: "an alarm's id (show alarms)", Check: func(s string) error {
		_, err := strconv.ParseUint(s, 10, 32)
		return err
	}}
	c.Exec.Add("clear alarm <id>", []string{"end something", "an active alarm, by hand", ""}, cli.Operator,
		map[string]*cli.Arg{"id": idArg}, func(s *cli.Session, a []string) error {
			id, _ := strconv.ParseUint(a[0], 10, 32)
			if !src.alarms.Clear(uint32(id)) {
				return fmt.Errorf("%% no active alarm %d", id)
			}
			s.Printf("alarm %d cleared\n", id)
			return nil
		})
	for _, lock := range []bool{true, false} {
		verb, help := "lock", "take a gateway out of service: no new calls, calls in progress go on"
		if !lock {
			verb, help = "unlock", "put a locked gateway back in service"
		}
		c.Exec.Add(verb+" gateway <gateway>", []string{help, "a gateway", ""}, cli.Operator, map[string]*cli.Arg{"gateway": gwArg},
			func(s *cli.Session, a []string) error {
				if err := lockGateways(src.running, map[string]bool{a[0]: lock}, fmt.Sprintf("%s from %s", s.User, s.From)); err != nil {
					return fmt.Errorf("%% gateway %s not %sed: %v", a[0], verb, err)
				}
				s.Printf("gateway %s %sed\n", a[0], verb)
				return nil
			})
	}
	c.Exec.Add("show calls", []string{show, "the calls in progress, oldest first (at most 100)"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			list, n := src.calls(100)
			s.Printf("%d calls in progress\n", n)
			if n == 0 {
				return nil
			}
			s.Printf("%-9s %-9s %-16s %-16s %-16s %s\n", "STATE", "DURATION", "CALLING", "CALLED", "GATEWAY", "CALL-ID")
			for _, x := range list {
				s.Printf("%-9s %-9s %-16s %-16s %-16s %s\n", x.State, time.Since(x.Setup).Round(time.Second), x.Calling, x.Called,
					orDash(x.Gateway), x.CallID)
			}
			return nil
		})
	callArg := &cli.Arg{Name: "call-id", Help: "a call's Call-ID on the caller's side (show calls)"}
	c.Exec.Add("show call <call-id>", []string{show, "one call in progress, in detail", ""}, cli.View,
		map[string]*cli.Arg{"call-id": callArg}, func(s *cli.Session, a []string) error {
			list, _ := src.calls(1 << 30)
			for _, x := range list {
				if x.CallID != a[0] {
					continue
				}
				rows := [][2]string{{"call-id", x.CallID}, {"state", x.State}, {"calling", x.Calling}, {"called", x.Called},
					{"called, sent", orDash(x.CalledSent)}, {"account", orDash(x.Account)}, {"from trunk", orDash(x.Trunk)},
					{"route", orDash(x.Route)}, {"gateway", orDash(x.Gateway)}, {"forks", strconv.Itoa(x.Forks)},
					{"setup (UTC)", x.Setup.UTC().Format("2006-01-02 15:04:05")}}
				if !x.Answered.IsZero() {
					rows = append(rows, [2]string{"answered (UTC)", x.Answered.UTC().Format("2006-01-02 15:04:05")},
						[2]string{"talking", time.Since(x.Answered).Round(time.Second).String()})
				}
				for _, r := range rows {
					s.Printf("%-16s %s\n", r[0], r[1])
				}
				return nil
			}
			return fmt.Errorf("%% no call %s in progress", a[0])
		})
	c.Exec.Add("show cdr queue", []string{show, "call detail records", "delivery to the billing centre"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			n, pushing, err := src.pushBacklog()
			if !pushing {
				s.Printf("CDR files are not pushed (pull, or none configured)\n")
				return nil
			}
			if err != nil {
				return fmt.Errorf("%% the spool: %v", err)
			}
			state := "ok"
			if src.counters.State("cdr-delivery") == "failing" {
				state = "failing"
			}
			s.Printf("%-28s %d\n%-28s %s\n", "files not yet delivered", n, "delivery", state)
			return nil
		})
	c.Exec.Add("show aaa", []string{show, "RADIUS servers and Diameter peers, and whether they answer"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			s.Printf("%-20s %-9s %-5s %s\n", "SERVER", "PROTOCOL", "STATE", "ADDRESSES")
			for _, x := range aaaServers(src.aaa()) {
				state := "up"
				if !x.up(src.counters) {
					state = "down"
				}
				s.Printf("%-20s %-9s %-5s %s\n", x.name, x.protocol, state, strings.Join(x.addrs, " "))
			}
			return nil
		})
	c.Exec.Add("show replication", []string{show, "the state replication between the nodes of the pair"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			if src.repl == nil {
				s.Printf("not replicating ([ha] peer is not set)\n")
				return nil
			}
			s.Printf("%s", src.repl.text())
			return nil
		})
	c.Exec.Add("show trunks", []string{show, "the switch's registrations at carriers"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			list := src.trunks()
			sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
			s.Printf("%-20s %-13s %s\n", "REGISTRATION", "STATE", "LAST")
			for _, t := range list {
				s.Printf("%-20s %-13s %s\n", t.Name, t.State, t.Last)
			}
			return nil
		})
	aorArg := &cli.Arg{Name: "number", Help: "a subscriber's number (its address of record)"}
	c.Exec.Add("show registrations <number>", []string{show, "a subscriber's registered contacts", ""}, cli.View,
		map[string]*cli.Arg{"number": aorArg}, func(s *cli.Session, a []string) error {
			bs := src.lookup(a[0])
			if len(bs) == 0 {
				s.Printf("%s is not registered\n", a[0])
				return nil
			}
			for _, b := range bs {
				s.Printf("%s via %s %s, expires in %s\n", b.Contact, b.Transport, b.Dest, time.Until(b.Expires).Round(time.Second))
			}
			return nil
		})
	c.Exec.Add("show bans", []string{show, "sources and users banned for failed authentications"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			s.Printf("%s\n", strings.TrimRight(formatBans(src.limiter.Bans(time.Now())), "\n"))
			return nil
		})
	c.Exec.Add("show blocked", []string{show, "sources blocked for their request rate"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			s.Printf("%s\n", strings.TrimRight(formatBlocked(src.admit.Blocked(time.Now())), "\n"))
			return nil
		})
	c.Exec.Add("show sessions", []string{show, "who is logged in to the command line"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			s.Printf("%-4s %-20s %-7s %-40s %s\n", "ID", "USER", "VIA", "FROM", "SINCE (UTC)")
			for _, l := range c.Sessions.List() {
				me := ""
				if l.ID == s.ID {
					me = "  (this session)"
				}
				s.Printf("%-4d %-20s %-7s %-40s %s%s\n", l.ID, l.User, l.Via, l.From, l.Since.UTC().Format("2006-01-02 15:04:05"), me)
			}
			return nil
		})
	sessArg := &cli.Arg{Name: "id", Help: "a session's id (show sessions)", Check: func(x string) error {
		_, err := strconv.Atoi(x)
		return err
	}}
	c.Exec.Add("switchover", []string{"hand the service address to the standby, which must be following this node (docs/ha.md)"}, cli.Admin, nil,
		func(s *cli.Session, _ []string) error {
			if src.switching == nil {
				return errors.New("% this node is not in a pair ([ha] is off)")
			}
			if err := src.switching.Start(); err != nil {
				return fmt.Errorf("%% %v", err)
			}
			slog.Default().Info("switchover started", "by", s.User, "from", s.From)
			s.Printf("switching over: the standby takes the address within a few seconds (show replication there)\n")
			return nil
		})
	c.Exec.Add("clear session <id>", []string{"", "end another user's session (its connection is closed)", ""}, cli.Admin,
		map[string]*cli.Arg{"id": sessArg}, func(s *cli.Session, a []string) error {
			id, _ := strconv.Atoi(a[0])
			if id == s.ID {
				return errors.New("% that is this session: exit instead")
			}
			if !c.Sessions.End(id) {
				return fmt.Errorf("%% no session %d", id)
			}
			slog.Default().Info("CLI session ended by an admin", "session", id, "by", s.User, "from", s.From)
			s.Printf("session %d ended\n", id)
			return nil
		})
	whoArg := &cli.Arg{Name: "who", Help: "an address, a prefix or a user"}
	c.Exec.Add("clear ban <who>", []string{"", "lift authentication bans and forget the failures", ""}, cli.Operator,
		map[string]*cli.Arg{"who": whoArg}, func(s *cli.Session, a []string) error {
			s.Printf("%s\n", strings.TrimRight(liftBans(src.limiter, src.bus, a[0]), "\n"))
			return nil
		})
	addrArg := &cli.Arg{Name: "address", Help: "a blocked source's IP address", Check: func(x string) error {
		_, err := netip.ParseAddr(x)
		return err
	}}
	c.Exec.Add("clear block <address>", []string{"", "lift a source's rate block", ""}, cli.Operator,
		map[string]*cli.Arg{"address": addrArg}, func(s *cli.Session, a []string) error {
			msg, err := unblock(src.admit, a[0])
			if err != nil {
				return fmt.Errorf("%% %v", err)
			}
			s.Printf("%s\n", msg)
			return nil
		})
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// startCLI serves the command line over SSH when [cli] ssh_listen is set.
func startCLI(ctx context.Context, cfg config.Config, src *node, users *cli.Users, telnet *telnetGate, log *slog.Logger) error {
	l := cfg.CLI
	if l.SSHListen == "" && l.TelnetListen == "" {
		return nil
	}
	idle := l.IdleTimeout.Duration
	if idle == 0 {
		idle = 15 * time.Minute
	}
	var fileSources []netip.Prefix
	for _, p := range l.Sources {
		pf, _ := config.ParsePrefix(p) // validated
		fileSources = append(fileSources, pf)
	}
	// The management allow list: the running configuration's (management
	// sources), else the file's [cli] sources.
	sources := func() []netip.Prefix {
		if list := src.running.Current().Doc.Management.Sources; len(list) > 0 {
			out := make([]netip.Prefix, 0, len(list))
			for _, p := range list {
				pf, _ := config.ParsePrefix(p) // checked at commit
				out = append(out, pf)
			}
			return out
		}
		return fileSources
	}
	commands := switchCLI(src, src.name, log)
	if l.SSHListen != "" {
		key, err := cli.LoadHostKey(filepath.Join(cfg.Data.Dir, "cli-ssh-host-key"))
		if err != nil {
			return fmt.Errorf("cli: ssh host key: %w", err)
		}
		s := &cli.SSHServer{CLI: commands, Users: users, HostKey: key, Idle: idle, Sources: sources, Log: log}
		ln, err := net.Listen("tcp", l.SSHListen)
		if err != nil {
			return fmt.Errorf("cli: %w", err)
		}
		safe.Go("CLI SSH server", func() { s.Serve(ctx, ln) })
		log.Info("command line over SSH", "listen", ln.Addr().String(), "idle_timeout", idle.String())
	}
	if l.TelnetListen != "" {
		s := &cli.TelnetServer{CLI: commands, Users: users, Idle: idle, Sources: sources, Log: log}
		return telnet.Attach(func() (func(), error) {
			ln, err := net.Listen("tcp", l.TelnetListen)
			if err != nil {
				return nil, fmt.Errorf("cli: %w", err)
			}
			tctx, stop := context.WithCancel(ctx)
			safe.Go("CLI Telnet server", func() { s.Serve(tctx, ln) })
			log.Warn("command line over Telnet: passwords cross the network in clear", "listen", ln.Addr().String())
			// The listener is closed before stop returns, so that Telnet
			// turned on again at once can bind the port.
			return func() { stop(); ln.Close() }, nil
		})
	}
	return nil
}

// telnetGate serves Telnet while the running configuration says so
// (management telnet): off by default, on and off again by a commit.
// Sessions in progress when it is turned off go on until they end
// (clear session ends one at once).
type telnetGate struct {
	log   *slog.Logger
	mu    sync.Mutex // Set and Attach; no call waits on it
	want  bool
	start func() (func(), error)
	stop  func()
}

// Set turns Telnet on or off (from a commit).
func (g *telnetGate) Set(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.want = on
	if err := g.applyLocked(); err != nil {
		g.log.Error("Telnet not started", "err", err)
	}
}

// Attach gives the gate the way to start the server, and applies what
// the running configuration wants (at start: an error stops the start).
func (g *telnetGate) Attach(start func() (func(), error)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.start = start
	return g.applyLocked()
}

func (g *telnetGate) applyLocked() error {
	switch {
	case g.start == nil:
	case g.want && g.stop == nil:
		stop, err := g.start()
		if err != nil {
			return err
		}
		g.stop = stop
	case !g.want && g.stop != nil:
		g.stop()
		g.stop = nil
		g.log.Info("command line over Telnet turned off (sessions in progress go on)")
	}
	return nil
}
