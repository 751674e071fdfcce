package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/core/admission"
	"github.com/softswitch/softswitch/core/authlimit"
	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/digest"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/store"
	"github.com/softswitch/softswitch/oam/control"
)

// Names of the switch's own state in the store.
const (
	stateDigestSecret = "digest.secret" // the nonce key: kept for good
	stateNonces       = "digest.nonces" // nonce counts a clean shutdown hands to the next start
	stateBans         = "auth.bans"     // bans and logins a clean shutdown hands to the next start
)

// digestSecret is the stored nonce key, made at the first start. With it
// in the store, nonces stay valid across restarts (and a pair can share
// it).
func digestSecret(db *store.DB) (digest.Secret, error) {
	var s digest.Secret
	found, err := db.GetState(stateDigestSecret, &s)
	if err != nil {
		return s, fmt.Errorf("reading the nonce key: %w", err)
	}
	if found {
		return s, nil
	}
	s = digest.NewSecret()
	if err := db.PutState(stateDigestSecret, s); err != nil {
		return s, fmt.Errorf("storing the nonce key: %w", err)
	}
	return s, nil
}

// takeHandover restores what the last clean shutdown saved, and deletes
// it, so that a crash later does not find stale counts.
func takeHandover(db *store.DB, a *digest.Authority, l *authlimit.Limiter, log *slog.Logger) {
	var ns digest.NonceState
	if found, err := db.TakeState(stateNonces, &ns); err != nil {
		log.Warn("nonce counts of the last shutdown unreadable: its nonces get a stale challenge", "err", err)
	} else if found {
		a.Restore(ns)
	} else {
		log.Info("no nonce counts handed over (a first start, or after a crash): nonces issued before this start get a stale challenge once")
	}
	var bs authlimit.State
	if found, err := db.TakeState(stateBans, &bs); err != nil {
		log.Warn("bans of the last shutdown unreadable", "err", err)
	} else if found {
		l.Restore(bs, time.Now())
	}
}

// saveHandover keeps nonce counts and bans for the next start (after the
// last request was served).
func saveHandover(db *store.DB, a *digest.Authority, l *authlimit.Limiter, log *slog.Logger) {
	now := time.Now()
	if err := db.PutState(stateNonces, a.Snapshot(now)); err != nil {
		log.Warn("saving nonce counts failed: the next start gives stale challenges", "err", err)
	}
	if err := db.PutState(stateBans, l.Snapshot(now)); err != nil {
		log.Warn("saving bans failed", "err", err)
	}
}

func limiterConfig(c config.Auth) authlimit.Config {
	lc := authlimit.Default()
	lc.SourceFailures, lc.PairFailures, lc.UserFailures = c.MaxFailures, c.MaxUserFailures, c.MaxAccountFailures
	lc.Bans = nil
	for _, d := range c.BanDurations {
		lc.Bans = append(lc.Bans, d.Duration)
	}
	lc.LoginMemory = c.LoginMemory.Duration
	return lc
}

// controlCommands registers what the control socket answers.
func controlCommands(s *control.Server, l *authlimit.Limiter, adm *admission.Gate, bus *events.Bus) {
	s.Handle("blocked", "list sources blocked for their request rate", func([]string) (string, error) {
		return formatBlocked(adm.Blocked(time.Now())), nil
	})
	s.Handle("unblock", "unblock ADDRESS: lift the rate block of a source", func(args []string) (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("usage: unblock ADDRESS")
		}
		return unblock(adm, args[0])
	})
	s.Handle("bans", "list active authentication bans", func([]string) (string, error) {
		return formatBans(l.Bans(time.Now())), nil
	})
	s.Handle("unban", "unban ADDRESS|PREFIX|USER: lift its bans and forget its failures", func(args []string) (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("usage: unban ADDRESS|PREFIX|USER")
		}
		return liftBans(l, bus, args[0]), nil
	})
}

// formatBlocked lists rate blocks (the control socket and the CLI).
func formatBlocked(bs []admission.Block) string {
	if len(bs) == 0 {
		return "no blocked sources"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %s\n", "SOURCE", "UNTIL (UTC)")
	for _, x := range bs {
		fmt.Fprintf(&b, "%-40s %s\n", x.Source, x.Until.UTC().Format("2006-01-02 15:04:05"))
	}
	return b.String()
}

// unblock lifts a source's rate block.
func unblock(adm *admission.Gate, addr string) (string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return "", fmt.Errorf("not an IP address: %q", addr)
	}
	if !adm.Unblock(ip, time.Now()) {
		return fmt.Sprintf("%s is not blocked", ip), nil
	}
	return fmt.Sprintf("unblocked %s", ip), nil
}

// liftBans lifts the bans of an address, prefix or user, and says so on
// the bus (the alarms clear).
func liftBans(l *authlimit.Limiter, bus *events.Bus, who string) string {
	lifted := l.Unban(who)
	for _, b := range lifted {
		bus.Publish(&events.Event{Kind: events.AuthBan, Source: b.Source, AOR: b.User, State: "unbanned", Cause: b.Kind.String()})
	}
	if len(lifted) == 0 {
		return fmt.Sprintf("no ban of %s (its failure counts are forgotten)", who)
	}
	return fmt.Sprintf("lifted %d ban(s):\n%s", len(lifted), formatBans(lifted))
}

func formatBans(bs []authlimit.Ban) string {
	if len(bs) == 0 {
		return "no bans"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-15s %-40s %-20s %-20s %s\n", "KIND", "SOURCE", "USER", "UNTIL (UTC)", "LEVEL")
	for _, x := range bs {
		src, user := x.Source, x.User
		if src == "" {
			src = "-"
		}
		if user == "" {
			user = "-"
		}
		fmt.Fprintf(&b, "%-15s %-40s %-20s %-20s %d\n", x.Kind, src, user, x.Until.UTC().Format("2006-01-02 15:04:05"), x.Level)
	}
	return b.String()
}

func controlPath(dataDir string) string { return filepath.Join(dataDir, control.SocketName) }

// cdrCommands registers the billing commands of the control socket.
func cdrCommands(s *control.Server, bill *billing.Billing) {
	s.Handle("cdr-fetched", "list the CDR files the pull server's consumers fetched", func([]string) (string, error) {
		fs, err := bill.Fetched()
		if err != nil {
			return "", err
		}
		if len(fs) == 0 {
			return "no file fetched", nil
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%-48s %-16s %s\n", "FILE", "USER", "LAST FETCH (UTC)")
		for _, f := range fs {
			fmt.Fprintf(&b, "%-48s %-16s %s\n", f.File, f.User, f.At.Format("2006-01-02 15:04:05.000"))
		}
		return b.String(), nil
	})
}
