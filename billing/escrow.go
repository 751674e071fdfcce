package billing

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/store"
)

// What the pair's other node had not delivered (docs/ha.md, "CDRs the
// old node had not delivered"). The active node mirrors to its standby
// every record released and not yet in a file, and every accounting
// entry not yet delivered (Replicator.PutReleased, PutAccounting). When
// the standby takes over it keeps that copy here, durably (the escrow),
// and does not write it at once: the old node has every one of those
// records on its own disk and delivers them itself when it returns
// (restarted after a crash, or its link back after a split). Only when
// it has not come back within [ha] peer_records_wait does this node
// write them, in its own files and outboxes, under their own record ids;
// it then remembers their Call-IDs (peer-written), and the old node,
// should it return after all, drops those records as written here
// (pair.go's settling, answered "mine"). A node that returns (it follows
// this one, or this one follows it) takes its escrow back: dropped here.

var (
	// escrow: peer NUL kind NUL key -> what the peer had not delivered.
	bucketEscrow = []byte("escrow")
	// peerWritten: Call-ID -> record id of a record of the pair's other
	// node written here from the escrow.
	bucketPeerWritten = []byte("peer-written")
	keyEscrowSince    = []byte("escrow_since") // when the oldest escrow was taken (unix ms)
)

// Escrow kinds.
const (
	escrowRecord  = "r" // a released record (cdr binary), keyed by record id
	escrowAccount = "a" // an outbox entry (kind byte + record), keyed "OUTBOX/SEQ"
	escrowFile    = "f" // a closed file not yet pushed (its bytes), keyed by name
)

// mirrorCap bounds what the standby is given of each kind: a billing
// centre or an accounting server away for days must not grow both
// nodes' memory without end. Beyond it the rest waits on this node's
// disk alone (logged).
const mirrorCap = 200000

// mirrorReleased tells the standby of a released record durable here
// (nil data: now in a file, or dropped). Writer only.
func (b *Billing) mirrorReleased(id string, r *cdr.Record) {
	box := b.repl.Load()
	if box == nil {
		return
	}
	if r == nil {
		box.r.PutReleased(id, nil)
		return
	}
	if len(b.pendingIDs) >= mirrorCap {
		b.mirrorFull("records")
		return
	}
	b.pendingIDs = append(b.pendingIDs, id)
	box.r.PutReleased(id, r.AppendBinary(nil))
}

// mirrorAccount tells the standby of an outbox entry durable here (nil
// val: delivered or dropped). Writer only.
func (b *Billing) mirrorAccount(box *outbox, seq uint64, val []byte) {
	rb := b.repl.Load()
	if rb == nil {
		return
	}
	key := box.name + "/" + strconv.FormatUint(seq, 10)
	if val == nil {
		rb.r.PutAccounting(key, nil)
		return
	}
	if box.seq-box.deleted > mirrorCap {
		b.mirrorFull("accounting entries")
		return
	}
	rb.r.PutAccounting(key, val)
}

// mirrorOutboxes tells the standby what the commit just made did to the
// outboxes: entries delivered, dropped and added. Writer only; nothing
// at all without a standby.
func (b *Billing) mirrorOutboxes() {
	if b.repl.Load() == nil {
		return
	}
	for _, box := range b.boxes {
		for seq := box.deleted + 1; seq <= box.deleting; seq++ {
			b.mirrorAccount(box, seq, nil)
		}
	}
	for _, ws := range [][]outWrite{b.unreported, b.dropEntries} {
		for _, w := range ws {
			b.mirrorAccount(w.box, w.seq, nil)
		}
	}
	for _, w := range b.outWrites {
		b.mirrorAccount(w.box, w.seq, w.val)
	}
}

func (b *Billing) mirrorFull(what string) {
	last := b.mirrorWarned.Load()
	if time.Since(time.Unix(0, last)) > time.Hour && b.mirrorWarned.CompareAndSwap(last, time.Now().UnixNano()) {
		b.log.Warn("CDR mirror: the standby is given no more undelivered "+what+": the rest wait on this node's disk alone", "dir", b.cfg.Dir)
	}
}

