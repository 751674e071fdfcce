package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// SNMP configures the agent (docs/snmp.md). No community or user exists
// until the operator writes one.
type SNMP struct {
	Listen      string          `toml:"listen"` // IP:port, e.g. the management address's :161; "" = no agent
	Contact     string          `toml:"contact"`
	Location    string          `toml:"location"`
	Communities []SNMPCommunity `toml:"community"`
	Users       []SNMPUser      `toml:"user"`
	Targets     []SNMPTarget    `toml:"target"`
}

// SNMPTarget is a manager that gets notifications: SNMPv2c with a
// community, or SNMPv3 traps as one of the [[snmp.user]]s.
type SNMPTarget struct {
	Address   string `toml:"address"`   // IP or IP:port (162)
	Community string `toml:"community"` // SNMPv2c: 8 characters at least
	User      string `toml:"user"`      // SNMPv3: a [[snmp.user]]'s name
	Inform    bool   `toml:"inform"`    // SNMPv2c: acknowledged and retried; false: traps
}

// AddrPort is the target's address with its port (162 when none).
func (t SNMPTarget) AddrPort() (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(t.Address); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(t.Address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, 162), nil
}

// SNMPCommunity is an SNMPv2c community.
type SNMPCommunity struct {
	Name    string   `toml:"name"`    // a secret: 8 characters at least, never "public" or "private"
	Access  string   `toml:"access"`  // read (default) or write
	Sources []string `toml:"sources"` // addresses or CIDRs allowed to use it; required
}

// SNMPUser is an SNMPv3 USM user.
type SNMPUser struct {
	Name         string `toml:"name"`
	Auth         string `toml:"auth"`          // SHA-224, SHA-256 (default), SHA-384, SHA-512
	AuthPassword string `toml:"auth_password"` // 8 characters at least (RFC 3414 §11.2)
	Priv         string `toml:"priv"`          // AES (default), AES-192, AES-256, or none (authNoPriv)
	PrivPassword string `toml:"priv_password"`
	Access       string `toml:"access"` // read (default) or write
}

// SNMP's protocols by their configuration names.
var (
	SNMPAuths = []string{"SHA-224", "SHA-256", "SHA-384", "SHA-512"}
	SNMPPrivs = []string{"AES", "AES-192", "AES-256", "none"}
)

func (c *Config) validateSNMP() error {
	s := c.SNMP
	if s.Listen != "" {
		if ap, err := netip.ParseAddrPort(s.Listen); err != nil || ap.Port() == 0 {
			return invalid("snmp.listen", "%q is not IP:port (names are not resolved)", s.Listen)
		}
	}
	for i, cm := range s.Communities {
		key := func(k string) string { return fmt.Sprintf("snmp.community[%d].%s", i, k) }
		switch {
		case len(cm.Name) < 8 || strings.EqualFold(cm.Name, "public") || strings.EqualFold(cm.Name, "private"):
			return invalid(key("name"), "a community is a password: 8 characters at least, not public or private")
		case cm.Access != "" && cm.Access != "read" && cm.Access != "write":
			return invalid(key("access"), "%q: read or write", cm.Access)
		case len(cm.Sources) == 0:
			return invalid(key("sources"), "list the addresses or CIDRs that may use the community")
		}
		for j, src := range cm.Sources {
			if _, err := ParsePrefix(src); err != nil {
				return invalid(fmt.Sprintf("snmp.community[%d].sources[%d]", i, j), "%q is not an address or CIDR", src)
			}
		}
	}
	for i, tg := range s.Targets {
		key := func(k string) string { return fmt.Sprintf("snmp.target[%d].%s", i, k) }
		if ap, err := tg.AddrPort(); err != nil || ap.Port() == 0 {
			return invalid(key("address"), "%q is not IP or IP:port (names are not resolved)", tg.Address)
		}
		switch {
		case tg.User != "" && tg.Community != "":
			return invalid(key("user"), "a target is SNMPv2c (community) or SNMPv3 (user), not both")
		case tg.User != "" && !slices.ContainsFunc(s.Users, func(u SNMPUser) bool { return u.Name == tg.User }):
			return invalid(key("user"), "no [[snmp.user]] is named %q", tg.User)
		case tg.User != "" && tg.Inform:
			return invalid(key("inform"), "SNMPv3 targets get traps only for now")
		case tg.User == "" && len(tg.Community) < 8:
			return invalid(key("community"), "8 characters at least (or user, for SNMPv3)")
		}
	}
	names := map[string]bool{}
	for i, u := range s.Users {
		key := func(k string) string { return fmt.Sprintf("snmp.user[%d].%s", i, k) }
		switch {
		case u.Name == "" || len(u.Name) > 32 || names[u.Name]:
			return invalid(key("name"), "%q: every user needs a name of its own, 1 to 32 characters", u.Name)
		case u.Auth != "" && !slices.Contains(SNMPAuths, u.Auth):
			return invalid(key("auth"), "%q: one of %s", u.Auth, strings.Join(SNMPAuths, ", "))
		case len(u.AuthPassword) < 8:
			return invalid(key("auth_password"), "8 characters at least")
		case u.Priv != "" && !slices.Contains(SNMPPrivs, u.Priv):
			return invalid(key("priv"), "%q: one of %s", u.Priv, strings.Join(SNMPPrivs, ", "))
		case u.Priv != "none" && len(u.PrivPassword) < 8:
			return invalid(key("priv_password"), "8 characters at least (or priv = \"none\")")
		case u.Access != "" && u.Access != "read" && u.Access != "write":
			return invalid(key("access"), "%q: read or write", u.Access)
		}
		names[u.Name] = true
	}
	return nil
}

