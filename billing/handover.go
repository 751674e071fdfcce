package billing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/softswitch/softswitch/core/store"
)

// Handing CDR files over between the nodes of a pair (docs/ha.md): a
// standby pushes nothing to the billing centre itself, so the closed
// files it has not delivered (made while it was active, or alone during
// a split) go to the active node over the pair's link. The active node
// keeps them in relay/ (durable before it acknowledges) and its push
// uploads them after its own; the standby counts a file delivered once
// the active node has acknowledged it.

// relayDir holds files handed over by the other node of the pair.
const relayDir = "relay"

// Handover is one closed file to hand to the active node.
type Handover struct {
	Name          string
	Data, Sidecar []byte
	seq           uint64 // own file: its sequence number; 0: a relayed one
}

// relayName is what a CDR file's name may be (files.go's fileName).
var relayName = regexp.MustCompile(`^[A-Za-z0-9.-]+_[0-9]{10}_[0-9]{8}T[0-9]{6}Z\.(csv|jsonl)$`)

// NextHandover is the first closed file this node has not delivered (its
// own first, then those relayed to it); ok is false when there is none.
func (b *Billing) NextHandover() (h Handover, ok bool, err error) {
	seq, name, ok, err := b.nextUndelivered()
	if err != nil {
		return h, false, err
	}
	dir := b.cfg.Dir
	if !ok {
		names, err := b.relayed()
		if err != nil || len(names) == 0 {
			return h, false, err
		}
		name, dir = names[0], filepath.Join(b.cfg.Dir, relayDir)
	}
	h = Handover{Name: name, seq: seq}
	if h.Data, err = os.ReadFile(filepath.Join(dir, name)); err != nil {
		return h, false, err
	}
	if h.Sidecar, err = os.ReadFile(filepath.Join(dir, name+".sha256")); err != nil {
		return h, false, err
	}
	return h, true, nil
}

// HandedOver records that the active node has h (it acknowledged it
// durable there): an own file counts as delivered (durable once this
// returns), a relayed one is removed.
func (b *Billing) HandedOver(h Handover) error {
	defer b.unmirrorFile(h.Name) // delivered, or the active node has it: out of this node's standby's copy
	if h.seq == 0 {
		dir := filepath.Join(b.cfg.Dir, relayDir)
		for _, n := range []string{h.Name + ".sha256", h.Name} {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return syncDir(dir)
	}
	return store.Update(b.sp.db, func(tx *bolt.Tx) error {
		if getU64(tx, keyDelivered) >= h.seq {
			return nil
		}
		return putU64(tx, keyDelivered, h.seq)
	})
}

// Relay stores a file the other node of the pair handed over, for the
// push: its name must be a CDR file's and its sidecar must match it. It is
// durable when Relay returns (the other node then lets it go). The same
// file handed twice (a crash between the two acknowledgements) is stored
// once.
func (b *Billing) Relay(name string, data, sidecar []byte) error {
	if !relayName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("a handed-over file named %q: not a CDR file's name", name)
	}
	if !bytes.Equal(sidecar, sidecarOf(name, data)) {
		return fmt.Errorf("handed-over file %s: its sidecar does not match its content", name)
	}
	if b.wroteFileForPeer(name, sidecar) {
		// This node pushed it already, from its copy of what the other
		// node had not delivered (escrow.go): acknowledged, not again.
		b.log.Info("a CDR file handed over was pushed here already, from this node's copy of it", "file", name)
		return nil
	}
	dir := filepath.Join(b.cfg.Dir, relayDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{name, data}, {name + ".sha256", sidecar}} {
		if err := atomicWrite(dir, f.name, func(w io.Writer) error {
			_, err := io.Copy(w, bytes.NewReader(f.data))
			return err
		}, nil); err != nil {
			return err
		}
	}
	select {
	case b.closed <- struct{}{}: // the pusher: a file to upload
	default:
	}
	b.mirrorFile(dir, name)
	return nil
}

// relayed lists the files in relay/ with their sidecar, in name order.
func (b *Billing) relayed() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(b.cfg.Dir, relayDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); relayName.MatchString(n) && have[n+".sha256"] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}
