package snmp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// enterprise is the private enterprise number of our engine ID and MIB
// (docs/snmp.md).
const enterprise = 32473

// engineState is what must outlive a restart (RFC 3414 §2.2): the engine
// ID, and snmpEngineBoots, one more at every start, so that a message
// captured before a restart is out of its time window after it.
type engineState struct {
	ID    []byte
	Boots uint32
}

// loadEngine reads path (made when missing), counts this start and
// writes it back durably before the agent answers anything.
func loadEngine(path string) (engineState, error) {
	var st engineState
	b, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		// RFC 3411 SnmpEngineID: enterprise with the top bit, format 5
		// (octets), 8 random octets.
		e := uint32(enterprise)
		st.ID = []byte{0x80 | byte(e>>24), byte(e >> 16), byte(e >> 8), byte(e), 5}
		suffix := make([]byte, 8)
		if _, err := rand.Read(suffix); err != nil {
			return st, err
		}
		st.ID = append(st.ID, suffix...)
	case err != nil:
		return st, err
	default:
		f := strings.Fields(string(b))
		if len(f) != 2 {
			return st, fmt.Errorf("%s: want \"<engine id hex> <boots>\"", path)
		}
		if st.ID, err = hex.DecodeString(f[0]); err != nil || len(st.ID) < 5 || len(st.ID) > 32 {
			return st, fmt.Errorf("%s: engine id %q is not 5 to 32 octets in hex", path, f[0])
		}
		n, err := strconv.ParseUint(f[1], 10, 31)
		if err != nil {
			return st, fmt.Errorf("%s: boots %q: %v", path, f[1], err)
		}
		st.Boots = uint32(n)
	}
	// RFC 3414 §2.2.2: at 2147483647 the engine is stuck; it stays there.
	if st.Boots < 2147483647 {
		st.Boots++
	}
	// Durable here: written, synced and renamed into place before the
	// agent serves, so no two starts answer with the same boots.
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return st, err
	}
	_, err = fmt.Fprintf(f, "%s %d\n", hex.EncodeToString(st.ID), st.Boots)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		if d, derr := os.Open(filepath.Dir(path)); derr == nil {
			err = d.Sync()
			d.Close()
		}
	}
	return st, err
}
