// Package config holds the softswitch's bootstrap settings: embedded
// defaults, overridden by one TOML file, overridden by command-line flags.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"golang.org/x/crypto/bcrypt"

	"github.com/softswitch/softswitch/core/provision"
)

// Duration is a time.Duration written as "30s", "5m" in the file.
type Duration = provision.Duration

// Config is the whole bootstrap configuration.
type Config struct {
	SIP       SIP       `toml:"sip"`
	Registrar Registrar `toml:"registrar"`
	Auth      Auth      `toml:"auth"`
	Call      Call      `toml:"call"`
	Admission Admission `toml:"admission"`
	Overload  Overload  `toml:"overload"`
	Billing   Billing   `toml:"billing"`
	Metrics   Metrics   `toml:"metrics"`
	CLI       CLI       `toml:"cli"`
	Data      Data      `toml:"data"`
	Log       Log       `toml:"log"`
	Runtime   Runtime   `toml:"runtime"`
	HA        HA        `toml:"ha"`
	DNS       DNS       `toml:"dns"`

	// Trunk registrations upstream: bootstrap, from the file only (their
	// passwords are never stored by the switch).
	Registrations []provision.Registration `toml:"registration"`

	// The provisioning sections (subscribers, trusted peers, number
	// analysis, routes, groups, gateways, lists, tariffs): imported into
	// the running configuration as docs/cli.md says, checked there by the
	// parts that use them (core/provision).
	provision.Doc
}

// DNS is where gateway domain names are resolved (RFC 3263).
type DNS struct {
	Servers []string `toml:"servers"` // host:port; empty = the servers of /etc/resolv.conf
}

// SIP is the signalling listener.
type SIP struct {
	Listen    string `toml:"listen"`
	Advertise string `toml:"advertise"`
	Realm     string `toml:"realm"`
	UserAgent string `toml:"user_agent"`
	// T1 is RFC 3261's round-trip estimate: retransmissions start at T1,
	// transactions time out after 64*T1 (Timer B, F), and a transaction
	// the switch gives up is ended 64*T1 later.
	T1 Duration `toml:"t1"`
}

// Registrar bounds registration intervals.
type Registrar struct {
	MinExpires     int `toml:"min_expires"`
	MaxExpires     int `toml:"max_expires"`
	DefaultExpires int `toml:"default_expires"`
}

// Auth configures digest authentication.
type Auth struct {
	NonceLifetime Duration `toml:"nonce_lifetime"`
	Algorithms    []string `toml:"algorithms"`
	// Authentication failures before a ban (docs/security.md): from one
	// source (IPv4 address, IPv6 /64) in a sliding minute; for one user
	// from one source in ten minutes; for one user from all sources in
	// ten minutes.
	MaxFailures        int `toml:"max_failures_per_minute"`
	MaxUserFailures    int `toml:"max_failures_per_user"`
	MaxAccountFailures int `toml:"max_failures_per_account"`
	// BanDurations are the lengths of a key's first, second... ban; the
	// last repeats. A key's count is forgiven after a day without a ban.
	BanDurations []Duration `toml:"ban_durations"`
	// LoginMemory: a successful login keeps its user working from that
	// source through bans of the source or of the user for this long.
	LoginMemory Duration `toml:"login_memory"`
}

// Call configures the B2BUA.
type Call struct {
	NoAnswerTimeout Duration `toml:"no_answer_timeout"`
	// TimerC gives up a fork silent for this long since its INVITE or
	// its last provisional (RFC 3261 §16.6).
	TimerC         Duration `toml:"timer_c"`
	SessionExpires int      `toml:"session_expires"`
	MinSE          int      `toml:"min_se"`
	MaxForwards    int      `toml:"max_forwards"`
}

// Admission limits the request rate of each source address (before
// parsing; docs/security.md). A rate of 0 means no limit.
type Admission struct {
	Rate        float64  `toml:"rate"`         // requests per second from one source
	Burst       float64  `toml:"burst"`        // requests at once above the rate
	TrustedRate float64  `toml:"trusted_rate"` // the rate of each trusted peer; 0: unlimited
	Block       Duration `toml:"block"`        // how long a source over its rate is blocked
	MaxSources  int      `toml:"max_sources"`  // sources tracked at most
}

