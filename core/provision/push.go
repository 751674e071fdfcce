package provision

import (
	"fmt"
	"net"
	"time"
)

// Duration is a time.Duration written as "30s", "5m".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (use e.g. 30s, 5m): %q", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in the same form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Push is where closed CDR files are uploaded over FTP (docs/cdr.md): the
// config file's [billing.push], changed at run time as billing_push.
type Push struct {
	Servers  []string `toml:"servers" json:"servers,omitempty"` // host:port, tried in order; empty: no push
	User     string   `toml:"user" json:"user,omitempty"`
	Password string   `toml:"password" json:"password,omitempty"` // no default; never logged
	Dir      string   `toml:"dir" json:"dir,omitempty"`           // remote directory; "" = the login directory
	TLS      string   `toml:"tls" json:"tls,omitempty"`           // none or explicit (AUTH TLS, FTPS)
	CAFile   string   `toml:"ca_file" json:"ca_file,omitempty"`   // PEM certificates that sign the server's; "" = the system's
	Insecure bool     `toml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
	Timeout  Duration `toml:"timeout" json:"timeout"`
	RetryMin Duration `toml:"retry_min" json:"retry_min"`
	RetryMax Duration `toml:"retry_max" json:"retry_max"`
}

// DefaultPush is no push, with the defaults of its timers.
func DefaultPush() Push {
	return Push{TLS: "none", Timeout: Duration{Duration: 30 * time.Second}, RetryMin: Duration{Duration: 5 * time.Second},
		RetryMax: Duration{Duration: 5 * time.Minute}}
}

// Check checks the push settings (keys as the file writes them).
func (p *Push) Check() error {
	for i, s := range p.Servers {
		if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
			return refuseAt(fmt.Sprintf("billing.push.servers[%d]", i), "%q is not host:port", s)
		}
	}
	switch {
	case len(p.Servers) > 0 && (p.User == "" || p.Password == ""):
		return refuseAt("billing.push.user", "push servers need a user and a password (there is no default)")
	case p.TLS != "none" && p.TLS != "explicit":
		return refuseAt("billing.push.tls", "must be none or explicit")
	case p.Timeout.Duration < time.Second:
		return refuseAt("billing.push.timeout", "must be at least 1s")
	case p.RetryMin.Duration < time.Second || p.RetryMax.Duration < p.RetryMin.Duration:
		return refuseAt("billing.push.retry_min", "need 1s <= retry_min <= retry_max")
	}
	return nil
}
