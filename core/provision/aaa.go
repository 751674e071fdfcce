package provision

import (
	"fmt"
	"net/netip"
	"time"
)

// AAA says which servers authenticate, authorise and account
// (docs/aaa.md): RADIUS servers and Diameter peers by name, tried in the
// order listed. It is provisioning: the file's [aaa], changed at run time
// as the command line's aaa lines.
type AAA struct {
	RegistrationAuth []string `toml:"registration_auth" json:"registration_auth,omitempty"` // REGISTER digests checked by these; empty: the local table
	CallAuth         []string `toml:"call_auth" json:"call_auth,omitempty"`                 // INVITE digests checked by these; empty: the local table
	// CallAuthorization: subscribers' calls authorised by these (a
	// calling card's granted time); empty: every authenticated call goes.
	CallAuthorization []string `toml:"call_authorization" json:"call_authorization,omitempty"`
	// AuthorizationFailure: when no server answers, "closed" refuses the
	// call (503, cause 41), "open" lets it go on without a limit.
	AuthorizationFailure string `toml:"authorization_failure" json:"authorization_failure,omitempty"`
	// CreditControlTx: how long a credit-control request waits for one
	// peer's answer (RFC 4006 Tx); 0: DefaultCreditControlTx.
	CreditControlTx Duration       `toml:"credit_control_tx" json:"credit_control_tx"`
	Accounting      []string       `toml:"accounting" json:"accounting,omitempty"`   // servers, by name, tried in order; empty: no accounting
	InterimInterval Duration       `toml:"interim_interval" json:"interim_interval"` // Interim-Update period; 0: none
	Radius          []RadiusServer `toml:"radius" json:"radius,omitempty"`

	// Diameter: the switch's identity, and its peers (RFC 6733).
	OriginHost       string         `toml:"origin_host" json:"origin_host,omitempty"`             // e.g. ss1.operator.net
	OriginRealm      string         `toml:"origin_realm" json:"origin_realm,omitempty"`           // e.g. operator.net
	DestinationRealm string         `toml:"destination_realm" json:"destination_realm,omitempty"` // "" = origin_realm
	Diameter         []DiameterPeer `toml:"diameter" json:"diameter,omitempty"`
}

// DefaultAAA is no AAA server: the local tables authenticate, calls are
// not authorised, nothing is accounted.
func DefaultAAA() AAA { return AAA{AuthorizationFailure: "closed"} }

// DefaultCreditControlTx is RFC 4006 §13's recommended Tx.
const DefaultCreditControlTx = 10 * time.Second

// FailOpen tells whether calls go on when no authorising server answers.
func (a AAA) FailOpen() bool { return a.AuthorizationFailure == "open" }

