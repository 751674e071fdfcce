package gateway

import "github.com/softswitch/softswitch/core/provision"

// The provisioning form of routes, gateway groups, gateways and trunk
// registrations: plain data from the config file (TOML) or bbolt (JSON).

// GatewaySpec is provision.Gateway (plain data, shared with the config file and the CLI).
type GatewaySpec = provision.Gateway

// MemberSpec is provision.Member (plain data, shared with the config file and the CLI).
type MemberSpec = provision.Member

// GroupSpec is provision.Group (plain data, shared with the config file and the CLI).
type GroupSpec = provision.Group

// RouteSpec is provision.Route (plain data, shared with the config file and the CLI).
type RouteSpec = provision.Route

// RegistrationSpec is provision.Registration (plain data, shared with the config file and the CLI).
type RegistrationSpec = provision.Registration

// Spec is the whole interworking data set.
type Spec struct {
	Gateways      []GatewaySpec      `json:"gateways,omitempty"`
	Groups        []GroupSpec        `json:"groups,omitempty"`
	Routes        []RouteSpec        `json:"routes,omitempty"`
	Registrations []RegistrationSpec `json:"registrations,omitempty"`
}