// Closed files this node has not delivered go to the standby whole, in
// parts of filePart (a frame on the link holds one), at most
// mirrorFileBytes of them (a billing centre away for days).
const (
	filePart        = 4 << 20
	mirrorFileBytes = 256 << 20
)

type mirroredFile struct {
	parts int
	size  int64
}

// mirrorFile gives the standby dir/name, a closed file this node must
// still push (its own, or one handed over to it). Any goroutine.
func (b *Billing) mirrorFile(dir, name string) {
	box := b.repl.Load()
	if box == nil || !b.keep.Load() {
		return // no standby; or no push target: no file is "undelivered"
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		b.log.Warn("CDR mirror: a closed file cannot be read for the standby", "file", name, "err", err)
		return
	}
	n := max(1, (len(data)+filePart-1)/filePart)
	b.mirrorMu.Lock()
	if _, ok := b.mirrored[name]; ok || b.mirrorBytes+int64(len(data)) > mirrorFileBytes {
		full := !ok
		b.mirrorMu.Unlock()
		if full {
			b.mirrorFull("closed files (at most 256 MB)")
		}
		return
	}
	if b.mirrored == nil {
		b.mirrored = map[string]mirroredFile{}
	}
	b.mirrored[name] = mirroredFile{parts: n, size: int64(len(data))}
	b.mirrorBytes += int64(len(data))
	b.mirrorMu.Unlock()
	for i := range n {
		box.r.PutFile(filePartKey(name, i, n), data[i*filePart:min((i+1)*filePart, len(data))])
	}
}

// unmirrorFile takes a delivered file out of the standby's copy.
func (b *Billing) unmirrorFile(name string) {
	b.mirrorMu.Lock()
	mf, ok := b.mirrored[name]
	delete(b.mirrored, name)
	b.mirrorBytes -= mf.size
	b.mirrorMu.Unlock()
	box := b.repl.Load()
	if !ok || box == nil {
		return
	}
	for i := range mf.parts {
		box.r.PutFile(filePartKey(name, i, mf.parts), nil)
	}
}

func filePartKey(name string, i, n int) string { return fmt.Sprintf("%s/%d/%d", name, i, n) }

// JoinFileParts puts the files a standby holds back together (its
// records keyed by filePartKey): only whole ones.
func JoinFileParts(parts map[string][]byte) map[string][]byte {
	type partial struct {
		n     int
		parts map[int][]byte
	}
	byName := map[string]*partial{}
	for k, v := range parts {
		f := strings.Split(k, "/")
		if len(f) != 3 {
			continue
		}
		i, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || i < 0 || i >= n {
			continue
		}
		p := byName[f[0]]
		if p == nil {
			p = &partial{n: n, parts: map[int][]byte{}}
			byName[f[0]] = p
		}
		if p.n == n {
			p.parts[i] = v
		}
	}
	out := map[string][]byte{}
	for name, p := range byName {
		if len(p.parts) != p.n {
			continue
		}
		var data []byte
		for i := range p.n {
			data = append(data, p.parts[i]...)
		}
		out[name] = data
	}
	return out
}

// sidecar is a file's SHA-256 sidecar, as writeFile makes it.
func sidecarOf(name string, data []byte) []byte {
	sum := sha256.Sum256(data)
	return []byte(hex.EncodeToString(sum[:]) + "  " + name + "\n")
}

// wroteFileForPeer reports whether this node pushed, from its escrow, the
// file of name with this sidecar (the other node, back, hands it over:
// the billing centre has it).
func (b *Billing) wroteFileForPeer(name string, side []byte) bool {
	found := false
	b.sp.db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bucketPeerWritten); bk != nil {
			found = bytes.Equal(bk.Get([]byte(fileKey(name))), side)
		}
		return nil
	})
	return found
}

func fileKey(name string) string { return "file:" + name }

