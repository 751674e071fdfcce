package numbering

import "github.com/softswitch/softswitch/core/provision"

// The provisioning form of the tables: plain data, as written in the
// config file (TOML) and stored in bbolt (JSON). Compile turns it into a
// Plan or says precisely what is wrong.

// Settings is provision.NumberingSettings (plain data, shared with the config file and the CLI).
type Settings = provision.NumberingSettings

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

// EntrySpec is provision.Analysis (plain data, shared with the config file and the CLI).
type EntrySpec = provision.Analysis

// TrunkSpec is provision.TrunkPlan (plain data, shared with the config file and the CLI).
type TrunkSpec = provision.TrunkPlan

// ListSpec is provision.List (plain data, shared with the config file and the CLI).
type ListSpec = provision.List

// Spec is the whole number-analysis data set.
type Spec struct {
	Settings Settings    `json:"settings"`
	Analysis []EntrySpec `json:"analysis,omitempty"`
	Trunks   []TrunkSpec `json:"trunks,omitempty"`
	Lists    []ListSpec  `json:"lists,omitempty"`
}