// Metrics configures the Prometheus endpoint (docs/snmp.md).
type Metrics struct {
	Listen  string   `toml:"listen"`  // IP:port, e.g. the management address's :9464; "" = none
	Sources []string `toml:"sources"` // addresses or CIDRs allowed to scrape; empty = any that reaches listen
}

func (c *Config) validateMetrics() error {
	m := c.Metrics
	if m.Listen != "" {
		if ap, err := netip.ParseAddrPort(m.Listen); err != nil || ap.Port() == 0 {
			return invalid("metrics.listen", "%q is not IP:port (names are not resolved)", m.Listen)
		}
	}
	for i, src := range m.Sources {
		if _, err := ParsePrefix(src); err != nil {
			return invalid(fmt.Sprintf("metrics.sources[%d]", i), "%q is not an address or CIDR", src)
		}
	}
	return nil
}

// CLI configures the command line's terminals (docs/cli.md).
type CLI struct {
	SSHListen    string   `toml:"ssh_listen"`    // IP:port, e.g. the management address's :2222; "" = none
	TelnetListen string   `toml:"telnet_listen"` // IP:port; "" = none (passwords cross in clear)
	Sources      []string `toml:"sources"`       // addresses or CIDRs that may connect; empty = any that reaches it
	IdleTimeout  Duration `toml:"idle_timeout"`  // a session without a command this long is closed; 0 = 15m
	// PasswordCost is bcrypt's cost for new passwords: 10 to 14, 0 = 12
	// (about 0.3 s a login on a server core; each step doubles it).
	PasswordCost int `toml:"password_cost"`
}

func (c *Config) validateCLI() error {
	l := c.CLI
	if l.SSHListen != "" {
		if ap, err := netip.ParseAddrPort(l.SSHListen); err != nil || ap.Port() == 0 {
			return invalid("cli.ssh_listen", "%q is not IP:port (names are not resolved)", l.SSHListen)
		}
	}
	if l.TelnetListen != "" {
		if ap, err := netip.ParseAddrPort(l.TelnetListen); err != nil || ap.Port() == 0 {
			return invalid("cli.telnet_listen", "%q is not IP:port (names are not resolved)", l.TelnetListen)
		}
	}
	for i, src := range l.Sources {
		if _, err := ParsePrefix(src); err != nil {
			return invalid(fmt.Sprintf("cli.sources[%d]", i), "%q is not an address or CIDR", src)
		}
	}
	if l.PasswordCost != 0 && (l.PasswordCost < 10 || l.PasswordCost > 14) {
		return invalid("cli.password_cost", "must be 0 (12) or 10 to 14")
	}
	if l.IdleTimeout.Duration < 0 {
		return invalid("cli.idle_timeout", "must not be negative")
	}
	return nil
}