// mirrorAll gives a replicator just set what is undelivered here now.
// Writer only (a task).
func (b *Billing) mirrorAll() {
	if b.repl.Load() == nil {
		return
	}
	b.pendingIDs = b.pendingIDs[:0]
	type acct struct {
		box *outbox
		seq uint64
		val []byte
	}
	var recs []*cdr.Record
	var accts []acct
	err := b.sp.db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(closedBucket(b.gen)); bk != nil {
			if err := bk.ForEach(func(k, v []byte) error {
				r, err := getRecord(v)
				if err == nil {
					recs = append(recs, r)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		for _, box := range b.boxes {
			if bk := tx.Bucket(box.bucket); bk != nil {
				if err := bk.ForEach(func(k, v []byte) error {
					accts = append(accts, acct{box, u64(k), bytes.Clone(v)})
					return nil
				}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.log.Error("CDR mirror: the spool cannot be read for the standby", "err", err)
		return
	}
	for _, r := range recs {
		b.mirrorReleased(r.ID, r)
	}
	for _, a := range accts {
		b.mirrorAccount(a.box, a.seq, a.val)
	}
	// The closed files not yet pushed, own and handed over.
	for seq := uint64(0); ; {
		next, name, ok, err := b.undeliveredAfter(seq)
		if err != nil || !ok {
			break
		}
		b.mirrorFile(b.cfg.Dir, name)
		seq = next
	}
	if names, err := b.relayed(); err == nil {
		for _, n := range names {
			b.mirrorFile(filepath.Join(b.cfg.Dir, relayDir), n)
		}
	}
}

// Escrow keeps what the pair's other node (peer) had not delivered, as
// this node last heard it (records by record id, accounting entries by
// "OUTBOX/SEQ"): durable when it returns nil. This node writes them
// after SetPeerWait's wait unless the peer comes back first.
func (b *Billing) Escrow(peer string, records, accounting, files map[string][]byte) error {
	if peer == "" || len(records)+len(accounting)+len(files) == 0 {
		return nil
	}
	now := time.Now()
	err := store.Update(b.sp.db, func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketEscrow)
		if err != nil {
			return err
		}
		for kind, m := range map[string]map[string][]byte{escrowRecord: records, escrowAccount: accounting, escrowFile: files} {
			for k, v := range m {
				if err := bk.Put(escrowKey(peer, kind, k), v); err != nil {
					return err
				}
			}
		}
		if getU64(tx, keyEscrowSince) == 0 {
			return putU64(tx, keyEscrowSince, uint64(now.UnixMilli()))
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.escrowSince.CompareAndSwap(0, now.UnixMilli())
	b.log.Info("CDRs the pair's other node had not delivered: kept here until it returns (it delivers them) or peer_records_wait passes (this node does)",
		"node", peer, "records", len(records), "accounting_entries", len(accounting), "files", len(files), "wait", b.peerWait())
	return nil
}

func escrowKey(peer, kind, key string) []byte { return []byte(peer + "\x00" + kind + "\x00" + key) }

// SetEscrowRelease lets the writer write the escrow once due (this node
// is the active one) or stops it (a standby writes none: the active node
// has the pair's other node's records, or that node returns).
func (b *Billing) SetEscrowRelease(on bool) { b.escrowActive.Store(on) }

// SetPeerWait sets how long the escrow waits for its node ([ha]
// peer_records_wait).
func (b *Billing) SetPeerWait(d time.Duration) { b.peerWaitNs.Store(int64(d)) }

func (b *Billing) peerWait() time.Duration {
	if d := time.Duration(b.peerWaitNs.Load()); d > 0 {
		return d
	}
	return time.Hour
}

// DiscardEscrow drops what this node keeps for peer: it is back, with
// its own copy on its disk, and delivers it (through this node, once it
// follows it). Durable on return. Records already written here stay.
func (b *Billing) DiscardEscrow(peer string) {
	if peer == "" || b.escrowSince.Load() == 0 {
		return
	}
	b.escrowMu.Lock()
	defer b.escrowMu.Unlock()
	n := 0
	prefix := []byte(peer + "\x00")
	err := store.Update(b.sp.db, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketEscrow)
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		if k, _ := bk.Cursor().First(); k == nil {
			return tx.Bucket(bucketMeta).Delete(keyEscrowSince)
		}
		return nil
	})
	if err != nil {
		b.log.Error("CDR escrow: the pair's other node is back but its records kept here cannot be dropped", "node", peer, "err", err)
		return
	}
	if n > 0 {
		b.escrowSince.Store(b.escrowLeft())
		b.log.Info("CDR escrow: the pair's other node is back and delivers its own records: those kept here dropped", "node", peer, "entries", n)
	}
}

// escrowLeft is keyEscrowSince as stored (0: no escrow left).
func (b *Billing) escrowLeft() int64 {
	var since uint64
	b.sp.db.View(func(tx *bolt.Tx) error {
		since = getU64(tx, keyEscrowSince)
		return nil
	})
	return int64(since)
}

// WroteForPeer reports whether this node wrote, from its escrow, the
// record of the call of callID that the pair's other node released (or,
// for an AccountKey, sent that accounting entry).
func (b *Billing) WroteForPeer(callID string) bool {
	found := false
	b.sp.db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bucketPeerWritten); bk != nil {
			found = bk.Get([]byte(callID)) != nil
		}
		return nil
	})
	return found
}

// escrowRelease is what the next commit does with the escrow.
type escrowRelease struct {
	keys    [][]byte          // escrow entries written
	written map[string]string // Call-ID (or AccountKey) -> record id
	records int
	entries int
	files   int
}

// AccountKey names an accounting outbox entry of node across the pair
// ("acct:NODE/OUTBOX/SEQ"): asked about by a node that returns, like the
// Call-IDs of its released records (pair.go, PendingAccounting).
func AccountKey(node, boxSeq string) string { return accountPrefix + node + "/" + boxSeq }

const accountPrefix = "acct:"

// IsAccountKey tells an AccountKey from a Call-ID.
func IsAccountKey(k string) bool { return strings.HasPrefix(k, accountPrefix) }

// releaseEscrow writes the escrow, when due, into this node's records
// and outboxes: in the writer's next commit, with the escrow's deletion
// and the peer-written marks (one transaction: a crash writes all or
// none). Writer only.
func (b *Billing) releaseEscrow(now time.Time) {
	since := b.escrowSince.Load()
	if since == 0 || !b.escrowActive.Load() || b.escrowOut != nil || b.released != nil || b.failing.Load() ||
		now.Before(time.UnixMilli(since).Add(b.peerWait())) {
		return
	}
	b.escrowMu.Lock()
	defer b.escrowMu.Unlock()
	rel := &escrowRelease{written: map[string]string{}}
	type entry struct{ k, v []byte }
	var ents []entry
	err := b.sp.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketEscrow)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			ents = append(ents, entry{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		b.fault(err)
		return
	}
	for _, e := range ents {
		parts := strings.SplitN(string(e.k), "\x00", 3)
		rel.keys = append(rel.keys, e.k)
		if len(parts) != 3 {
			continue
		}
		switch parts[1] {
		case escrowRecord:
			r, err := getRecord(e.v)
			if err != nil {
				b.log.Error("CDR escrow: a record of the pair's other node does not decode: dropped", "key", parts[2], "err", err)
				continue
			}
			size := b.sizer.Size(r)
			b.writes = append(b.writes, write{closed: true, seq: b.nextClosed, rec: r, size: size})
			b.nextClosed++
			b.unsaved++
			b.unsavedB += size
			if r.CallID != "" {
				rel.written[r.CallID] = r.ID
			}
			rel.records++
		case escrowFile:
			// Pushed from relay/ like a file handed over, under its own
			// name; should the old node return and hand it over, it is
			// acknowledged without a second push (Relay).
			side := sidecarOf(parts[2], e.v)
			if err := b.Relay(parts[2], e.v, side); err != nil {
				b.log.Error("CDR escrow: a closed file of the pair's other node cannot be kept for the push", "file", parts[2], "err", err)
				rel.keys = rel.keys[:len(rel.keys)-1] // tried again at the next release
				continue
			}
			rel.written[fileKey(parts[2])] = string(side)
			rel.files++
		case escrowAccount:
			// Marked written even when not sent here (accounting off, a
			// Resume): the old node drops it all the same.
			rel.written[AccountKey(parts[0], parts[2])] = parts[2]
			name, _, _ := strings.Cut(parts[2], "/")
			box := b.boxes[name]
			if box == nil || len(e.v) < 1 || OutboxKind(e.v[0]) == OutboxResume || !box.active.Load() {
				continue // accounting off here, or nothing to send
			}
			box.seq++
			b.outWrites = append(b.outWrites, outWrite{box: box, seq: box.seq, val: e.v})
			b.outPending.Add(1)
			rel.entries++
		}
	}
	b.escrowOut = rel
	b.commit(now)
}

// putEscrow, inside the writer's commit, deletes the escrow released and
// marks its records written here.
func (b *Billing) putEscrow(tx *bolt.Tx) error {
	rel := b.escrowOut
	if rel == nil {
		return nil
	}
	if bk := tx.Bucket(bucketEscrow); bk != nil {
		for _, k := range rel.keys {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
	}
	pw, err := tx.CreateBucketIfNotExists(bucketPeerWritten)
	if err != nil {
		return err
	}
	for callID, id := range rel.written {
		if err := pw.Put([]byte(callID), []byte(id)); err != nil {
			return err
		}
	}
	if bk := tx.Bucket(bucketEscrow); bk != nil {
		if k, _ := bk.Cursor().First(); k != nil {
			return nil // taken since (another takeover): waits its turn
		}
	}
	return tx.Bucket(bucketMeta).Delete(keyEscrowSince)
}

// escrowCommitted runs after a successful commit.
func (b *Billing) escrowCommitted() {
	rel := b.escrowOut
	if rel == nil {
		return
	}
	b.escrowOut = nil
	b.escrowSince.Store(b.escrowLeft())
	b.log.Warn("CDRs of the pair's other node, which did not return within peer_records_wait, written by this node",
		"records", rel.records, "accounting_entries", rel.entries, "files", rel.files, "wait", b.peerWait())
}

// PendingAccounting is the AccountKeys of the accounting entries this
// node held at its start, not yet settled with the pair's other node
// (nil: none): the other node may have sent them from its escrow.
func (b *Billing) PendingAccounting() []string {
	if p := b.acctIn.Load(); p != nil {
		return *p
	}
	return nil
}

// DropAccounting drops the outbox entries of keys (AccountKeys): the
// pair's other node sent them. On the writer; durable with its next
// commit (a crash before it asks again, and gets the same answer).
func (b *Billing) DropAccounting(keys []string) {
	if len(keys) == 0 {
		return
	}
	b.task(func() {
		for _, k := range keys {
			rest, ok := strings.CutPrefix(k, AccountKey(b.cfg.Node, ""))
			name, seqText, _ := strings.Cut(rest, "/")
			seq, err := strconv.ParseUint(seqText, 10, 64)
			box := b.boxes[name]
			if !ok || err != nil || box == nil {
				continue
			}
			b.dropEntries = append(b.dropEntries, outWrite{box: box, seq: seq})
			b.droppedAccounting++
		}
	})
}

// pendingAccountKeys lists every outbox entry as an AccountKey (recover).
func (b *Billing) pendingAccountKeys(tx *bolt.Tx) []string {
	var keys []string
	for _, box := range b.boxes {
		if bk := tx.Bucket(box.bucket); bk != nil {
			bk.ForEach(func(k, _ []byte) error {
				keys = append(keys, AccountKey(b.cfg.Node, box.name+"/"+strconv.FormatUint(u64(k), 10)))
				return nil
			})
		}
	}
	return keys
}
