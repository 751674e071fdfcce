package replica

import (
	"encoding/json"

	"github.com/softswitch/softswitch/core/store"
)

// Message kinds on the stream, active to standby.
const (
	kindBindings  = "bindings"   // one AOR's bindings now (none: removed)
	kindSnapBegin = "snap-begin" // a snapshot follows: the parts, then its end
	kindSnapPart  = "snap-part"  // some AORs' bindings
	kindSnapEnd   = "snap-end"   // the snapshot is whole: replace everything with it
	kindPing      = "ping"       // the link is alive (each second)
	kindConfig    = "config"     // the running configuration now (core/running's State)
)

type message struct {
	Kind     string                     `json:"k"`
	AOR      string                     `json:"aor,omitempty"`
	Bindings []store.Binding            `json:"b,omitempty"`
	Part     map[string][]store.Binding `json:"part,omitempty"`
	Config   json.RawMessage            `json:"config,omitempty"`
}

func encode(m *message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}
