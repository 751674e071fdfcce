package provision

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// SNMP configures the agent (docs/snmp.md). No community or user exists
// until the operator writes one.
type SNMP struct {
	Listen      string          `toml:"listen" json:"listen,omitempty"` // IP:port, e.g. the management address's :161; "" = no agent
	Contact     string          `toml:"contact" json:"contact,omitempty"`
	Location    string          `toml:"location" json:"location,omitempty"`
	Communities []SNMPCommunity `toml:"community" json:"community,omitempty"`
	Users       []SNMPUser      `toml:"user" json:"user,omitempty"`
	Targets     []SNMPTarget    `toml:"target" json:"target,omitempty"`
}

// SNMPTarget is a manager that gets notifications: SNMPv2c with a
// community, or SNMPv3 traps as one of the [[snmp.user]]s.
type SNMPTarget struct {
	Address   string `toml:"address" json:"address,omitempty" key:"true"` // IP or IP:port (162)
	Community string `toml:"community" json:"community,omitempty"`        // SNMPv2c: 8 characters at least
	User      string `toml:"user" json:"user,omitempty"`                  // SNMPv3: a [[snmp.user]]'s name
	Inform    bool   `toml:"inform" json:"inform,omitempty"`              // acknowledged and retried; false: traps
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
	Name    string   `toml:"name" json:"name,omitempty"`       // a secret: 8 characters at least, never "public" or "private"
	Access  string   `toml:"access" json:"access,omitempty"`   // read (default) or write
	Sources []string `toml:"sources" json:"sources,omitempty"` // addresses or CIDRs allowed to use it; required
}

// SNMPUser is an SNMPv3 USM user.
type SNMPUser struct {
	Name         string `toml:"name" json:"name,omitempty"`
	Auth         string `toml:"auth" json:"auth,omitempty"`                   // SHA-224, SHA-256 (default), SHA-384, SHA-512
	AuthPassword string `toml:"auth_password" json:"auth_password,omitempty"` // 8 characters at least (RFC 3414 §11.2)
	Priv         string `toml:"priv" json:"priv,omitempty"`                   // AES (default), AES-192, AES-256, or none (authNoPriv)
	PrivPassword string `toml:"priv_password" json:"priv_password,omitempty"`
	Access       string `toml:"access" json:"access,omitempty"` // read (default) or write
}

// SNMP's protocols by their configuration names.
var (
	SNMPAuths = []string{"SHA-224", "SHA-256", "SHA-384", "SHA-512"}
	SNMPPrivs = []string{"AES", "AES-192", "AES-256", "none"}
)

// Check checks the agent's settings: the first problem, its key as
// the file writes it ("snmp.user[0].auth").
func (s *SNMP) Check() error {
	if s.Listen != "" {
		if ap, err := netip.ParseAddrPort(s.Listen); err != nil || ap.Port() == 0 {
			return refuseAt("snmp.listen", "%q is not IP:port (names are not resolved)", s.Listen)
		}
	}
	for i, cm := range s.Communities {
		key := func(k string) string { return fmt.Sprintf("snmp.community[%d].%s", i, k) }
		switch {
		case len(cm.Name) < 8 || strings.EqualFold(cm.Name, "public") || strings.EqualFold(cm.Name, "private"):
			return refuseAt(key("name"), "a community is a password: 8 characters at least, not public or private")
		case cm.Access != "" && cm.Access != "read" && cm.Access != "write":
			return refuseAt(key("access"), "%q: read or write", cm.Access)
		case len(cm.Sources) == 0:
			return refuseAt(key("sources"), "list the addresses or CIDRs that may use the community")
		}
		for j, src := range cm.Sources {
			if _, err := ParsePrefix(src); err != nil {
				return refuseAt(fmt.Sprintf("snmp.community[%d].sources[%d]", i, j), "%q is not an address or CIDR", src)
			}
		}
	}
	for i, tg := range s.Targets {
		key := func(k string) string { return fmt.Sprintf("snmp.target[%d].%s", i, k) }
		if ap, err := tg.AddrPort(); err != nil || ap.Port() == 0 {
			return refuseAt(key("address"), "%q is not IP or IP:port (names are not resolved)", tg.Address)
		}
		switch {
		case tg.User != "" && tg.Community != "":
			return refuseAt(key("user"), "a target is SNMPv2c (community) or SNMPv3 (user), not both")
		case tg.User != "" && !slices.ContainsFunc(s.Users, func(u SNMPUser) bool { return u.Name == tg.User }):
			return refuseAt(key("user"), "no [[snmp.user]] is named %q", tg.User)
		case tg.User == "" && len(tg.Community) < 8:
			return refuseAt(key("community"), "8 characters at least (or user, for SNMPv3)")
		}
	}
	names := map[string]bool{}
	for i, u := range s.Users {
		key := func(k string) string { return fmt.Sprintf("snmp.user[%d].%s", i, k) }
		switch {
		case u.Name == "" || len(u.Name) > 32 || names[u.Name]:
			return refuseAt(key("name"), "%q: every user needs a name of its own, 1 to 32 characters", u.Name)
		case u.Auth != "" && !slices.Contains(SNMPAuths, u.Auth):
			return refuseAt(key("auth"), "%q: one of %s", u.Auth, strings.Join(SNMPAuths, ", "))
		case len(u.AuthPassword) < 8:
			return refuseAt(key("auth_password"), "8 characters at least")
		case u.Priv != "" && !slices.Contains(SNMPPrivs, u.Priv):
			return refuseAt(key("priv"), "%q: one of %s", u.Priv, strings.Join(SNMPPrivs, ", "))
		case u.Priv != "none" && len(u.PrivPassword) < 8:
			return refuseAt(key("priv_password"), "8 characters at least (or priv = \"none\")")
		case u.Access != "" && u.Access != "read" && u.Access != "write":
			return refuseAt(key("access"), "%q: read or write", u.Access)
		}
		names[u.Name] = true
	}
	return nil
}

func refuseAt(key, format string, a ...any) error {
	return &KeyError{Key: key, Reason: fmt.Sprintf(format, a...)}
}
