package provision

import "fmt"

// Doc is the whole provisioning. The config file's sections of the same
// names decode into it; the store keeps the running one (JSON).
type Doc struct {
	Subscribers []Subscriber      `toml:"subscriber" json:"subscribers,omitempty"`
	Trusted     []TrustedPeer     `toml:"trusted_peer" json:"trusted_peers,omitempty"`
	Numbering   NumberingSettings `toml:"numbering" json:"numbering"`
	Analysis    []Analysis        `toml:"analysis" json:"analysis,omitempty"`
	TrunkPlans  []TrunkPlan       `toml:"trunk_plan" json:"trunk_plans,omitempty"`
	Lists       []List            `toml:"list" json:"lists,omitempty"`
	Routes      []Route           `toml:"route" json:"routes,omitempty"`
	Groups      []Group           `toml:"group" json:"groups,omitempty"`
	Gateways    []Gateway         `toml:"gateway" json:"gateways,omitempty"`
	Rating      Rating            `toml:"rating" json:"rating"`
	Management  Management        `toml:"management" json:"management"`
	SNMP        SNMP              `toml:"snmp" json:"snmp"` // the agent: where, and who may ask
	// Where CDR files are pushed: the file's [billing.push] (config.Parse
	// copies it here).
	Push Push `toml:"-" json:"push" cli:"billing_push"`
	// AAA servers and what they are asked (the file's [aaa]).
	AAA AAA `toml:"aaa" json:"aaa"`
	// Traffic control (operators, at run time: block prefix, gap prefix).
	Blocks []Block `toml:"block" json:"blocks,omitempty"`
	Gaps   []Gap   `toml:"gap" json:"gaps,omitempty"`
	// Users are not read from the config file: they are added on the
	// command line or by `softswitch cli-user add`.
	Users []User `toml:"-" json:"users,omitempty" cli:"user"`

	// Of a config file (config.Parse sets them; never stored): the
	// top-level provisioning sections it declares, and a digest of their
	// text as written.
	Declared   map[string]bool `toml:"-" json:"-"`
	FileDigest string          `toml:"-" json:"-"`
}

// Sections of a config file that are provisioning (what Declared names).
var FileSections = []string{"subscriber", "trusted_peer", "numbering", "analysis", "trunk_plan", "list", "route",
	"group", "gateway", "rating", "management", "block", "gap", "snmp", "aaa"}

// AAADigestMark separates the digest of a file's [aaa] from that of its
// other provisioning sections in FileDigest.
const AAADigestMark = "+aaa:"

// Defaults of the plan-wide settings.
const (
	DefaultMaxCalling = 20
	DefaultMaxCalled  = 24
)

// Default is the provisioning of a switch nobody has provisioned: no
// subscriber, no route, the numbering defaults.
func Default() Doc {
	return Doc{
		Numbering: NumberingSettings{MaxCallingDigits: DefaultMaxCalling, MaxCalledDigits: DefaultMaxCalled,
			NationalPrefix: "0", InternationalPrefix: "00"},
		Rating: Rating{Precision: 4},
		Push:   DefaultPush(),
		AAA:    DefaultAAA(),
	}
}

// Management is what the management interfaces may do, changed at run
// time (where they listen is the config file's [cli] and [snmp]).
type Management struct {
	// Telnet serves the command line on [cli] telnet_listen: off by
	// default, since Telnet sends passwords in clear.
	Telnet bool `toml:"telnet" json:"telnet"`
	// Sources may reach the command line (SSH, Telnet): addresses or
	// CIDRs; empty: the config file's [cli] sources.
	Sources []string `toml:"sources" json:"sources,omitempty"`
}

// Check checks the management settings (keys as the file writes them).
func (m *Management) Check() error {
	for i, s := range m.Sources {
		if _, err := ParsePrefix(s); err != nil {
			return refuseAt(fmt.Sprintf("management.sources[%d]", i), "%v", err)
		}
	}
	return nil
}

// Block refuses new calls to called numbers (as received) that start
// with Prefix: 403, Q.850 cause 21.
type Block struct {
	Prefix string `toml:"prefix" json:"prefix" key:"true"`
}

// Gap lets at most Rate new calls a second through to called numbers
// (as received) that start with Prefix (call gapping); the others get
// 503, Q.850 cause 42. The longest matching prefix of the blocks and gaps
// decides.
type Gap struct {
	Prefix string  `toml:"prefix" json:"prefix" key:"true"`
	Rate   float64 `toml:"rate" json:"rate"` // calls a second, > 0
}