// Billing configures the call detail records (docs/cdr.md).
type Billing struct {
	Enabled        bool     `toml:"enabled"`
	Dir            string   `toml:"dir"`             // "" = <data.dir>/cdr
	Node           string   `toml:"node"`            // "" = the host name
	Format         string   `toml:"format"`          // csv or jsonl
	RotateInterval Duration `toml:"rotate_interval"` // a file closes this long after its first record...
	RotateRecords  int      `toml:"rotate_records"`  // ...or at this many records...
	RotateMB       int      `toml:"rotate_mb"`       // ...or at this size, whichever comes first
	OnSpoolFault   string   `toml:"on_spool_fault"`  // refuse (new calls get 503, cause 42) or continue (alarm only)
	QueueLimit     int      `toml:"queue_limit"`     // events waiting to be written above which the spool is at fault
	Retention      Duration `toml:"retention"`       // closed files kept this long, and until delivered; 0: for ever
	Hot            bool     `toml:"hot_billing"`     // each record in hot/ and on the bus as soon as it is durable
	SyncInterval   Duration `toml:"sync_interval"`   // the spool's commits (fdatasync) at most this often
	DiskAlarm      int      `toml:"disk_alarm_percent"`
	Push           Push     `toml:"push"`
	Pull           Pull     `toml:"pull"`
}

// Pull is the read-only SFTP and FTP/FTPS servers the billing centre
// fetches files from.
type Pull struct {
	SFTPListen   string `toml:"sftp_listen"`   // host:port; "" = off
	FTPListen    string `toml:"ftp_listen"`    // host:port; "" = off
	FTPTLS       string `toml:"ftp_tls"`       // required (explicit FTPS only) | optional (plain FTP too)
	PassivePorts string `toml:"passive_ports"` // FIRST-LAST, the FTP data connections
	TLSCertFile  string `toml:"tls_cert_file"` // "" = <data.dir>/ftps_cert.pem (self-signed at first start)
	TLSKeyFile   string `toml:"tls_key_file"`  // "" = <data.dir>/ftps_key.pem
	User         string `toml:"user"`          // the billing centre's account (not the admin's)
	PasswordHash string `toml:"password_hash"` // bcrypt (softswitch hash-password)
	HostKeyFile  string `toml:"host_key_file"` // "" = <data.dir>/sftp_host_key (made at first start)
}

// AAA's types are provisioning's (the file's [aaa] is imported into the
// running configuration).
type (
	AAA          = provision.AAA
	RadiusServer = provision.RadiusServer
	DiameterPeer = provision.DiameterPeer
)

// AAABootstrap is what the AAA provisioning depends on in this file.
func (c *Config) AAABootstrap() provision.AAABootstrap {
	return provision.AAABootstrap{Billing: c.Billing.Enabled,
		DigestMD5: slices.ContainsFunc(c.Auth.Algorithms, func(s string) bool { return strings.EqualFold(s, "MD5") })}
}

// DefaultCreditControlTx is RFC 4006 §13's recommended Tx.
const DefaultCreditControlTx = provision.DefaultCreditControlTx

// Push is where closed CDR files are uploaded over FTP (docs/cdr.md):
// provisioning (core/provision), changed at run time.
type Push = provision.Push

// Overload configures the overload control (docs/performance.md).
type Overload struct {
	MaxCalls      int      `toml:"max_calls"`       // concurrent calls at most; 0: no cap
	QueueTarget   float64  `toml:"queue_target"`    // receive queue fill (0..1) above which new calls are shed
	AgeTarget     Duration `toml:"age_target"`      // message age (read to served) above which a message is late
	CPUTarget     float64  `toml:"cpu_target"`      // processor share (0..1): a standing queue over it starts an episode, a second under it ends one
	RetryAfterMin int      `toml:"retry_after_min"` // seconds
	RetryAfterMax int      `toml:"retry_after_max"`
}

