package billing

import (
	"errors"
	"fmt"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"github.com/softswitch/softswitch/billing/cdr"
)

// Outboxes carry accounting (aaa/) its records: a Start when a call is
// answered, a Stop when an answered call ends (ended by restart too).
// An entry is written by the writer in the same commit as the record
// change it reports, so it is exactly as durable as the CDR, and no
// crash can leave one without the other. A consumer reads its outbox in
// order (Outbox), sends, and reports what was delivered (Delivered); the
// writer deletes those entries in its next commit. A consumer that
// crashes before that commit sends them again after the restart, under
// the same identity (the record id): never lost, never under a new one.
//
// Bucket "outbox-NAME": sequence (8 bytes, big endian) -> kind (1 byte)
// and the record (cdr's binary encoding) as it was at that moment.

// OutboxKind is what an outbox entry reports.
type OutboxKind byte

// Outbox entry kinds.
const (
	OutboxStart OutboxKind = 1 // the call was answered
	OutboxStop  OutboxKind = 2 // the answered call ended
	// OutboxResume: an answered call this node took over from the other
	// node of its pair, which sent its Start; nothing is sent for it, but
	// interim updates go on from here.
	OutboxResume OutboxKind = 3
)

// OutboxEntry is one entry of an outbox.
type OutboxEntry struct {
	Seq  uint64
	Kind OutboxKind
	Rec  *cdr.Record
}

type outbox struct {
	name      string
	bucket    []byte
	keySeq    []byte        // meta key: the last sequence given
	seq       uint64        // writer: the last sequence given
	deleted   uint64        // writer: entries up to here are deleted
	deleting  uint64        // writer: the commit under way deletes up to here
	delivered atomic.Uint64 // the consumer: delivered up to here
	notify    chan struct{} // entries were committed
	// active: entries are queued (SetOutboxActive); true from Open, so
	// that the Stops of calls a crash cut are kept for the consumer.
	active atomic.Bool
}

type outWrite struct {
	box *outbox
	seq uint64
	val []byte
}

func newOutboxes(names []string) (map[string]*outbox, error) {
	m := map[string]*outbox{}
	for _, n := range names {
		if n == "" || m[n] != nil {
			return nil, fmt.Errorf("billing: outbox name %q empty or twice", n)
		}
		m[n] = &outbox{name: n, bucket: []byte("outbox-" + n), keySeq: []byte("outbox_seq-" + n),
			notify: make(chan struct{}, 1)}
		m[n].active.Store(true)
	}
	return m, nil
}

// SetOutboxActive starts or stops queueing entries in the outbox name
// (accounting turned on or off at run time). Entries already queued stay
// until delivered. false: there is no such outbox.
func (b *Billing) SetOutboxActive(name string, on bool) bool {
	box := b.boxes[name]
	if box != nil {
		box.active.Store(on)
	}
	return box != nil
}

// report queues an entry of kind for r in every outbox (writer only).
func (b *Billing) report(kind OutboxKind, r *cdr.Record) {
	if len(b.boxes) == 0 {
		return
	}
	val := r.AppendBinary([]byte{byte(kind)})
	for _, box := range b.boxes {
		if !box.active.Load() {
			continue
		}
		box.seq++
		b.outWrites = append(b.outWrites, outWrite{box: box, seq: box.seq, val: val})
		b.outPending.Add(1)
	}
}

