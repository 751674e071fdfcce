package gateway

// The provisioning form of routes, gateway groups, gateways and trunk
// registrations: plain data from the config file (TOML) or bbolt (JSON).

// GatewaySpec is one interworking gateway or carrier interconnect.
type GatewaySpec struct {
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

// MemberSpec places a gateway in a group.
type MemberSpec struct {
	Gateway  string `toml:"gateway" json:"gateway"`
	Priority int    `toml:"priority" json:"priority"` // lower is tried first
	Weight   int    `toml:"weight" json:"weight"`     // share among equal priority; 0 = 1
}

// GroupSpec is a gateway group: hunted by priority, weighted among equals.
type GroupSpec struct {
	Name          string       `toml:"name" json:"name"`
	Members       []MemberSpec `toml:"member" json:"members"`
	FailoverCodes []int        `toml:"failover_codes" json:"failover_codes,omitempty"` // besides 503 and timeouts
	InviteTimeout string       `toml:"invite_timeout" json:"invite_timeout,omitempty"` // no response at all within this: next gateway
}

// RouteSpec names a gateway group with its own number manipulation.
type RouteSpec struct {
	Name       string   `toml:"name" json:"name"`
	Group      string   `toml:"group" json:"group"`
	CalledOps  []string `toml:"called_ops" json:"called_ops,omitempty"`
	CallingOps []string `toml:"calling_ops" json:"calling_ops,omitempty"`
}

// RegistrationSpec registers the switch to an upstream carrier.
type RegistrationSpec struct {
	Name      string `toml:"name" json:"name"`
	Registrar string `toml:"registrar" json:"registrar"` // host:port
	Transport string `toml:"transport" json:"transport,omitempty"`
	User      string `toml:"user" json:"user"`
	AuthUser  string `toml:"auth_user" json:"auth_user,omitempty"` // "" = user
	Password  string `toml:"password" json:"-"`                    // config file only: never stored in bbolt, never logged
	Domain    string `toml:"domain" json:"domain,omitempty"`       // AOR host; "" = the registrar's host
	Expires   int    `toml:"expires" json:"expires,omitempty"`
}

// Spec is the whole interworking data set.
type Spec struct {
	Gateways      []GatewaySpec      `json:"gateways,omitempty"`
	Groups        []GroupSpec        `json:"groups,omitempty"`
	Routes        []RouteSpec        `json:"routes,omitempty"`
	Registrations []RegistrationSpec `json:"registrations,omitempty"`
}