// Data is where durable state lives.
type Data struct {
	Dir string `toml:"dir"`
}

// Log configures logging.
type Log struct {
	Level string `toml:"level"`
}

// Runtime tunes the Go runtime. The defaults trade memory for CPU: a
// switch is sized by calls per second, and the collector's default
// (GOGC 100) spends about a seventh of the call path's CPU on marking.
type Runtime struct {
	// GCPercent is GOGC: heap growth, in percent of the live heap,
	// before the next collection. -1 turns the collector off (never in
	// production).
	GCPercent int `toml:"gc_percent"`
	// MemoryLimitMB is a soft limit: near it the collector runs as often
	// as needed whatever GCPercent says. 0 picks half the machine's RAM.
	MemoryLimitMB int `toml:"memory_limit_mb"`
	// HeapHeadroomMB caps the heap's growth between collections: with
	// many calls held the live heap is large and GCPercent of it would be
	// mostly idle memory, so the growth allowed is the largest of this,
	// what the switch allocated in the last second (a switch churning
	// calls collects about once a second) and half the live heap, never
	// more than GCPercent. 0: off. Default 32: 10,000 held calls cost
	// 6.3-6.8 KB of PSS a call (9.4 at a fixed 64 MB, 14.5 off)
	// (docs/performance.md).
	HeapHeadroomMB int `toml:"heap_headroom_mb"`
}

// HA describes this node of an active-standby pair; keepalived's
// configuration is generated from it (softswitch ha-config).
type HA struct {
	Enabled        bool     `toml:"enabled"`
	Interface      string   `toml:"interface"`       // where the virtual address lives and VRRP talks
	VirtualAddress string   `toml:"virtual_address"` // CIDR, e.g. "192.0.2.10/24"
	RouterID       int      `toml:"router_id"`       // VRRP virtual router id, 1..255, the same on both nodes
	Priority       int      `toml:"priority"`        // 1..254; the higher one is active
	AdvertInterval Duration `toml:"advert_interval"` // VRRP advertisement interval
	UnicastPeers   []string `toml:"unicast_peers"`   // peer addresses for unicast VRRP; empty = multicast
	CheckInterval  Duration `toml:"check_interval"`  // how often keepalived asks the softswitch (SIP OPTIONS)
	CheckFailures  int      `toml:"check_failures"`  // failed checks in a row before this node gives the address up
	CheckTimeout   Duration `toml:"check_timeout"`   // how long one check waits for the 200
	ScriptUser     string   `toml:"script_user"`     // the user keepalived runs the check and notify hooks as
	// State replication over the HA link (docs/ha.md): where this node
	// listens for its peer, the peer's address, and the shared key that
	// authenticates and encrypts the stream (no default; never logged).
	ReplicationListen string `toml:"replication_listen"`
	Peer              string `toml:"peer"`
	ReplicationKey    string `toml:"replication_key"`
	// PeerRecordsWait: how long the node that took over keeps the old
	// node's undelivered CDRs and accounting for it before it delivers
	// them itself (docs/ha.md).
	PeerRecordsWait Duration `toml:"peer_records_wait"`
}

// HACheckCallIDPrefix starts the Call-ID of keepalived's health check
// (softswitch check): the switch fails that check alone during a
// switchover.
const HACheckCallIDPrefix = "ha-check-"

// Replicates tells whether the pair replicates its state.
func (h HA) Replicates() bool { return h.Enabled && h.Peer != "" }

// Subscriber is provision.Subscriber (plain data, shared with the config file and the CLI).
type Subscriber = provision.Subscriber

// TrustedPeer is provision.TrustedPeer (plain data, shared with the config file and the CLI).
type TrustedPeer = provision.TrustedPeer

