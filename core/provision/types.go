// Package provision is the switch's provisioning as plain data: the
// subscribers, trusted peers, number analysis, routes, gateway groups,
// gateways, lists and tariffs that an operator changes while calls run.
// It is what the config file's provisioning sections decode into, what
// the store keeps as the running configuration and what the command line
// edits (lines.go). The parts that use it check it (Check): this package
// imports nothing of the call path.
package provision

// NumberingSettings are the plan-wide parameters.
type NumberingSettings struct {
	MaxCallingDigits    int    `toml:"max_calling_digits" json:"max_calling_digits"`
	MaxCalledDigits     int    `toml:"max_called_digits" json:"max_called_digits"`
	AllowStarHash       bool   `toml:"allow_star_hash" json:"allow_star_hash"`
	CountryCode         string `toml:"country_code" json:"country_code"`
	NationalPrefix      string `toml:"national_prefix" json:"national_prefix"`
	InternationalPrefix string `toml:"international_prefix" json:"international_prefix"`
	Timezone            string `toml:"timezone" json:"timezone"` // for time-of-day conditions; "" = the machine's
}

// Analysis is one row of the analysis table.
type Analysis struct {
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

// TrunkPlan is the inbound manipulation of one interconnect (a trusted
// peer, by name): its number plan turned into ours before analysis.
type TrunkPlan struct {
	Name       string   `toml:"name" json:"name"`
	CalledOps  []string `toml:"called_ops" json:"called_ops,omitempty"`
	CallingOps []string `toml:"calling_ops" json:"calling_ops,omitempty"`
}

// List is a black or white list of prefixes (R11).
type List struct {
	Name     string   `toml:"name" json:"name"`
	Kind     string   `toml:"kind" json:"kind"`   // black or white
	Match    string   `toml:"match" json:"match"` // called or calling
	Scope    string   `toml:"scope" json:"scope"` // global, trunk:NAME, subscriber:NUMBER
	Prefixes []string `toml:"prefixes" json:"prefixes"`
	Status   int      `toml:"status" json:"status,omitempty"` // default 403
	Cause    int      `toml:"cause" json:"cause,omitempty"`   // default 21 (call rejected)
}

// Gateway is one interworking gateway or carrier interconnect.
type Gateway struct {
	Name        string   `toml:"name" json:"name"`
	Address     string   `toml:"address" json:"address"`     // IP:port, host:port, or a domain name resolved by RFC 3263
	Transport   string   `toml:"transport" json:"transport"` // udp or tcp; "" = udp (or what NAPTR says for a domain)
	MaxChannels int      `toml:"max_channels" json:"max_channels,omitempty"`
	MaxCPS      int      `toml:"max_cps" json:"max_cps,omitempty"`
	Locked      bool     `toml:"locked" json:"locked,omitempty"` // administratively out of service
	Probe       bool     `toml:"probe" json:"probe,omitempty"`   // SIP OPTIONS keepalive
	ProbeEvery  string   `toml:"probe_interval" json:"probe_interval,omitempty"`
	DownAfter   int      `toml:"probe_failures" json:"probe_failures,omitempty"`     // failed probes in a row to mark it down
	UpAfter     int      `toml:"probe_recoveries" json:"probe_recoveries,omitempty"` // answered probes in a row to mark it up again
	CalledOps   []string `toml:"called_ops" json:"called_ops,omitempty"`
	CallingOps  []string `toml:"calling_ops" json:"calling_ops,omitempty"`
}

// Member places a gateway in a group.
type Member struct {
	Gateway  string `toml:"gateway" json:"gateway"`
	Priority int    `toml:"priority" json:"priority"` // lower is tried first
	Weight   int    `toml:"weight" json:"weight"`     // share among equal priority; 0 = 1
}

// Group is a gateway group: hunted by priority, weighted among equals.
type Group struct {
	Name          string   `toml:"name" json:"name"`
	Members       []Member `toml:"member" json:"members"`
	FailoverCodes []int    `toml:"failover_codes" json:"failover_codes,omitempty"` // besides 503 and timeouts
	InviteTimeout string   `toml:"invite_timeout" json:"invite_timeout,omitempty"` // no response at all within this: next gateway
}

// Route names a gateway group with its own number manipulation.
type Route struct {
	Name       string   `toml:"name" json:"name"`
	Group      string   `toml:"group" json:"group"`
	CalledOps  []string `toml:"called_ops" json:"called_ops,omitempty"`
	CallingOps []string `toml:"calling_ops" json:"calling_ops,omitempty"`
}

// Registration registers the switch to an upstream carrier.
type Registration struct {
	Name      string `toml:"name" json:"name"`
	Registrar string `toml:"registrar" json:"registrar"` // host:port
	Transport string `toml:"transport" json:"transport,omitempty"`
	User      string `toml:"user" json:"user"`
	AuthUser  string `toml:"auth_user" json:"auth_user,omitempty"` // "" = user
	Password  string `toml:"password" json:"-"`                    // config file only: never stored in bbolt, never logged
	Domain    string `toml:"domain" json:"domain,omitempty"`       // AOR host; "" = the registrar's host
	Expires   int    `toml:"expires" json:"expires,omitempty"`
}

// Rating is the tariffs ([rating] and its tables), as written.
type Rating struct {
	Default   string   `toml:"default_tariff"` // tariff for callers nothing else names; "" = unrated
	Precision int      `toml:"precision"`      // decimals of a charge (0..6)
	Timezone  string   `toml:"timezone"`       // where bands' hours are read; "" = UTC
	Holidays  []string `toml:"holidays"`       // YYYY-MM-DD: days that count as "hol"
	Bands     []Band   `toml:"band"`
	Tariffs   []Tariff `toml:"tariff"`
	Assign    []Assign `toml:"assign"`
}

// Band is a named time band: days (mon..sun, hol) and hours.
type Band struct {
	Name string   `toml:"name"`
	Days []string `toml:"days"`
	From string   `toml:"from"` // HH:MM, inclusive
	To   string   `toml:"to"`   // HH:MM, exclusive; "24:00" = the end of the day; To < From crosses midnight
}

// Tariff is a named tariff: rates by called prefix and band.
type Tariff struct {
	Name     string `toml:"name"`
	Currency string `toml:"currency"` // ISO 4217
	Rates    []Rate `toml:"rate"`
}

// Rate prices calls to Prefix in Band ("" = any band).
type Rate struct {
	Prefix     string `toml:"prefix"`      // of the called number as sent; "" matches all
	Band       string `toml:"band"`        // a band's name; "" = any time
	ConnectFee string `toml:"connect_fee"` // decimal, charged once for an answered call
	Price      string `toml:"price"`       // decimal, per Unit
	Unit       string `toml:"unit"`        // duration the price is for, e.g. "60s"
	Increments string `toml:"increments"`  // "first/next" seconds, e.g. "60/60", "30/6", "1/1"
	Minimum    string `toml:"minimum"`     // decimal: no answered call costs less
	Pulse      string `toml:"pulse"`       // meter pulse interval, e.g. "30s"; "" = none
}

// Assign picks a tariff by account or by calling number prefix.
type Assign struct {
	Account string `toml:"account"`
	Calling string `toml:"calling_prefix"`
	Tariff  string `toml:"tariff"`
}

// Subscriber is a provisioned user. Password is hashed at load; only the
// HA1 values are stored.
type Subscriber struct {
	Number    string `toml:"number" json:"number"`
	Password  string `toml:"password" json:"-"` // turned into the HA1 values at once (Normalise), never stored
	HA1MD5    string `toml:"ha1_md5" json:"ha1_md5"`
	HA1SHA256 string `toml:"ha1_sha256" json:"ha1_sha256"`
	Account   string `toml:"account" json:"account,omitempty"`
}

// TrustedPeer is a source allowed to send calls without digest (a trunk).
type TrustedPeer struct {
	Name    string `toml:"name" json:"name"`
	Address string `toml:"address" json:"address" key:"true"` // the key: one trunk may have several addresses
}

// User is a management (command line) user: the password only as a
// bcrypt hash. Users are kept in the running configuration, not in the
// config file.
type User struct {
	Name     string `toml:"name" json:"name"`
	Level    string `toml:"level" json:"level"` // view, operator or admin
	Hash     string `toml:"hash" json:"hash"`   // bcrypt
	Password string `toml:"password" json:"-"`  // turned into Hash at once (Normalise), never stored
}
