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
	kindState     = "state"      // a named state now, whole (the running configuration, the digest key, the nonce counts)
	kindCount     = "count"      // a nonce count accepted
	kindRecord    = "rec"        // one keyed record of a kind now (none: removed)
	kindRecords   = "recs"       // in a snapshot: some records of a kind

	// Standby to active: a closed CDR file handed over, in parts; and
	// its acknowledgement (active to standby) once it is durable there.
	kindFile   = "file"
	kindFileOK = "file-ok"
	// Standby to active, after a restart: calls whose release this node
	// wrote in its last moments (Keys); and the answer (active to
	// standby, Ours: the standby's record stands).
	kindEnded   = "ended"
	kindEndedOK = "ended-ok"

	// Active to standby, first on a connection: what this active node
	// answers (Keys; featureEnded). A standby asks an older one nothing.
	kindFeatures = "features"
	featureEnded = "ended"
)

type message struct {
	Kind     string                     `json:"k"`
	AOR      string                     `json:"aor,omitempty"`
	Bindings []store.Binding            `json:"b,omitempty"`
	Part     map[string][]store.Binding `json:"part,omitempty"`
	Name     string                     `json:"name,omitempty"`
	Data     json.RawMessage            `json:"data,omitempty"`
	Nonce    string                     `json:"n,omitempty"`
	NC       uint64                     `json:"nc,omitempty"`
	Expires  int64                      `json:"exp,omitempty"`
	Key      string                     `json:"key,omitempty"`
	Rec      []byte                     `json:"rec,omitempty"`
	Recs     map[string][]byte          `json:"recs,omitempty"`
	Offset   int64                      `json:"off,omitempty"`  // file: where this part starts
	Last     bool                       `json:"last,omitempty"` // file: the last part
	Side     []byte                     `json:"side,omitempty"` // file: its SHA-256 sidecar (with the last part)
	Keys     []string                   `json:"keys,omitempty"` // ended: the calls asked about; features
	Ours     map[string]bool            `json:"ours,omitempty"` // ended-ok: the answers
}

func encode(m *message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}