// Default returns the embedded defaults: a usable softswitch with no file.
func Default() Config {
	return Config{
		SIP:       SIP{Listen: "0.0.0.0:5060", Realm: "softswitch", UserAgent: "softswitch", T1: Duration{Duration: 500 * time.Millisecond}},
		Registrar: Registrar{MinExpires: 60, MaxExpires: 3600, DefaultExpires: 3600},
		Auth: Auth{
			NonceLifetime:      Duration{Duration: 5 * time.Minute},
			Algorithms:         []string{"MD5", "SHA-256"},
			MaxFailures:        20,
			MaxUserFailures:    5,
			MaxAccountFailures: 30,
			BanDurations:       []Duration{{Duration: 15 * time.Minute}, {Duration: time.Hour}, {Duration: 4 * time.Hour}, {Duration: 24 * time.Hour}},
			LoginMemory:        Duration{Duration: 24 * time.Hour},
		},
		Call: Call{
			NoAnswerTimeout: Duration{Duration: 60 * time.Second},
			TimerC:          Duration{Duration: 180 * time.Second},
			SessionExpires:  1800,
			MinSE:           90,
			MaxForwards:     70,
		},
		Admission: Admission{Rate: 100, Burst: 400, Block: Duration{Duration: time.Minute}, MaxSources: 1 << 17},
		Overload: Overload{QueueTarget: 0.25, AgeTarget: Duration{Duration: 200 * time.Millisecond}, CPUTarget: 0.9,
			RetryAfterMin: 5, RetryAfterMax: 20},
		Billing: Billing{Enabled: true, Format: "csv", RotateInterval: Duration{Duration: 5 * time.Minute}, SyncInterval: Duration{Duration: 100 * time.Millisecond},
			RotateRecords: 10000, RotateMB: 10, OnSpoolFault: "refuse", QueueLimit: 100000,
			Retention: Duration{Duration: 30 * 24 * time.Hour}, DiskAlarm: 80,
			Push: provision.DefaultPush(),
			Pull: Pull{FTPTLS: "required", PassivePorts: "30000-30049"}},
		Data:    Data{Dir: "./data"},
		Log:     Log{Level: "info"},
		Runtime: Runtime{GCPercent: 400, HeapHeadroomMB: 32},
		HA: HA{RouterID: 51, Priority: 100, AdvertInterval: Duration{Duration: time.Second},
			CheckInterval: Duration{Duration: time.Second}, CheckFailures: 2, CheckTimeout: Duration{Duration: 2 * time.Second},
			PeerRecordsWait: Duration{Duration: time.Hour},
			ScriptUser:      "softswitch"},
		Doc: provision.Default(),
	}
}

// Error is a configuration error with its place in the file.
type Error struct {
	File   string
	Line   int
	Reason string
	key    string // the offending key, to find its line
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	if e.File != "" {
		return fmt.Sprintf("%s: %s", e.File, e.Reason)
	}
	return e.Reason
}

// Load reads path over the defaults and validates the result.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, cfg.Validate()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, &Error{File: path, Reason: err.Error()}
	}
	return Parse(path, data)
}

// Parse decodes data (named path in errors) over the defaults.
func Parse(path string, data []byte) (Config, error) {
	cfg := Default()
	dec := toml.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) && len(sm.Errors) > 0 {
			row, _ := sm.Errors[0].Position()
			return cfg, &Error{File: path, Line: row, Reason: "unknown key " + strings.Join(sm.Errors[0].Key(), ".")}
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			reason := strings.TrimPrefix(de.Error(), "toml: ")
			if k := de.Key(); len(k) > 0 {
				reason = strings.Join(k, ".") + ": " + reason
			}
			return cfg, &Error{File: path, Line: row, Reason: reason}
		}
		return cfg, &Error{File: path, Reason: err.Error()}
	}
	// [billing.push] is provisioning: the running configuration's billing_push.
	cfg.Doc.Push = cfg.Billing.Push
	cfg.Doc.Declared, cfg.Doc.FileDigest = declared(data)
	if err := cfg.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = path
			if ce.Line == 0 {
				ce.Line = findLine(data, ce.key)
			}
			return cfg, ce
		}
		return cfg, &Error{File: path, Reason: err.Error()}
	}
	return cfg, nil
}

