// Package firstboot configures an appliance node the first time it boots:
// one image serves both servers of a pair, and what differs between them
// (host name, addresses, the pair's virtual address and this node's
// priority, the admin's SSH key) comes from SMBIOS OEM strings, the kernel
// command line or a small file, as "softswitch.KEY=VALUE" pairs. From
// them it writes the network files, the firewall, the [ha] and [dns]
// parts of the softswitch configuration and the admin account
// (docs/install.md, "First boot").
package firstboot

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every key; other OEM strings and kernel parameters are
// not ours and are ignored.
const Prefix = "softswitch."

// Value is one KEY=VALUE with where it came from, for error messages.
type Value struct {
	Where string // "SMBIOS OEM string 3", "kernel command line", "/etc/softswitch/node.conf:4"
	Key   string // without the prefix
	Val   string
}

// Settings is a node's first-boot configuration.
type Settings struct {
	Hostname          string
	Service           Interface // SIP and VRRP
	Management        Interface // SSH, Telnet CLI, SNMP; Name "" = the service interface
	DNS               []netip.Addr
	HA                *HA // nil: a single node, no keepalived
	AdminKeys         []string
	AdminPasswordHash string
	// Set records which source set each key (for the log; no values, as
	// some are secrets).
	Set map[string]string
}

// Interface is one network interface's addressing.
type Interface struct {
	Name    string
	Address netip.Prefix // invalid: DHCP
	Gateway netip.Addr
}

// HA is this node's part of the pair.
type HA struct {
	VirtualAddress netip.Prefix
	Priority       int
	RouterID       int
	Peers          []netip.Addr
	AdvertInterval time.Duration
	// The softswitch check; zero: the softswitch's defaults.
	CheckInterval, CheckTimeout time.Duration
	CheckFailures               int
	// ReplicationKey, when set, makes the nodes replicate their state
	// over the service LAN (docs/ha.md): 32 characters or more, the same
	// on both nodes; it needs the peer's and this node's addresses.
	ReplicationKey string
}

// Split reports whether management has an interface of its own.
func (s Settings) Split() bool {
	return s.Management.Name != "" && s.Management.Name != s.Service.Name
}

// Configured reports whether any site value was given at all; without
// one the node keeps the image's defaults (DHCP on every interface).
func (s Settings) Configured() bool {
	for k := range s.Set {
		if !strings.HasPrefix(k, "admin.") {
			return true
		}
	}
	return false
}

// keys lists every key with its parser; the parser sees the settings so
// far so that later sources override earlier ones.
var keys = map[string]func(s *Settings, v string) error{
	"hostname": func(s *Settings, v string) error {
		if !validHostname(v) {
			return fmt.Errorf("%q is not a host name (letters, digits, '-', up to 63)", v)
		}
		s.Hostname = v
		return nil
	},
	"service.interface":    ifName(func(s *Settings) *Interface { return &s.Service }),
	"service.address":      prefix(func(s *Settings) *netip.Prefix { return &s.Service.Address }),
	"service.gateway":      addr(func(s *Settings) *netip.Addr { return &s.Service.Gateway }),
	"management.interface": ifName(func(s *Settings) *Interface { return &s.Management }),
	"management.address":   prefix(func(s *Settings) *netip.Prefix { return &s.Management.Address }),
	"management.gateway":   addr(func(s *Settings) *netip.Addr { return &s.Management.Gateway }),
	"dns": func(s *Settings, v string) error {
		as, err := addrList(v)
		s.DNS = as
		return err
	},
	"ha.virtual_address": func(s *Settings, v string) error {
		return prefix(func(s *Settings) *netip.Prefix { return &s.ha().VirtualAddress })(s, v)
	},
	"ha.priority": func(s *Settings, v string) error {
		return intIn(v, 1, 254, &s.ha().Priority)
	},
	"ha.router_id": func(s *Settings, v string) error {
		return intIn(v, 1, 255, &s.ha().RouterID)
	},
	"ha.peer": func(s *Settings, v string) error {
		as, err := addrList(v)
		s.ha().Peers = as
		return err
	},
	"ha.replication_key": func(s *Settings, v string) error {
		if len(v) < 32 || strings.ContainsAny(v, "\"\\\n") {
			return fmt.Errorf("the replication key must be 32 characters or more, without quotes or backslashes (it is a secret: make it at random)")
		}
		s.ha().ReplicationKey = v
		return nil
	},
	"ha.advert_interval": func(s *Settings, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Millisecond || d > 40*time.Second {
			return fmt.Errorf("%q is not a duration of 10ms..40s (e.g. 1s, 100ms)", v)
		}
		s.ha().AdvertInterval = d
		return nil
	},
	"ha.check_interval": func(s *Settings, v string) error {
		return duration(v, 100*time.Millisecond, time.Minute, &s.ha().CheckInterval)
	},
	"ha.check_timeout": func(s *Settings, v string) error {
		return duration(v, 100*time.Millisecond, time.Minute, &s.ha().CheckTimeout)
	},
	"ha.check_failures": func(s *Settings, v string) error {
		return intIn(v, 1, 10, &s.ha().CheckFailures)
	},
	"admin.ssh_key": func(s *Settings, v string) error {
		f := strings.Fields(v)
		if len(f) < 2 || !strings.HasPrefix(f[0], "ssh-") && !strings.HasPrefix(f[0], "ecdsa-") && !strings.HasPrefix(f[0], "sk-") {
			return fmt.Errorf("not an OpenSSH public key (\"ssh-ed25519 AAAA... comment\")")
		}
		s.AdminKeys = append(s.AdminKeys, strings.Join(f, " "))
		return nil
	},
	"admin.password_hash": func(s *Settings, v string) error {
		// crypt(3) formats: $y$ (yescrypt), $6$ (SHA-512), $5$ (SHA-256).
		if !strings.HasPrefix(v, "$y$") && !strings.HasPrefix(v, "$6$") && !strings.HasPrefix(v, "$5$") || strings.ContainsAny(v, ": \t") {
			return fmt.Errorf("not a crypt hash ($y$..., $6$... as made by mkpasswd); never a plain password")
		}
		s.AdminPasswordHash = v
		return nil
	},
}

