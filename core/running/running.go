// Package running keeps the switch's running configuration: the
// provisioning (core/provision) as the parts that use it have checked and
// compiled it, stored in bbolt, changed by whole commits while calls run.
//
// The store is the running configuration; the config file holds the
// bootstrap settings, and its provisioning sections are imported on the
// first start and whenever the file's provisioning has changed since it
// was last imported (a restart or SIGHUP with an edited file). A change
// committed on the command line is never overwritten by an unchanged file.
package running

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/billing/rating"
	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/numbering"
	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/core/routing"
	"github.com/softswitch/softswitch/core/store"
	"github.com/softswitch/softswitch/interwork/gateway"
)

// storeKey names the running configuration in the store.
const storeKey = "running-config"

// legacyTables is where versions before the running configuration kept
// the routing tables (imported once if no running configuration exists).
const legacyTables = "routing"

// State is a committed running configuration.
type State struct {
	Doc        provision.Doc `json:"doc"`
	Revision   int64         `json:"revision"`    // 1 at the first import, +1 per commit
	FileDigest string        `json:"file_digest"` // of the file's provisioning when last imported
	Time       time.Time     `json:"time"`
	By         string        `json:"by"` // "config file", or the user and source of a commit
}

// Checked is a Doc the parts that use it have compiled.
type Checked struct {
	Doc         *provision.Doc
	Tables      *routing.Tables
	Plan        *rating.Plan // nil: no tariff
	Subscribers []store.Subscriber
	Peers       []auth.Peer
}

// Config is what the running configuration needs from the switch.
type Config struct {
	DB            *store.DB
	Realm         string                   // subscribers' passwords become HA1 values of this realm
	Registrations []provision.Registration // trunk registrations: the file's, not provisioned here
	PasswordCost  int                      // bcrypt's cost for management users (0: 12)
	TelnetListen  string                   // [cli] telnet_listen: where management telnet serves ("": nowhere)
	AAA           provision.AAABootstrap   // what the AAA settings depend on in the file
	// Prev is the routing tables in use (gateway states carry over).
	Prev func() *routing.Tables
	// Apply swaps a checked configuration into the running parts. It is
	// called with no lock held that a call needs.
	Apply func(*Checked)
	Log   *slog.Logger
	// OnSave, when set, hears every state stored (a pair's replication
	// sends it to the standby). Called with the commit lock held: it must
	// not block.
	OnSave func(*State)
}

// Running is the running configuration.
type Running struct {
	cfg Config
	mu  sync.Mutex // one commit at a time
	cur atomic.Pointer[State]
	// standby: this node follows the active node of its pair, whose
	// commits it adopts (Adopt); its own are refused.
	standby atomic.Bool
}

// ErrStandby refuses a change on the standby node of a replicating pair.
var ErrStandby = errors.New("this node is the standby of its pair: commit on the active node (its changes reach this one)")

// SetStandby refuses commits and imports (this node became the standby of
// a replicating pair) or takes them again.
func (r *Running) SetStandby(on bool) { r.standby.Store(on) }

// Adopt makes st, the active node's running configuration, this node's:
// checked as a commit is, stored, applied. What belongs to the node
// itself stays: where its SNMP agent listens, and the digest of its own
// config file (so that its next start keeps what it adopted).
func (r *Running) Adopt(st State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cur.Load()
	d := st.Doc.Clone()
	d.SNMP.Listen = cur.Doc.SNMP.Listen
	if st.Revision == cur.Revision && reflect.DeepEqual(*d, cur.Doc) {
		return nil // the same (a snapshot after a reconnection)
	}
	chk, err := r.check(d)
	if err != nil {
		return err
	}
	next := &State{Doc: *d, Revision: st.Revision, FileDigest: cur.FileDigest, Time: st.Time, By: st.By}
	if err := r.save(next); err != nil {
		return err
	}
	r.cfg.Apply(chk)
	r.cfg.Log.Info("running configuration adopted from the active node", "revision", st.Revision, "by", st.By)
	return nil
}