// At is a provisioning error the parts that check provisioning found
// (core/running), placed at its line in the file: key is the dotted path
// of what is wrong ("gateway[1].address").
func At(path, key, reason string) error {
	e := &Error{File: path, Reason: reason}
	if key != "" {
		e.Reason = key + ": " + reason
	}
	if data, err := os.ReadFile(path); err == nil {
		e.Line = findLine(data, key)
	}
	return e
}

// PassiveRange parses passive_ports ("30000-30049").
func (l Pull) PassiveRange() (first, last int, err error) {
	a, b, ok := strings.Cut(l.PassivePorts, "-")
	first, e1 := strconv.Atoi(strings.TrimSpace(a))
	last, e2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || e1 != nil || e2 != nil || first < 1024 || last > 65535 || first > last {
		return 0, 0, fmt.Errorf("%q is not FIRST-LAST within 1024-65535", l.PassivePorts)
	}
	return first, last, nil
}

func invalid(key, format string, a ...any) error {
	return &Error{Reason: key + ": " + fmt.Sprintf(format, a...), key: key}
}

// findLine returns the line where key is set. Keys are dotted paths
// with array indexes, like "sip.listen" or "group[1].member[0].gateway":
// an index counts [[table]] headers, the last part is a "key =" line, or
// the table's header when the key is missing.
func findLine(data []byte, key string) int {
	if key == "" {
		return 0
	}
	lines := strings.Split(string(data), "\n")
	keyLine := func(from int, name string) int {
		for l := from; l < len(lines); l++ {
			t := strings.TrimSpace(lines[l])
			if rest, ok := strings.CutPrefix(t, name); ok && strings.HasPrefix(strings.TrimSpace(rest), "=") {
				return l + 1
			}
		}
		return 0
	}
	header := func(from int, h string, nth int) int {
		n := -1
		for l := from; l < len(lines); l++ {
			if strings.TrimSpace(lines[l]) == h {
				if n++; n == nth {
					return l
				}
			}
		}
		return -1
	}
	start, path, inTable := 0, "", false
	segs := strings.Split(key, ".")
	for si, seg := range segs {
		name, idx := seg, -1
		if i := strings.IndexByte(seg, '['); i >= 0 {
			name = seg[:i]
			idx, _ = strconv.Atoi(strings.TrimSuffix(seg[i+1:], "]"))
		}
		full := name
		if path != "" {
			full = path + "." + name
		}
		last := si == len(segs)-1
		switch {
		case idx >= 0:
			l := header(start, "[["+full+"]]", idx)
			if l < 0 {
				if last {
					return keyLine(start, name) // an inline array value
				}
				return 0
			}
			if last {
				return l + 1
			}
			start, inTable = l, true
		case last:
			if l := keyLine(start, name); l > 0 || !inTable {
				return l
			}
			// A missing key: the line of its table.
			return start + 1
		default:
			if l := header(start, "["+full+"]", 0); l >= 0 {
				start, inTable = l, true
			}
		}
		path = full
	}
	return 0
}

