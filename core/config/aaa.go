package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// AAA says which servers authenticate, authorise and account
// (docs/aaa.md): RADIUS servers by name, tried in the order listed.
type AAA struct {
	RegistrationAuth []string `toml:"registration_auth"` // REGISTER digests checked by these; empty: the local table
	CallAuth         []string `toml:"call_auth"`         // INVITE digests checked by these; empty: the local table
	// CallAuthorization: subscribers' calls authorised by these (a
	// calling card's granted time); empty: every authenticated call goes.
	CallAuthorization []string `toml:"call_authorization"`
	// AuthorizationFailure: when no server answers, "closed" refuses the
	// call (503, cause 41), "open" lets it go on without a limit.
	AuthorizationFailure string `toml:"authorization_failure"`
	// CreditControlTx: how long a credit-control request waits for one
	// peer's answer (RFC 4006 Tx); 0: DefaultCreditControlTx.
	CreditControlTx Duration       `toml:"credit_control_tx"`
	Accounting      []string       `toml:"accounting"`       // RADIUS servers, by name, tried in order; empty: no accounting
	InterimInterval Duration       `toml:"interim_interval"` // Interim-Update period; 0: none
	Radius          []RadiusServer `toml:"radius"`

	// Diameter: the switch's identity, and its peers (RFC 6733).
	OriginHost       string         `toml:"origin_host"`       // e.g. ss1.operator.net
	OriginRealm      string         `toml:"origin_realm"`      // e.g. operator.net
	DestinationRealm string         `toml:"destination_realm"` // "" = origin_realm
	Diameter         []DiameterPeer `toml:"diameter"`
}

// DefaultCreditControlTx is RFC 4006 §13's recommended Tx.
const DefaultCreditControlTx = 10 * time.Second

// DiameterPeer is one Diameter server.
type DiameterPeer struct {
	Name     string   `toml:"name"`
	Address  string   `toml:"address"`  // IP:port (no DNS at run time); TCP
	Watchdog Duration `toml:"watchdog"` // Tw, a DWR after this long idle; 0 = 30s
}

// DiameterPeer returns the peer named name.
func (a AAA) DiameterPeer(name string) (DiameterPeer, bool) {
	for _, d := range a.Diameter {
		if d.Name == name {
			return d, true
		}
	}
	return DiameterPeer{}, false
}

// AccountingDiameter tells whether accounting goes to Diameter peers
// (validated: a list names one kind only).
func (a AAA) AccountingDiameter() bool {
	if len(a.Accounting) == 0 {
		return false
	}
	_, ok := a.DiameterPeer(a.Accounting[0])
	return ok
}

// RadiusServer is one RADIUS server.
type RadiusServer struct {
	Name     string   `toml:"name"`
	Address  string   `toml:"address"`   // an IP address (no DNS at run time)
	AuthPort int      `toml:"auth_port"` // 0 = 1812
	AcctPort int      `toml:"acct_port"` // 0 = 1813
	Secret   string   `toml:"secret"`    // shared secret, 16 characters at least; no default; never logged or shown
	Timeout  Duration `toml:"timeout"`   // the first try's wait, doubled at each retry; 0 = 1s
	Tries    int      `toml:"tries"`     // sends before the next server; 0 = 3
	DeadTime Duration `toml:"dead_time"` // a server that answered none is passed over this long; 0 = 30s
}

// Addrs are the server's authentication and accounting addresses.
func (r RadiusServer) Addrs() (auth, acct netip.AddrPort) {
	ip, _ := netip.ParseAddr(r.Address) // validated
	ap, cp := r.AuthPort, r.AcctPort
	if ap == 0 {
		ap = 1812
	}
	if cp == 0 {
		cp = 1813
	}
	return netip.AddrPortFrom(ip, uint16(ap)), netip.AddrPortFrom(ip, uint16(cp))
}

// RadiusServer returns the server named name.
func (a AAA) RadiusServer(name string) (RadiusServer, bool) {
	for _, r := range a.Radius {
		if r.Name == name {
			return r, true
		}
	}
	return RadiusServer{}, false
}

// minSecret is the shortest shared secret taken (RFC 3579 §4.3.3 asks for
// 16 octets at least: the secret is all that keys the authenticators).
const minSecret = 16

