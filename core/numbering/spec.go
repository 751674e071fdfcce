package numbering

// The provisioning form of the tables: plain data, as written in the
// config file (TOML) and stored in bbolt (JSON). Compile turns it into a
// Plan or says precisely what is wrong.

// Settings are the plan-wide parameters.
type Settings struct {
	MaxCallingDigits    int    `toml:"max_calling_digits" json:"max_calling_digits"`
	MaxCalledDigits     int    `toml:"max_called_digits" json:"max_called_digits"`
	AllowStarHash       bool   `toml:"allow_star_hash" json:"allow_star_hash"`
	CountryCode         string `toml:"country_code" json:"country_code"`
	NationalPrefix      string `toml:"national_prefix" json:"national_prefix"`
	InternationalPrefix string `toml:"international_prefix" json:"international_prefix"`
	Timezone            string `toml:"timezone" json:"timezone"` // for time-of-day conditions; "" = the machine's
}

// DefaultSettings are the embedded defaults.
func DefaultSettings() Settings {
	return Settings{MaxCallingDigits: DefaultMaxCalling, MaxCalledDigits: DefaultMaxCalled,
		NationalPrefix: "0", InternationalPrefix: "00"}
}

// Actions of an analysis entry.
const (
	ActionRoute    = "route"    // to a route (gateway group)
	ActionLocal    = "local"    // to a local subscriber with the translated number
	ActionRedirect = "redirect" // answer 302 with Contact
	ActionRefuse   = "refuse"   // answer Status with Q.850 Cause
)

// EntrySpec is one row of the analysis table.
type EntrySpec struct {
	Prefix        string   `toml:"prefix" json:"prefix"`                           // first up to 10 digits of the called number (after trunk manipulation)
	CallingPrefix string   `toml:"calling_prefix" json:"calling_prefix,omitempty"` // condition on the calling number
	Trunk         string   `toml:"trunk" json:"trunk,omitempty"`                   // condition: the source trusted peer's name
	Time          []string `toml:"time" json:"time,omitempty"`                     // condition: any of these windows
	Action        string   `toml:"action" json:"action"`                           // route, local, redirect, refuse
	Route         string   `toml:"route" json:"route,omitempty"`                   // action route
	Contact       string   `toml:"contact" json:"contact,omitempty"`               // action redirect; {called} is replaced
	Status        int      `toml:"status" json:"status,omitempty"`                 // action refuse
	Cause         int      `toml:"cause" json:"cause,omitempty"`                   // action refuse; 0 = from Status (RFC 3398)
	CalledOps     []string `toml:"called_ops" json:"called_ops,omitempty"`         // manipulation of the called number
	CallingOps    []string `toml:"calling_ops" json:"calling_ops,omitempty"`       // manipulation of the calling number
	BypassLists   bool     `toml:"bypass_lists" json:"bypass_lists,omitempty"`     // emergency numbers
	Comment       string   `toml:"comment" json:"comment,omitempty"`               // free text for operators
}

// TrunkSpec is the inbound manipulation of one interconnect (a trusted
// peer, by name): its number plan turned into ours before analysis.
type TrunkSpec struct {
	Name       string   `toml:"name" json:"name"`
	CalledOps  []string `toml:"called_ops" json:"called_ops,omitempty"`
	CallingOps []string `toml:"calling_ops" json:"calling_ops,omitempty"`
}

// ListSpec is a black or white list of prefixes (R11).
type ListSpec struct {
	Name     string   `toml:"name" json:"name"`
	Kind     string   `toml:"kind" json:"kind"`   // black or white
	Match    string   `toml:"match" json:"match"` // called or calling
	Scope    string   `toml:"scope" json:"scope"` // global, trunk:NAME, subscriber:NUMBER
	Prefixes []string `toml:"prefixes" json:"prefixes"`
	Status   int      `toml:"status" json:"status,omitempty"` // default 403
	Cause    int      `toml:"cause" json:"cause,omitempty"`   // default 21 (call rejected)
}

// Spec is the whole number-analysis data set.
type Spec struct {
	Settings Settings    `json:"settings"`
	Analysis []EntrySpec `json:"analysis,omitempty"`
	Trunks   []TrunkSpec `json:"trunks,omitempty"`
	Lists    []ListSpec  `json:"lists,omitempty"`
}