// Validate checks every value; the first problem is returned.
func (c *Config) Validate() error {
	if _, _, err := SplitHostPort(c.SIP.Listen); err != nil {
		return invalid("sip.listen", "%v", err)
	}
	if c.SIP.Advertise != "" {
		if strings.ContainsAny(c.SIP.Advertise, " ;,<>\"") {
			return invalid("sip.advertise", "must be host or host:port")
		}
	}
	if c.SIP.Realm == "" || strings.ContainsAny(c.SIP.Realm, "\"\\\r\n") {
		return invalid("sip.realm", "must be non-empty, without quotes or backslashes")
	}
	r := c.Registrar
	if r.MinExpires < 1 || r.MaxExpires < r.MinExpires || r.DefaultExpires < r.MinExpires || r.DefaultExpires > r.MaxExpires {
		return invalid("registrar.min_expires", "need 1 <= min_expires <= default_expires <= max_expires (have %d, %d, %d)", r.MinExpires, r.DefaultExpires, r.MaxExpires)
	}
	if err := c.validateLoad(); err != nil {
		return err
	}
	if err := c.validateBilling(); err != nil {
		return err
	}
	if err := c.validateMetrics(); err != nil {
		return err
	}
	if err := c.validateCLI(); err != nil {
		return err
	}
	if c.Auth.NonceLifetime.Duration < 10*time.Second {
		return invalid("auth.nonce_lifetime", "must be at least 10s")
	}
	if len(c.Auth.Algorithms) == 0 {
		return invalid("auth.algorithms", "name at least one of MD5, SHA-256")
	}
	for _, a := range c.Auth.Algorithms {
		if a != "MD5" && a != "SHA-256" {
			return invalid("auth.algorithms", "unknown algorithm %q (MD5 or SHA-256)", a)
		}
	}
	if c.Auth.MaxFailures < 1 {
		return invalid("auth.max_failures_per_minute", "must be at least 1")
	}
	if c.Auth.MaxUserFailures < 1 {
		return invalid("auth.max_failures_per_user", "must be at least 1")
	}
	if c.Auth.MaxAccountFailures < 1 {
		return invalid("auth.max_failures_per_account", "must be at least 1")
	}
	if len(c.Auth.BanDurations) == 0 {
		return invalid("auth.ban_durations", "name at least one, e.g. [\"15m\", \"1h\", \"4h\", \"24h\"]")
	}
	for _, d := range c.Auth.BanDurations {
		if d.Duration < time.Second {
			return invalid("auth.ban_durations", "each must be at least 1s (have %s)", d.Duration)
		}
	}
	if c.Auth.LoginMemory.Duration < time.Minute {
		return invalid("auth.login_memory", "must be at least 1m")
	}
	if c.Call.NoAnswerTimeout.Duration < time.Second {
		return invalid("call.no_answer_timeout", "must be at least 1s")
	}
	if c.Call.TimerC.Duration < time.Second {
		return invalid("call.timer_c", "must be at least 1s (RFC 3261 asks for more than 3m)")
	}
	if t := c.SIP.T1.Duration; t < 50*time.Millisecond || t > 4*time.Second {
		return invalid("sip.t1", "must be 50ms..4s (RFC 3261's default is 500ms)")
	}
	if c.Call.SessionExpires != 0 && (c.Call.MinSE < 2 || c.Call.SessionExpires < c.Call.MinSE) {
		return invalid("call.session_expires", "must be 0 (off) or >= call.min_se (>= 2)")
	}
	if c.Call.MaxForwards < 1 || c.Call.MaxForwards > 255 {
		return invalid("call.max_forwards", "must be 1..255")
	}
	if c.Data.Dir == "" {
		return invalid("data.dir", "must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return invalid("log.level", "must be debug, info, warn or error")
	}
	if c.Runtime.GCPercent < -1 || c.Runtime.GCPercent == 0 || c.Runtime.GCPercent > 10000 {
		return invalid("runtime.gc_percent", "must be 1..10000 (or -1: collector off)")
	}
	if c.Runtime.MemoryLimitMB < 0 {
		return invalid("runtime.memory_limit_mb", "must be 0 (half the RAM) or a size in MB")
	}
	if c.Runtime.HeapHeadroomMB < 0 {
		return invalid("runtime.heap_headroom_mb", "must be 0 (off) or a size in MB")
	}
	if h := c.HA; h.Enabled {
		if h.Interface == "" {
			return invalid("ha.interface", "name the interface of the virtual address")
		}
		if _, err := netip.ParsePrefix(h.VirtualAddress); err != nil {
			return invalid("ha.virtual_address", "%q is not an address/prefix like 192.0.2.10/24", h.VirtualAddress)
		}
		if h.RouterID < 1 || h.RouterID > 255 {
			return invalid("ha.router_id", "must be 1..255")
		}
		if h.Priority < 1 || h.Priority > 254 {
			return invalid("ha.priority", "must be 1..254")
		}
		if h.AdvertInterval.Duration < 10*time.Millisecond || h.AdvertInterval.Duration > 40*time.Second {
			return invalid("ha.advert_interval", "must be 10ms..40s")
		}
		if h.CheckInterval.Duration < 100*time.Millisecond || h.CheckFailures < 1 {
			return invalid("ha.check_interval", "check_interval >= 100ms and check_failures >= 1")
		}
		if h.CheckTimeout.Duration < 100*time.Millisecond || h.CheckTimeout.Duration > time.Minute {
			return invalid("ha.check_timeout", "100ms..1m (keepalived gives the address up on one check that times out)")
		}
		if h.ScriptUser == "" || strings.ContainsAny(h.ScriptUser, " \t\"") {
			return invalid("ha.script_user", "name the user keepalived runs `softswitch check` and the notify hook as (default softswitch)")
		}
		if h.Peer != "" || h.ReplicationListen != "" || h.ReplicationKey != "" {
			if _, err := netip.ParseAddrPort(h.ReplicationListen); err != nil {
				return invalid("ha.replication_listen", "%q is not IP:port (this node's address on the HA link)", h.ReplicationListen)
			}
			if _, err := netip.ParseAddrPort(h.Peer); err != nil {
				return invalid("ha.peer", "%q is not IP:port (the other node's replication_listen)", h.Peer)
			}
			if len(h.ReplicationKey) < 32 {
				return invalid("ha.replication_key", "must be at least 32 characters, the same on both nodes (there is no default)")
			}
			if h.PeerRecordsWait.Duration < time.Second || h.PeerRecordsWait.Duration > 30*24*time.Hour {
				return invalid("ha.peer_records_wait", "1s..720h (how long the old node's undelivered CDRs wait for it before this node delivers them)")
			}
		}
		for i, p := range h.UnicastPeers {
			if _, err := netip.ParseAddr(p); err != nil {
				return invalid(fmt.Sprintf("ha.unicast_peers[%d]", i), "%q is not an IP address", p)
			}
		}
	}
	for i, srv := range c.DNS.Servers {
		if _, _, err := SplitHostPort(srv); err != nil {
			return invalid(fmt.Sprintf("dns.servers[%d]", i), "%v", err)
		}
	}
	return nil
}

// SplitHostPort parses host:port with a numeric port.
func SplitHostPort(hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", hp)
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("%q: port must be 0..65535", hp)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q: host missing", hp)
	}
	return host, p, nil
}