// Open loads the running configuration at start: the stored one, or the
// file's provisioning when there is none or the file's has changed since
// its last import. file is the config file's provisioning (path for
// messages). Nothing is stored or applied unless it checks whole.
func Open(cfg Config, file provision.Doc, path string) (*Running, error) {
	r := &Running{cfg: cfg}
	var st State
	found, err := cfg.DB.GetTable(storeKey, &st)
	if err != nil {
		return nil, fmt.Errorf("reading the running configuration: %w", err)
	}
	digest := Digest(file)
	switch {
	case found && st.FileDigest == digest:
		chk, err := r.check(&st.Doc)
		if err != nil {
			// Not an *Error (%v): the file's lines are not where it is.
			return nil, fmt.Errorf("the stored running configuration (revision %d) is refused: %v; edit the config file's provisioning to import it instead", st.Revision, err)
		}
		r.cur.Store(&st)
		cfg.Apply(chk)
		cfg.Log.Info("running configuration", "revision", st.Revision, "committed", st.Time.UTC().Format(time.RFC3339), "by", st.By)
		return r, nil
	case found && !strings.Contains(st.FileDigest, provision.AAADigestMark) &&
		strings.HasPrefix(digest, st.FileDigest+provision.AAADigestMark):
		// Stored by a version that read [aaa] from the file at each
		// start: the rest of the file is as imported then; its [aaa]
		// joins the running configuration.
		d := st.Doc.Clone()
		d.AAA = file.AAA
		r.mu.Lock()
		defer r.mu.Unlock()
		chk, err := r.check(d)
		if err != nil {
			return nil, err
		}
		next := &State{Doc: *d, Revision: st.Revision + 1, FileDigest: digest, Time: time.Now(), By: "config file [aaa]"}
		if err := r.save(next); err != nil {
			return nil, err
		}
		cfg.Apply(chk)
		cfg.Log.Info("running configuration: the config file's [aaa] taken in (an older version read it at each start)",
			"revision", next.Revision)
		return r, nil
	case found:
		cfg.Log.Warn("the config file's provisioning changed since its last import: imported, replacing the running configuration",
			"file", path, "replaced_revision", st.Revision, "replaced_by", st.By)
	default:
		if !hasTables(&file) {
			r.legacy(&file)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.importLocked(file, digest, st, found); err != nil {
		return nil, err
	}
	return r, nil
}

// hasTables: the file declares routing tables.
func hasTables(d *provision.Doc) bool {
	return len(d.Analysis)+len(d.TrunkPlans)+len(d.Lists)+len(d.Routes)+len(d.Groups)+len(d.Gateways) > 0
}

// legacy takes the routing tables an older version stored, once.
func (r *Running) legacy(d *provision.Doc) {
	var old struct {
		Numbering numbering.Spec `json:"numbering"`
		Interwork gateway.Spec   `json:"interwork"`
	}
	if found, err := r.cfg.DB.GetTable(legacyTables, &old); err != nil || !found {
		return
	}
	d.Numbering, d.Analysis, d.TrunkPlans, d.Lists = old.Numbering.Settings, old.Numbering.Analysis, old.Numbering.Trunks, old.Numbering.Lists
	d.Routes, d.Groups, d.Gateways = old.Interwork.Routes, old.Interwork.Groups, old.Interwork.Gateways
	r.cfg.Log.Info("routing tables taken from the data directory (stored by an older version)")
}

// Reload is SIGHUP: the file's trunk registrations are taken, and its
// provisioning is imported if it changed since its last import;
// otherwise the running configuration is applied again as it is (with
// the new registrations). true when the file's provisioning was imported.
// Nothing changes when it is refused.
func (r *Running) Reload(file provision.Doc, registrations []provision.Registration, path string) (bool, error) {
	digest := Digest(file)
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cur.Load()
	if r.standby.Load() && cur.FileDigest != digest {
		return false, ErrStandby
	}
	old := r.cfg.Registrations
	r.cfg.Registrations = registrations
	if cur.FileDigest != digest {
		imported, err := r.importLocked(file, digest, *cur, true)
		if err != nil {
			r.cfg.Registrations = old
		}
		return imported, err
	}
	chk, err := r.check(cur.Doc.Clone())
	if err != nil {
		r.cfg.Registrations = old
		return false, err
	}
	r.cfg.Apply(chk)
	r.cfg.Log.Info("SIGHUP: the config file's provisioning is unchanged since its last import: the running configuration stays",
		"file", path, "revision", cur.Revision, "by", cur.By)
	return false, nil
}

// importLocked makes the file's provisioning the running configuration,
// keeping what the file does not declare (keepUndeclared). r.mu is held.
func (r *Running) importLocked(file provision.Doc, digest string, prev State, found bool) (bool, error) {
	d := file.Clone()
	var kept []string
	if cur := r.cur.Load(); cur != nil {
		kept = keepUndeclared(d, &cur.Doc)
	} else if found {
		kept = keepUndeclared(d, &prev.Doc)
	}
	if err := r.normalise(d); err != nil {
		return false, err
	}
	chk, err := r.check(d)
	if err != nil {
		return false, err
	}
	if d.Management.Telnet && r.cfg.TelnetListen == "" {
		r.cfg.Log.Warn("management telnet is true but [cli] telnet_listen is empty: Telnet stays off")
	}
	rev := prev.Revision + 1
	if cur := r.cur.Load(); cur != nil {
		rev = cur.Revision + 1
	}
	st := &State{Doc: *d, Revision: rev, FileDigest: digest, Time: time.Now(), By: "config file"}
	if err := r.save(st); err != nil {
		return false, err
	}
	r.cfg.Apply(chk)
	r.cfg.Log.Info("running configuration imported from the config file", "revision", rev,
		"subscribers", len(d.Subscribers), "gateways", len(d.Gateways), "kept", strings.Join(kept, ", "))
	return true, nil
}

// Current is the running configuration now (do not change it).
func (r *Running) Current() *State { return r.cur.Load() }

// Update commits change applied to the running configuration (the
// command line's user commands of the control socket).
func (r *Running) Update(by string, change func(d *provision.Doc) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cur.Load()
	d := cur.Doc.Clone()
	if err := change(d); err != nil {
		return err
	}
	return r.commitLocked(d, by)
}

// commitLocked checks d whole, stores it (durable before it is applied)
// and applies it. r.mu is held: commits are one at a time; calls never
// wait on it.
func (r *Running) commitLocked(d *provision.Doc, by string) error {
	if err := r.normalise(d); err != nil {
		return err
	}
	if d.Management.Telnet && r.cfg.TelnetListen == "" {
		return refuse("management.telnet", "the config file's [cli] telnet_listen is empty: there is no address to serve Telnet on")
	}
	if r.standby.Load() {
		return ErrStandby
	}
	chk, err := r.check(d)
	if err != nil {
		return err
	}
	cur := r.cur.Load()
	st := &State{Doc: *d, Revision: cur.Revision + 1, FileDigest: cur.FileDigest, Time: time.Now(), By: by}
	if err := r.save(st); err != nil {
		return err
	}
	r.cfg.Apply(chk)
	r.cfg.Log.Info("running configuration committed", "revision", st.Revision, "by", by)
	return nil
}

// save stores st: durable when it returns (bbolt commits with fdatasync),
// then it is the running one.
func (r *Running) save(st *State) error {
	if err := r.cfg.DB.PutTable(storeKey, st); err != nil {
		return fmt.Errorf("storing the running configuration: %w", err)
	}
	r.cur.Store(st)
	if r.cfg.OnSave != nil {
		r.cfg.OnSave(st)
	}
	return nil
}

// Digest identifies a file's provisioning: config.Parse's digest of the
// sections' text as written (so that an upgrade of the switch does not
// make an unchanged file look edited); for a Doc made otherwise, its JSON
// with the clear passwords.
func Digest(d provision.Doc) string {
	if d.FileDigest != "" {
		return d.FileDigest
	}
	d.Users = nil
	b, err := json.Marshal(struct {
		provision.Doc
		Passwords []string
	}{d, passwords(&d)})
	if err != nil {
		return "unhashable: " + err.Error() // never equal to a stored digest: imported
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// passwords are the subscribers' clear passwords (json leaves them out).
func passwords(d *provision.Doc) []string {
	var p []string
	for _, s := range d.Subscribers {
		p = append(p, s.Password)
	}
	return p
}

// keepUndeclared: a part of the provisioning the file does not declare at
// all keeps what the running configuration has (so a file emptied of its
// tables, once they are managed on the command line, loses nothing); the
// management users are never in the file. It returns the parts kept.
func keepUndeclared(file, cur *provision.Doc) []string {
	kept := []string{"users"}
	file.Users = cur.Users
	// Declared is what config.Parse saw in the file; a Doc made otherwise
	// declares what it has.
	declared := func(keys ...string) bool {
		for _, k := range keys {
			if file.Declared != nil && file.Declared[k] {
				return true
			}
		}
		return false
	}
	if file.Declared == nil {
		declared = func(keys ...string) bool {
			switch keys[0] {
			case "subscriber":
				return len(file.Subscribers) > 0
			case "trusted_peer":
				return len(file.Trusted) > 0
			case "numbering":
				return file.Numbering != provision.Default().Numbering
			case "analysis":
				return hasTables(file)
			case "rating":
				return len(file.Rating.Tariffs)+len(file.Rating.Bands)+len(file.Rating.Assign) > 0
			case "management":
				return file.Management.Telnet || len(file.Management.Sources) > 0
			case "block":
				return len(file.Blocks)+len(file.Gaps) > 0
			case "billing.push":
				return !reflect.DeepEqual(file.Push, provision.DefaultPush())
			case "snmp":
				return file.SNMP.Listen != "" || len(file.SNMP.Communities)+len(file.SNMP.Users)+len(file.SNMP.Targets) > 0
			case "aaa":
				return !reflect.DeepEqual(file.AAA, provision.DefaultAAA())
			}
			return false
		}
	}
	keep := func(name string, keys []string, take func()) {
		if !declared(keys...) {
			take()
			kept = append(kept, name)
		}
	}
	keep("subscribers", []string{"subscriber"}, func() { file.Subscribers = cur.Subscribers })
	keep("trusted peers", []string{"trusted_peer"}, func() { file.Trusted = cur.Trusted })
	keep("numbering settings", []string{"numbering"}, func() { file.Numbering = cur.Numbering })
	keep("routing tables", []string{"analysis", "trunk_plan", "list", "route", "group", "gateway"}, func() {
		file.Analysis, file.TrunkPlans, file.Lists = cur.Analysis, cur.TrunkPlans, cur.Lists
		file.Routes, file.Groups, file.Gateways = cur.Routes, cur.Groups, cur.Gateways
	})
	keep("tariffs", []string{"rating"}, func() { file.Rating = cur.Rating })
	keep("management", []string{"management"}, func() { file.Management = cur.Management })
	keep("traffic controls", []string{"block", "gap"}, func() { file.Blocks, file.Gaps = cur.Blocks, cur.Gaps })
	keep("snmp", []string{"snmp"}, func() { file.SNMP = cur.SNMP })
	keep("cdr push", []string{"billing.push"}, func() { file.Push = cur.Push })
	keep("aaa", []string{"aaa"}, func() { file.AAA = cur.AAA })
	return kept
}
