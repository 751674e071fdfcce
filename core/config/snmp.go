package config

import (
	"fmt"
	"net/netip"

	"github.com/softswitch/softswitch/core/provision"
)

// The SNMP agent's settings are provisioning (core/provision): changed at
// run time, imported from [snmp] like the other provisioning sections.
type (
	SNMP          = provision.SNMP
	SNMPCommunity = provision.SNMPCommunity
	SNMPUser      = provision.SNMPUser
	SNMPTarget    = provision.SNMPTarget
)

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