// ParsePrefix accepts an address or a CIDR (provision.ParsePrefix).
var ParsePrefix = provision.ParsePrefix

// IsNumber reports whether s is a subscriber number (provision.IsNumber).
var IsNumber = provision.IsNumber

func (c *Config) validateBilling() error {
	b := c.Billing
	switch {
	case b.Format != "csv" && b.Format != "jsonl":
		return invalid("billing.format", "must be csv or jsonl")
	case b.RotateInterval.Duration < time.Second:
		return invalid("billing.rotate_interval", "must be at least 1s")
	case b.SyncInterval.Duration < time.Millisecond || b.SyncInterval.Duration > time.Second:
		return invalid("billing.sync_interval", "must be between 1ms and 1s")
	case b.RotateRecords < 1:
		return invalid("billing.rotate_records", "must be at least 1")
	case b.RotateMB < 1:
		return invalid("billing.rotate_mb", "must be at least 1")
	case b.OnSpoolFault != "refuse" && b.OnSpoolFault != "continue":
		return invalid("billing.on_spool_fault", "must be refuse or continue")
	case b.QueueLimit < 1000:
		return invalid("billing.queue_limit", "must be at least 1000")
	case b.Retention.Duration < 0:
		return invalid("billing.retention", "must be 0 (keep for ever) or more")
	case b.DiskAlarm < 0 || b.DiskAlarm > 99:
		return invalid("billing.disk_alarm_percent", "must be 0 (off) to 99")
	case b.Node != "" && !validNode(b.Node):
		return invalid("billing.node", "%q: letters, digits, '-' and '.' only (it is part of record ids and file names)", b.Node)
	}
	l := b.Pull
	if l.SFTPListen != "" {
		if _, _, err := net.SplitHostPort(l.SFTPListen); err != nil {
			return invalid("billing.pull.sftp_listen", "%q is not host:port", l.SFTPListen)
		}
	}
	if l.FTPListen != "" {
		if _, _, err := net.SplitHostPort(l.FTPListen); err != nil {
			return invalid("billing.pull.ftp_listen", "%q is not host:port", l.FTPListen)
		}
		if l.FTPTLS != "required" && l.FTPTLS != "optional" {
			return invalid("billing.pull.ftp_tls", "must be required or optional")
		}
		if _, _, err := l.PassiveRange(); err != nil {
			return invalid("billing.pull.passive_ports", "%v", err)
		}
		if (l.TLSCertFile == "") != (l.TLSKeyFile == "") {
			return invalid("billing.pull.tls_cert_file", "give both tls_cert_file and tls_key_file, or neither (a self-signed pair is made)")
		}
	}
	if l.SFTPListen != "" || l.FTPListen != "" {
		if l.User == "" {
			return invalid("billing.pull.user", "the pull server needs a user (there is no default)")
		}
		if _, err := bcrypt.Cost([]byte(l.PasswordHash)); err != nil {
			return invalid("billing.pull.password_hash", "not a bcrypt hash (make one with: softswitch hash-password)")
		}
	}
	return nil
}