func (c *Config) validateAAA() error {
	a := c.AAA
	seen := map[string]bool{}
	for i, r := range a.Radius {
		key := func(k string) string { return fmt.Sprintf("aaa.radius[%d].%s", i, k) }
		switch {
		case r.Name == "" || seen[r.Name]:
			return invalid(key("name"), "%q: every RADIUS server needs a name of its own", r.Name)
		case !validAddr(r.Address):
			return invalid(key("address"), "%q is not an IP address (names are not resolved at run time)", r.Address)
		case r.AuthPort < 0 || r.AuthPort > 65535:
			return invalid(key("auth_port"), "must be a port (0: 1812)")
		case r.AcctPort < 0 || r.AcctPort > 65535:
			return invalid(key("acct_port"), "must be a port (0: 1813)")
		case len(r.Secret) < minSecret:
			return invalid(key("secret"), "must be at least %d characters (there is no default)", minSecret)
		case r.Timeout.Duration < 0 || r.Timeout.Duration > 30*time.Second:
			return invalid(key("timeout"), "must be 0 (1s) to 30s")
		case r.Tries < 0 || r.Tries > 10:
			return invalid(key("tries"), "must be 0 (3) to 10")
		case r.DeadTime.Duration < 0:
			return invalid(key("dead_time"), "must be 0 (30s) or more")
		}
		seen[r.Name] = true
	}
	radius := map[string]bool{}
	for n := range seen {
		radius[n] = true
	}
	for i, d := range a.Diameter {
		key := func(k string) string { return fmt.Sprintf("aaa.diameter[%d].%s", i, k) }
		ap, err := netip.ParseAddrPort(d.Address)
		switch {
		case d.Name == "" || seen[d.Name]:
			return invalid(key("name"), "%q: every AAA server needs a name of its own", d.Name)
		case err != nil || ap.Port() == 0:
			return invalid(key("address"), "%q is not IP:port (names are not resolved at run time)", d.Address)
		case d.Watchdog.Duration != 0 && d.Watchdog.Duration < 6*time.Second:
			return invalid(key("watchdog"), "must be 0 (30s) or at least 6s (RFC 3539)")
		}
		seen[d.Name] = true
	}
	if len(a.Diameter) > 0 && (!validIdentity(a.OriginHost) || !validIdentity(a.OriginRealm)) {
		return invalid("aaa.origin_host", "Diameter peers need origin_host and origin_realm (DiameterIdentity, e.g. ss1.operator.net)")
	}
	if a.DestinationRealm != "" && !validIdentity(a.DestinationRealm) {
		return invalid("aaa.destination_realm", "%q is not a realm", a.DestinationRealm)
	}
	for _, list := range []struct {
		key   string
		names []string
	}{{"registration_auth", a.RegistrationAuth}, {"call_auth", a.CallAuth},
		{"call_authorization", a.CallAuthorization}, {"accounting", a.Accounting}} {
		for i, n := range list.names {
			if !seen[n] {
				return invalid(fmt.Sprintf("aaa.%s[%d]", list.key, i), "no [[aaa.radius]] or [[aaa.diameter]] server is named %q", n)
			}
			if radius[n] != radius[list.names[0]] {
				return invalid(fmt.Sprintf("aaa.%s[%d]", list.key, i), "%q: one list names RADIUS servers or Diameter peers, not both", n)
			}
			if !radius[n] && list.key != "accounting" && list.key != "call_authorization" {
				return invalid(fmt.Sprintf("aaa.%s[%d]", list.key, i), "%q is a Diameter peer: %s is RADIUS only for now", n, list.key)
			}
		}
	}
	if a.RemoteAuth() && !slices.ContainsFunc(c.Auth.Algorithms, func(s string) bool { return strings.EqualFold(s, "MD5") }) {
		return invalid("auth.algorithms", "digests checked by RADIUS need MD5 (FreeRADIUS's digest module knows no other)")
	}
	switch {
	case a.AuthorizationFailure != "closed" && a.AuthorizationFailure != "open":
		return invalid("aaa.authorization_failure", "must be closed (refuse calls when no server answers) or open")
	case len(a.Accounting) > 0 && !c.Billing.Enabled:
		return invalid("aaa.accounting", "needs [billing] enabled = true: Acct-Session-Id is the CDR's record id, "+
			"and accounting records wait in the CDR spool until delivered")
	case a.CreditControlTx.Duration != 0 && (a.CreditControlTx.Duration < time.Second || a.CreditControlTx.Duration > 30*time.Second):
		return invalid("aaa.credit_control_tx", "must be 0 (%s) or between 1s and 30s", DefaultCreditControlTx)
	case a.InterimInterval.Duration != 0 && a.InterimInterval.Duration < 10*time.Second:
		return invalid("aaa.interim_interval", "must be 0 (none) or at least 10s")
	}
	return nil
}

// RemoteAuth tells whether some digests are checked by RADIUS servers.
func (a AAA) RemoteAuth() bool { return len(a.RegistrationAuth) > 0 || len(a.CallAuth) > 0 }

func validIdentity(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func validAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