// putOutboxes writes the queued entries and deletes the delivered ones,
// inside the writer's commit.
func (b *Billing) putOutboxes(tx *bolt.Tx) error {
	for _, box := range b.boxes {
		bk, err := tx.CreateBucketIfNotExists(box.bucket)
		if err != nil {
			return err
		}
		if err := putU64(tx, box.keySeq, box.seq); err != nil {
			return err
		}
		box.deleting = box.deleted
		if upto := box.delivered.Load(); upto > box.deleted {
			box.deleting = upto
			// From the first entry on (a cursor's Next after Delete
			// skips one: seek the first again each time).
			c := bk.Cursor()
			for k, _ := c.First(); k != nil && u64(k) <= upto; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
	}
	for _, w := range b.outWrites {
		if err := tx.Bucket(w.box.bucket).Put(be(w.seq), w.val); err != nil {
			return err
		}
	}
	for _, w := range b.dropEntries { // the pair's other node sent them (escrow.go)
		if err := tx.Bucket(w.box.bucket).Delete(be(w.seq)); err != nil {
			return err
		}
	}
	return b.unreportIn(tx)
}

// unreportIn takes the Stops of b.unreport's records (dropped: the
// pair's other node wrote them, and reports them) out of the outboxes.
// Rare (a settling after a restart): each outbox is read whole.
func (b *Billing) unreportIn(tx *bolt.Tx) error {
	b.unreported = b.unreported[:0] // this attempt's (a failed commit tries again)
	if len(b.unreport) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(b.unreport))
	for _, id := range b.unreport {
		ids[id] = true
	}
	for _, box := range b.boxes {
		bk := tx.Bucket(box.bucket)
		var drop [][]byte
		err := bk.ForEach(func(k, v []byte) error {
			if len(v) < 1 || OutboxKind(v[0]) != OutboxStop {
				return nil
			}
			r := &cdr.Record{}
			if r.UnmarshalBinary(v[1:]) == nil && ids[r.ID] {
				drop = append(drop, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := bk.Delete(k); err != nil {
				return err
			}
			b.unreported = append(b.unreported, outWrite{box: box, seq: u64(k)})
		}
	}
	return nil
}

// committedOutboxes runs after a successful commit.
func (b *Billing) committedOutboxes() {
	b.mirrorOutboxes() // before the marks below move
	for _, box := range b.boxes {
		box.deleted = box.deleting // not delivered.Load(): it may have moved since
	}
	b.unreported = b.unreported[:0]
	b.dropEntries = b.dropEntries[:0]
	for _, w := range b.outWrites {
		select {
		case w.box.notify <- struct{}{}:
		default:
		}
	}
	b.outPending.Add(-int64(len(b.outWrites)))
	b.outWrites = b.outWrites[:0]
}

// outboxesToDelete tells whether a commit would delete delivered entries.
func (b *Billing) outboxesToDelete() bool {
	for _, box := range b.boxes {
		if box.delivered.Load() > box.deleted {
			return true
		}
	}
	return false
}

// loadOutboxes reads the outboxes' sequence numbers at start.
func (b *Billing) loadOutboxes(tx *bolt.Tx) {
	for _, box := range b.boxes {
		box.seq = getU64(tx, box.keySeq)
		if bk := tx.Bucket(box.bucket); bk != nil {
			if k, _ := bk.Cursor().First(); k != nil {
				box.deleted = u64(k) - 1
			} else {
				box.deleted = box.seq
			}
		} else {
			box.deleted = box.seq
		}
		box.delivered.Store(box.deleted)
	}
}

var errNoOutbox = errors.New("billing: no such outbox")

// Outbox returns up to max committed entries of outbox name after
// sequence after, in order. Safe alongside the writer.
func (b *Billing) Outbox(name string, after uint64, max int) ([]OutboxEntry, error) {
	box := b.boxes[name]
	if box == nil {
		return nil, errNoOutbox
	}
	var out []OutboxEntry
	err := b.sp.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(box.bucket)
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		for k, v := c.Seek(be(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			if len(v) < 1 {
				return fmt.Errorf("outbox %s entry %d: empty", name, u64(k))
			}
			r := &cdr.Record{}
			if err := r.UnmarshalBinary(v[1:]); err != nil {
				return fmt.Errorf("outbox %s entry %d: %w", name, u64(k), err)
			}
			out = append(out, OutboxEntry{Seq: u64(k), Kind: OutboxKind(v[0]), Rec: r})
		}
		return nil
	})
	return out, err
}

// Delivered reports that every entry of outbox name up to seq has been
// delivered; the writer deletes them in its next commit.
func (b *Billing) Delivered(name string, upto uint64) {
	box := b.boxes[name]
	if box == nil {
		return
	}
	for {
		old := box.delivered.Load()
		if upto <= old || box.delivered.CompareAndSwap(old, upto) {
			break
		}
	}
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// OutboxNotify receives after each commit that added entries to outbox
// name (nil when there is no such outbox).
func (b *Billing) OutboxNotify(name string) <-chan struct{} {
	if box := b.boxes[name]; box != nil {
		return box.notify
	}
	return nil
}

// OutboxSettled tells whether outbox name holds nothing and nothing is on
// its way there (every event handed to the writer applied, every entry
// committed): at a clean stop, accounting is then delivered.
func (b *Billing) OutboxSettled(name string) bool {
	if b.queued.Load() != 0 || b.outPending.Load() != 0 {
		return false
	}
	es, err := b.Outbox(name, 0, 1)
	return err == nil && len(es) == 0
}