func validNode(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return len(s) <= 64
}

func (c *Config) validateLoad() error {
	a, o := c.Admission, c.Overload
	switch {
	case a.Rate < 0:
		return invalid("admission.rate", "must be 0 (no limit) or more")
	case a.TrustedRate < 0:
		return invalid("admission.trusted_rate", "must be 0 (no limit) or more")
	case a.Burst < 1:
		return invalid("admission.burst", "must be at least 1")
	case a.Rate > 0 && a.Block.Duration < time.Second:
		return invalid("admission.block", "must be at least 1s")
	case a.MaxSources < 1024:
		return invalid("admission.max_sources", "must be at least 1024")
	case o.MaxCalls < 0:
		return invalid("overload.max_calls", "must be 0 (no cap) or more")
	case o.QueueTarget < 0 || o.QueueTarget > 1:
		return invalid("overload.queue_target", "must be between 0 (off) and 1")
	case o.AgeTarget.Duration < 0:
		return invalid("overload.age_target", "must be 0 (off) or more")
	case o.CPUTarget < 0 || o.CPUTarget > 1:
		return invalid("overload.cpu_target", "must be between 0 (off) and 1")
	case o.RetryAfterMin < 1:
		return invalid("overload.retry_after_min", "must be at least 1")
	case o.RetryAfterMax < o.RetryAfterMin:
		return invalid("overload.retry_after_max", "must be at least retry_after_min")
	}
	return nil
}

// declared reads which provisioning sections the file declares, and a
// digest of their text as written (core/running imports the file's
// provisioning again only when it changes).
func declared(data []byte) (map[string]bool, string) {
	var all map[string]any
	_ = toml.Unmarshal(data, &all) // decoded already: it parses
	part := map[string]any{}
	got := map[string]bool{}
	for _, k := range provision.FileSections {
		if v, ok := all[k]; ok {
			part[k], got[k] = v, true
		}
	}
	if b, ok := all["billing"].(map[string]any); ok {
		if v, ok := b["push"]; ok {
			part["billing.push"], got["billing.push"] = v, true
		}
	}
	// [aaa] became provisioning after the others: its digest is apart,
	// so that a file an older version imported is still the same file
	// (core/running takes its [aaa] alone).
	aaa, hasAAA := part["aaa"]
	delete(part, "aaa")
	digest := hashJSON(part, data)
	if hasAAA {
		digest += provision.AAADigestMark + hashJSON(aaa, data)
	}
	return got, digest
}

// hashJSON is the SHA-256 of v as JSON (map keys sorted: the same text,
// the same digest), or of data when v does not encode.
func hashJSON(v any, data []byte) string {
	b, err := json.Marshal(v)
	if err != nil {
		b = data
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