// Keys is the sorted list of keys, for errors and docs.
func Keys() []string {
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *Settings) ha() *HA {
	if s.HA == nil {
		s.HA = &HA{RouterID: 51, AdvertInterval: time.Second}
	}
	return s.HA
}

// Parse applies the values in order (a later one wins) and checks the
// whole. Every error names where the value came from.
func Parse(values []Value) (Settings, error) {
	s := Settings{Service: Interface{Name: "eth0"}, Set: map[string]string{}}
	for _, v := range values {
		p, ok := keys[v.Key]
		if !ok {
			return s, fmt.Errorf("%s: unknown key %s%s (known: %s)", v.Where, Prefix, v.Key, strings.Join(Keys(), ", "))
		}
		if err := p(&s, strings.TrimSpace(v.Val)); err != nil {
			return s, fmt.Errorf("%s: %s%s: %v", v.Where, Prefix, v.Key, err)
		}
		s.Set[v.Key] = v.Where
	}
	return s, s.check()
}

func (s Settings) check() error {
	if s.HA != nil {
		if !s.HA.VirtualAddress.IsValid() {
			return fmt.Errorf("%sha.virtual_address is required when any ha key is set (%s)", Prefix, s.where("ha."))
		}
		if s.HA.Priority == 0 {
			return fmt.Errorf("%sha.priority is required for a node of a pair: 1..254, the higher is active (e.g. 150 on one node, 100 on the other)", Prefix)
		}
		if s.Service.Address.IsValid() && s.Service.Address.Addr() == s.HA.VirtualAddress.Addr() {
			return fmt.Errorf("%sha.virtual_address %s is this node's own service address", Prefix, s.HA.VirtualAddress.Addr())
		}
		if s.HA.ReplicationKey != "" && (len(s.HA.Peers) != 1 || !s.Service.Address.IsValid()) {
			return fmt.Errorf("%sha.replication_key needs %sha.peer (the other node's one address) and %sservice.address (this node's): the nodes replicate between them", Prefix, Prefix, Prefix)
		}
	}
	if s.Service.Gateway.IsValid() && !s.Service.Address.IsValid() {
		return fmt.Errorf("%sservice.gateway needs %sservice.address (with DHCP the gateway comes from DHCP)", Prefix, Prefix)
	}
	if s.Management.Gateway.IsValid() && !s.Management.Address.IsValid() {
		return fmt.Errorf("%smanagement.gateway needs %smanagement.address", Prefix, Prefix)
	}
	if s.Management.Gateway.IsValid() && s.Service.Gateway.IsValid() {
		return fmt.Errorf("%sservice.gateway and %smanagement.gateway: give one default gateway", Prefix, Prefix)
	}
	if (s.Management.Address.IsValid() || s.Management.Gateway.IsValid()) && !s.Split() {
		return fmt.Errorf("%smanagement.address needs %smanagement.interface, other than the service interface %s", Prefix, Prefix, s.Service.Name)
	}
	return nil
}

// where names the sources of the keys with prefix p.
func (s Settings) where(p string) string {
	var w []string
	for k, src := range s.Set {
		if strings.HasPrefix(k, p) {
			w = append(w, Prefix+k+" from "+src)
		}
	}
	slices.Sort(w)
	return strings.Join(w, "; ")
}

func ifName(f func(*Settings) *Interface) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		if v == "" || len(v) > 15 || strings.ContainsAny(v, "/: \t") || v == "lo" {
			return fmt.Errorf("%q is not a network interface name (eth0, eth1, ...)", v)
		}
		f(s).Name = v
		return nil
	}
}

func prefix(f func(*Settings) *netip.Prefix) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		p, err := netip.ParsePrefix(v)
		if err != nil || !p.Addr().Is4() && !p.Addr().Is6() || p.Addr().IsUnspecified() || p.Bits() == 0 {
			return fmt.Errorf("%q is not an address with its prefix length, like 192.0.2.11/24", v)
		}
		*f(s) = p
		return nil
	}
}

func addr(f func(*Settings) *netip.Addr) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		a, err := netip.ParseAddr(v)
		if err != nil || a.IsUnspecified() {
			return fmt.Errorf("%q is not an IP address", v)
		}
		*f(s) = a
		return nil
	}
}

func addrList(v string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(v, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil || a.IsUnspecified() {
			return nil, fmt.Errorf("%q is not a comma-separated list of IP addresses", v)
		}
		out = append(out, a)
	}
	return out, nil
}

func intIn(v string, lo, hi int, dst *int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("%q is not a number %d..%d", v, lo, hi)
	}
	*dst = n
	return nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 63 || h[0] == '-' || h[len(h)-1] == '-' {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func duration(v string, lo, hi time.Duration, d *time.Duration) error {
	x, err := time.ParseDuration(v)
	if err != nil || x < lo || x > hi {
		return fmt.Errorf("%q is not a duration of %v..%v (e.g. 2s, 500ms)", v, lo, hi)
	}
	*d = x
	return nil
}