// DiameterPeer is one Diameter server.
type DiameterPeer struct {
	Name     string   `toml:"name" json:"name"`
	Address  string   `toml:"address" json:"address,omitempty"` // IP:port (no DNS at run time); TCP
	Watchdog Duration `toml:"watchdog" json:"watchdog"`         // Tw, a DWR after this long idle; 0 = 30s
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
// (checked: a list names one kind only).
func (a AAA) AccountingDiameter() bool {
	if len(a.Accounting) == 0 {
		return false
	}
	_, ok := a.DiameterPeer(a.Accounting[0])
	return ok
}

// RadiusServer is one RADIUS server.
type RadiusServer struct {
	Name     string   `toml:"name" json:"name"`
	Address  string   `toml:"address" json:"address,omitempty"`     // an IP address (no DNS at run time)
	AuthPort int      `toml:"auth_port" json:"auth_port,omitempty"` // 0 = 1812
	AcctPort int      `toml:"acct_port" json:"acct_port,omitempty"` // 0 = 1813
	Secret   string   `toml:"secret" json:"secret,omitempty"`       // shared secret, 16 characters at least; no default; never logged
	Timeout  Duration `toml:"timeout" json:"timeout"`               // the first try's wait, doubled at each retry; 0 = 1s
	Tries    int      `toml:"tries" json:"tries,omitempty"`         // sends before the next server; 0 = 3
	DeadTime Duration `toml:"dead_time" json:"dead_time"`           // a server that answered none is passed over this long; 0 = 30s
}

// Addrs are the server's authentication and accounting addresses.
func (r RadiusServer) Addrs() (auth, acct netip.AddrPort) {
	ip, _ := netip.ParseAddr(r.Address) // checked
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

// RemoteAuth tells whether some digests are checked by RADIUS servers.
func (a AAA) RemoteAuth() bool { return len(a.RegistrationAuth) > 0 || len(a.CallAuth) > 0 }

// minSecret is the shortest shared secret taken (RFC 3579 §4.3.3 asks for
// 16 octets at least: the secret is all that keys the authenticators).
const minSecret = 16

// AAABootstrap is what the AAA settings depend on outside provisioning.
type AAABootstrap struct {
	Billing   bool // [billing] enabled: accounting records wait in the CDR spool
	DigestMD5 bool // [auth] algorithms offers MD5 (FreeRADIUS's digest module knows no other)
}

// Check checks the AAA settings (keys as the file writes them).
func (a *AAA) Check(b AAABootstrap) error {
	seen := map[string]bool{}
	for i, r := range a.Radius {
		key := func(k string) string { return fmt.Sprintf("aaa.radius[%d].%s", i, k) }
		switch {
		case r.Name == "" || seen[r.Name]:
			return refuseAt(key("name"), "%q: every AAA server needs a name of its own", r.Name)
		case !validAddr(r.Address):
			return refuseAt(key("address"), "%q is not an IP address (names are not resolved at run time)", r.Address)
		case r.AuthPort < 0 || r.AuthPort > 65535:
			return refuseAt(key("auth_port"), "must be a port (0: 1812)")
		case r.AcctPort < 0 || r.AcctPort > 65535:
			return refuseAt(key("acct_port"), "must be a port (0: 1813)")
		case len(r.Secret) < minSecret:
			return refuseAt(key("secret"), "must be at least %d characters (there is no default)", minSecret)
		case r.Timeout.Duration < 0 || r.Timeout.Duration > 30*time.Second:
			return refuseAt(key("timeout"), "must be 0 (1s) to 30s")
		case r.Tries < 0 || r.Tries > 10:
			return refuseAt(key("tries"), "must be 0 (3) to 10")
		case r.DeadTime.Duration < 0:
			return refuseAt(key("dead_time"), "must be 0 (30s) or more")
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
			return refuseAt(key("name"), "%q: every AAA server needs a name of its own", d.Name)
		case err != nil || ap.Port() == 0:
			return refuseAt(key("address"), "%q is not IP:port (names are not resolved at run time)", d.Address)
		case d.Watchdog.Duration != 0 && d.Watchdog.Duration < 6*time.Second:
			return refuseAt(key("watchdog"), "must be 0 (30s) or at least 6s (RFC 3539)")
		}
		seen[d.Name] = true
	}
	if len(a.Diameter) > 0 && (!validIdentity(a.OriginHost) || !validIdentity(a.OriginRealm)) {
		return refuseAt("aaa.origin_host", "Diameter peers need origin_host and origin_realm (DiameterIdentity, e.g. ss1.operator.net)")
	}
	if a.DestinationRealm != "" && !validIdentity(a.DestinationRealm) {
		return refuseAt("aaa.destination_realm", "%q is not a realm", a.DestinationRealm)
	}
	for _, list := range []struct {
		key   string
		names []string
	}{{"registration_auth", a.RegistrationAuth}, {"call_auth", a.CallAuth},
		{"call_authorization", a.CallAuthorization}, {"accounting", a.Accounting}} {
		for i, n := range list.names {
			key := fmt.Sprintf("aaa.%s[%d]", list.key, i)
			switch {
			case !seen[n]:
				return refuseAt(key, "no RADIUS server or Diameter peer is named %q", n)
			case radius[n] != radius[list.names[0]]:
				return refuseAt(key, "%q: one list names RADIUS servers or Diameter peers, not both", n)
			case !radius[n] && list.key != "accounting" && list.key != "call_authorization":
				return refuseAt(key, "%q is a Diameter peer: %s is RADIUS only for now", n, list.key)
			}
		}
	}
	switch {
	case a.RemoteAuth() && !b.DigestMD5:
		key := "aaa.registration_auth"
		if len(a.RegistrationAuth) == 0 {
			key = "aaa.call_auth"
		}
		return refuseAt(key, "digests checked by RADIUS need MD5 in [auth] algorithms (FreeRADIUS's digest module knows no other)")
	case a.AuthorizationFailure != "" && a.AuthorizationFailure != "closed" && a.AuthorizationFailure != "open":
		return refuseAt("aaa.authorization_failure", "must be closed (refuse calls when no server answers) or open")
	case len(a.Accounting) > 0 && !b.Billing:
		return refuseAt("aaa.accounting", "needs [billing] enabled = true: Acct-Session-Id is the CDR's record id, "+
			"and accounting records wait in the CDR spool until delivered")
	case a.CreditControlTx.Duration != 0 && (a.CreditControlTx.Duration < time.Second || a.CreditControlTx.Duration > 30*time.Second):
		return refuseAt("aaa.credit_control_tx", "must be 0 (%s) or between 1s and 30s", DefaultCreditControlTx)
	case a.InterimInterval.Duration != 0 && a.InterimInterval.Duration < 10*time.Second:
		return refuseAt("aaa.interim_interval", "must be 0 (none) or at least 10s")
	}
	return nil
}

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
