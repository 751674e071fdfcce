// Package billing writes a call detail record for every call attempt
// (docs/cdr.md). It hears call control on the event bus; the bus handler
// appends each event to a journal (no sync) and queues it, and one writer
// goroutine makes the records durable in the spool (bbolt), then closes
// them into CDR files that never change.
package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/billing/rating"
	"github.com/softswitch/softswitch/core/blocking"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/failpoint"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/sdpinfo"
	"github.com/softswitch/softswitch/core/store"
)

// Config of the CDR writer.
type Config struct {
	Dir                string        // CDR directory: spool.db and the closed files
	Node               string        // this node's name: in record ids and file names
	Format             cdr.Format    // csv or jsonl
	RotateInterval     time.Duration // a file is closed this long after its first record...
	RotateRecords      int           // ...or at this many records...
	RotateBytes        int64         // ...or this size, whichever comes first
	QueueLimit         int           // events waiting above which the spool counts as failing
	RefuseOnFault      bool          // a failing spool refuses new calls (else: carry on and alarm)
	Retention          time.Duration // closed files are removed this long after they closed, once delivered; 0: kept
	DiskAlarmPercent   int           // file system use (percent) that raises cdr-disk; 0: not watched
	Hot                bool          // hot billing: each record as soon as it is durable, in hot/ and on the bus
	SyncInterval       time.Duration // commits (fdatasync) at most this often; 0: 100 ms
	KeepUntilDelivered bool          // a push target is configured: no file is removed before it has it
	Outboxes           []string      // accounting consumers, each with its outbox (outbox.go)
	// HoldCut: the node is one of a replicating pair. Answered calls a
	// crash cut are held at start, not ended by restart, until Settle
	// says which the other node carried on (pair.go).
	HoldCut bool
}

// Billing is the CDR writer.
type Billing struct {
	cfg Config
	log *slog.Logger
	bus *events.Bus
	sp  *spool

	mu       sync.Mutex
	queue    []*events.Event
	jseq     uint64      // the last journal sequence number given (guarded by mu)
	jcur     *jfile      // the journal file appends go to (guarded by mu)
	jfailing atomic.Bool // the last journal append failed
	kick     chan struct{}
	queued   atomic.Int64

	plan        atomic.Pointer[rating.Plan]   // nil: records are not rated
	repl        atomic.Pointer[replicatorBox] // nil: no standby hears the open records (pair.go)
	keep        atomic.Bool                   // a push target is configured (Config.KeepUntilDelivered, then SetKeepUntilDelivered)
	hot         *hot
	failing     atomic.Bool
	pushFailing atomic.Bool
	diskHigh    bool
	lastSweep   time.Time
	done        chan struct{}
	closed      chan struct{} // a file was closed (for the pusher)

	// The writer's own state (one goroutine).
	jspare       *jfile // the other journal file
	jspareUntil  uint64 // jspare may hold events up to this sequence number; 0: it is empty
	applied      uint64 // journal sequence number of the last event applied
	appliedSaved uint64 // ... and committed to the spool
	// calls in progress by caller Call-ID; nil: an answered call's record
	// is in the spool only (commit leaves it there, record reads it back)
	calls map[string]*cdr.Record
	// Unanswered calls a crash cut, by caller Call-ID: their callers may
	// still be retransmitting the INVITE to this start, which then goes
	// on with the same record; closed "ended by restart" at orphansUntil.
	orphans      map[string]*cdr.Record
	orphansUntil time.Time
	// orphanIDs is the Call-IDs of orphans as recover left them (nil:
	// none), read by TakenElsewhere on other goroutines; never changed,
	// only replaced by nil.
	orphanIDs atomic.Pointer[map[string]struct{}]
	held      map[string]string // HoldCut: Call-ID -> record id of the answered calls held at start
	// HoldCut: the records released but not yet in a file at start, by
	// Call-ID, until settled with the pair (pair.go); no file closes
	// meanwhile. nil: settled.
	endedLast  map[string]bool // EndedBeforeStart
	released   map[string]releasedRec
	releasedIn atomic.Pointer[[]string] // their Call-IDs, for Releases (nil: settled)
	// HoldCut: the accounting entries held at start, as AccountKeys, until
	// settled (escrow.go); dropEntries those the other node sent, for the
	// next commit to delete.
	acctIn            atomic.Pointer[[]string]
	dropEntries       []outWrite
	droppedAccounting int
	settledSeq        uint64 // keySettled
	// how many of released the other node wrote (DropReleased), for the log
	droppedReleased int
	settledSav      uint64   // ... as last committed
	unreport        []string // record ids whose Stop the next commit takes out of the outboxes
	tasks           []func() // for the writer, guarded by mu (Settle)
	writes          []write  // changes not yet committed
	boxes           map[string]*outbox
	outWrites       []outWrite   // outbox entries not yet committed
	outPending      atomic.Int64 // len(outWrites), for OutboxSettled
	nextID          uint64
	nextClosed      uint64
	fileSeq         uint64
	gen             uint64 // the bucket released records go to
	lastCommit      time.Time
	retry           *fileIntent // a file whose closing failed half way, tried again
	pending         int         // released records not yet in a closed file
	unsaved         int         // released records in writes, not yet committed
	unsavedB        int64       // their size in a file
	sizer           *cdr.Sizer  // sizes records as the file will hold them
	pendingB        int64       // their size (as stored)
	opened          time.Time
	lastErr         string
	files           atomic.Int64 // files closed since start
	records         atomic.Int64 // records made durable since start

	// The pair's standby's copy and the escrow (escrow.go).
	unreported   []outWrite   // writer: outbox entries unreportIn deleted in the commit under way
	pendingIDs   []string     // writer: record ids of released records given to the standby, not yet in a file
	mirrorWarned atomic.Int64 // when the mirror last said it is full (unix ns)
	mirrorMu     sync.Mutex
	mirrored     map[string]mirroredFile // closed files given to the standby, by name (guarded by mirrorMu)
	mirrorBytes  int64                   // their size (guarded by mirrorMu)
	escrowSince  atomic.Int64            // when the escrow was taken (unix ms); 0: none
	escrowActive atomic.Bool             // this node may write the escrow (it is the active one)
	peerWaitNs   atomic.Int64            // [ha] peer_records_wait
	escrowMu     sync.Mutex              // a release against a discard
	escrowOut    *escrowRelease
}

type releasedRec struct {
	seq  uint64
	size int64
	id   string
}

type write struct {
	closed bool   // closed bucket (key: release sequence) or open bucket (key: Call-ID)
	del    bool   // delete key
	fresh  bool   // a new call's first write: its key is not in the bucket yet
	seq    uint64 // closed key
	size   int64  // a closed record's size in a file
	id     string // closed del: the record's id
	callID string // open key
	rec    *cdr.Record
}

// Open opens the spool in cfg.Dir and finishes what a crash left: a file
// being closed is written again, and every call that was in progress gets
// its record, "ended by restart".
func Open(cfg Config, bus *events.Bus, log *slog.Logger) (*Billing, error) {
	if cfg.Node == "" {
		return nil, errors.New("billing: node name is empty")
	}
	sizer, err := cdr.NewSizer(cfg.Format)
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	boxes, err := newOutboxes(cfg.Outboxes)
	if err != nil {
		return nil, err
	}
	sp, err := openSpool(cfg.Dir)
	if err != nil {
		return nil, err
	}
	b := &Billing{cfg: cfg, log: log, bus: bus, sp: sp, kick: make(chan struct{}, 1), sizer: sizer, boxes: boxes,
		done: make(chan struct{}), closed: make(chan struct{}, 1), calls: make(map[string]*cdr.Record), held: map[string]string{}}
	b.keep.Store(cfg.KeepUntilDelivered)
	if cfg.Hot {
		b.hot = &hot{dir: filepath.Join(cfg.Dir, "hot"), bus: bus}
	}
	if err := b.recover(); err != nil {
		sp.close()
		return nil, fmt.Errorf("CDR spool %s: %w", cfg.Dir, err)
	}
	// The spool has everything the journal held: both files start empty.
	b.appliedSaved = b.applied
	for n := range 2 {
		jf, err := openJournalFile(cfg.Dir, n)
		if err == nil {
			err = jf.empty()
		}
		if err != nil {
			b.closeJournal()
			sp.close()
			return nil, fmt.Errorf("CDR journal in %s: %w", cfg.Dir, err)
		}
		if n == 0 {
			b.jcur = jf
		} else {
			b.jspare = jf
		}
	}
	return b, nil
}

// Handle is the bus handler. It appends the event to the journal (a copy
// into the page cache, no system call, no sync, no lock held) and queues it for
// the writer: when Handle returns, a crash of the process can no longer
// lose the event (journal.go).
func (b *Billing) Handle(e *events.Event) {
	switch e.Kind {
	case events.CallAttempt, events.CallRinging, events.CallAnswer, events.CallRelease, events.CallAdopt, events.CallHandover:
	default:
		return
	}
	b.mu.Lock()
	b.jseq++
	seq, jf := b.jseq, b.jcur
	if jf != nil {
		jf.inflight.Add(1)
	}
	b.queue = append(b.queue, e)
	b.mu.Unlock()
	if jf != nil {
		bp := entryPool.Get().(*[]byte)
		buf := encodeEntry((*bp)[:0], seq, e)
		err := jf.append(buf) // safe from a process crash from here on
		jf.inflight.Done()
		if failpoint.Enabled && e.Kind == events.CallRelease && e.Answered {
			// A crash with the release journalled and nothing of it sent
			// (the BYE's 200, the other node's deletion): pair.go settles.
			failpoint.Hit(b.cfg.Dir, "cdr-release-journalled")
		}
		*bp = buf
		entryPool.Put(bp)
		if err != nil {
			if !b.jfailing.Swap(true) {
				b.log.Error("CDR journal cannot be written: events wait for the spool's commit",
					"dir", b.cfg.Dir, "err", err, "refusing_new_calls", b.cfg.RefuseOnFault)
			}
		} else if b.jfailing.Load() && b.jfailing.Swap(false) {
			b.log.Info("CDR journal written again", "dir", b.cfg.Dir)
		}
	}
	b.queued.Add(1)
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Refusing tells call control to refuse new calls: the operator chose
// that policy and the spool cannot keep up or cannot be written.
func (b *Billing) Refusing() bool {
	if !b.cfg.RefuseOnFault {
		return false
	}
	return b.failing.Load() || b.jfailing.Load() || (b.cfg.QueueLimit > 0 && b.queued.Load() > int64(b.cfg.QueueLimit))
}

// Stats: files closed and records made durable since start.
func (b *Billing) Stats() (files, records int64) { return b.files.Load(), b.records.Load() }

// Run writes until ctx ends; then it writes what is queued, closes the
// current file, and closes the spool.
func (b *Billing) Run(ctx context.Context) {
	defer close(b.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		stopping := false
		select {
		case <-b.kick:
			// One commit (two fdatasyncs) per sync interval at most: under
			// load the batch grows instead of the number of syncs.
			if wait := b.syncEvery() - time.Since(b.lastCommit); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					stopping = true
				}
			}
		case <-tick.C:
		case <-ctx.Done():
			stopping = true
		}
		b.step(time.Now(), stopping)
		if stopping {
			if b.pending > 0 && len(b.writes) == 0 && b.released == nil {
				b.closeFile()
			}
			if b.hot != nil {
				b.hot.close()
			}
			b.closeJournal()
			if err := b.sp.close(); err != nil {
				b.log.Error("CDR spool close", "err", err)
			}
			return
		}
	}
}

// syncEvery paces the writer's commits: what the journal holds is safe
// from power loss too within about this long (plus the sync itself).
func (b *Billing) syncEvery() time.Duration {
	if b.cfg.SyncInterval > 0 {
		return b.cfg.SyncInterval
	}
	return 100 * time.Millisecond
}

// Wait returns once Run has finished.
func (b *Billing) Wait(timeout time.Duration) bool {
	select {
	case <-b.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// step takes the queued events, commits them, and closes the file when it
// is due.
func (b *Billing) step(now time.Time, final bool) {
	defer safe.Recover("billing writer")
	b.mu.Lock()
	batch := b.queue
	b.queue = nil
	lastSeq := b.jseq
	tasks := b.tasks
	b.tasks = nil
	b.mu.Unlock()

	first := lastSeq - uint64(len(batch)) + 1 // the batch is consecutive journal numbers
	for i, e := range batch {
		if i%32 == 31 {
			blocking.Yield() // a big batch is milliseconds of work: SIP first
		}
		b.apply(e)
		b.applied = first + uint64(i)
		// A file holds rotate_records at most, and rotate_mb plus one
		// record: it closes as soon as either is reached, whatever else
		// the batch holds.
		if b.retry == nil && !b.failing.Load() && b.released == nil && (b.pending+b.unsaved >= b.cfg.RotateRecords ||
			b.pending+b.unsaved > 0 && b.pendingB+b.unsavedB >= b.cfg.RotateBytes) {
			b.commit(now)
			if len(b.writes) == 0 {
				b.closeFile()
			}
		}
	}
	b.applied = lastSeq
	b.queued.Add(-int64(len(batch)))
	for _, f := range tasks { // after the events queued before them
		f()
	}
	b.releaseEscrow(now)
	if len(b.orphans) > 0 {
		if b.orphansUntil.IsZero() {
			b.orphansUntil = now.Add(orphanWait) // on the writer's clock
		}
		if final || !now.Before(b.orphansUntil) {
			b.closeOrphans()
		}
	}
	// Calls in progress: the commit's alive time is their last durable
	// time, so a heartbeat every second while there are any.
	if len(b.writes) > 0 || len(b.calls) > 0 || final || b.appliedSaved < b.applied || b.outboxesToDelete() || len(b.dropEntries) > 0 ||
		b.settledSav != b.settledSeq {
		b.commit(now)
	}
	if len(b.writes) == 0 {
		b.turnJournal()
	}
	if b.retry != nil && len(b.writes) == 0 {
		if err := b.finishIntent(*b.retry); err != nil {
			b.fault(err)
		} else {
			b.files.Add(1)
			b.recovered()
		}
	}
	if now.Sub(b.lastSweep) >= time.Minute {
		b.lastSweep = now
		b.sweep(now)
	}
	if b.pending > 0 && b.retry == nil && b.released == nil && (b.pending >= b.cfg.RotateRecords || b.pendingB >= b.cfg.RotateBytes ||
		now.Sub(b.opened) >= b.cfg.RotateInterval) && len(b.writes) == 0 {
		b.closeFile()
	}
}

// apply turns one event into record changes (queued in b.writes).
func (b *Billing) apply(e *events.Event) {
	r := b.record(e.CallID)
	switch e.Kind {
	case events.CallAdopt, events.CallHandover:
		b.applyPair(e, r)
		return
	}
	if r == nil && e.Kind != events.CallAttempt {
		if e.Kind != events.CallRelease {
			return // ringing or answer of a call billing never saw start
		}
		r = b.newRecord(e) // a release without its attempt: recorded all the same
	}
	switch e.Kind {
	case events.CallAttempt:
		if r != nil {
			return // a second attempt event for a call in progress: not a new call
		}
		if o := b.orphans[e.CallID]; o != nil && o.CallingIn == e.Calling && o.CalledIn == e.Called {
			// The caller's INVITE, retransmitted to this start, of a call a
			// crash cut before it was answered: the same attempt, so the
			// same record (id and seizure) goes on.
			delete(b.orphans, e.CallID)
			r = b.fillRecord(o.ID, e)
			r.Seizure = o.Seizure
		} else {
			r = b.newRecord(e)
		}
		b.calls[e.CallID] = r
		b.writes = append(b.writes, write{callID: e.CallID, rec: r, fresh: true})
	case events.CallRinging:
		if r.Ringing.IsZero() {
			r.Ringing = utc(e.Time)
			// Written too: the spool's commit covers the journal up to here.
			b.writes = append(b.writes, write{callID: e.CallID, rec: r})
		}
	case events.CallAnswer:
		first := r.Answer.IsZero()
		r.Answer = utc(e.Answer)
		b.takeCallee(r, e)
		// Parsed here, on the writer, not on the call's message path.
		if ms, err := sdpinfo.Parse(e.AnswerSDP); err == nil && len(ms) > 0 {
			r.MediaAnswered = sdpinfo.Strings(ms)
		}
		// The offer comes with the answer too: a held call does not keep it.
		if len(e.Offer) > 0 {
			if ms, err := sdpinfo.Parse(e.Offer); err == nil {
				r.MediaOffered = sdpinfo.Strings(ms)
			}
		}
		b.writes = append(b.writes, write{callID: e.CallID, rec: r})
		if first {
			b.report(OutboxStart, r)
		}
		b.replicate(e.CallID, r)
	case events.CallRelease:
		delete(b.calls, e.CallID)
		b.replicate(e.CallID, nil)
		r.Release = utc(e.Time)
		if r.Ringing.IsZero() && !e.Ringing.IsZero() {
			r.Ringing = utc(e.Ringing)
		}
		if r.Answer.IsZero() && e.Answered && !e.Answer.IsZero() {
			// Its answer never came here (a call taken over from the other
			// node of the pair before its record did): the release knows.
			r.Answer = utc(e.Answer)
		}
		b.takeCallee(r, e)
		if len(e.Offer) > 0 {
			if ms, err := sdpinfo.Parse(e.Offer); err == nil {
				r.MediaOffered = sdpinfo.Strings(ms)
			}
		}
		r.Status, r.Q850, r.Side, r.Cause = e.Status, e.Q850, e.Side.String(), e.Cause
		r.EndReason = endReason(e.Cause)
		r.Finish()
		b.rate(r)
		if !r.Answer.IsZero() {
			b.report(OutboxStop, r)
		}
		seq := b.nextClosed
		b.nextClosed++
		size := b.sizer.Size(r)
		b.writes = append(b.writes, write{callID: e.CallID, del: true}, write{closed: true, seq: seq, rec: r, size: size})
		b.unsaved++
		b.unsavedB += size
	}
}

// record is the open record of callID (nil: none): from memory, or read
// back from the spool where a commit left an answered call's record.
// Writer only.
func (b *Billing) record(callID string) *cdr.Record {
	r, ok := b.calls[callID]
	if !ok || r != nil {
		return r
	}
	err := b.sp.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketOpen).Get([]byte(callID))
		if v == nil {
			return errors.New("not in the spool")
		}
		var err error
		r, err = getRecord(v)
		return err
	})
	if err != nil {
		// Its next event makes a record of its own (a release), or none.
		b.log.Error("CDR spool: a call's open record cannot be read back", "call", callID, "err", err)
		delete(b.calls, callID)
		return nil
	}
	b.calls[callID] = r
	return r
}

// SetPlan swaps the tariffs (nil: no rating); records released from now
// on are rated with it.
func (b *Billing) SetPlan(p *rating.Plan) { b.plan.Store(p) }

// rate fills the record's charge, currency and meter pulses.
func (b *Billing) rate(r *cdr.Record) {
	p := b.plan.Load()
	if p == nil {
		return
	}
	ch, err := p.Rate(rating.Call{Account: r.Account, Calling: r.CallingIn, Called: r.CalledOut,
		Answer: r.Answer, Billable: time.Duration(r.BillableMS) * time.Millisecond})
	if err != nil {
		b.log.Debug("call not rated", "record", r.ID, "err", err)
	}
	r.Charge, r.Currency, r.Pulses = ch.Amount, ch.Currency, ch.Pulses
}

func (b *Billing) newRecord(e *events.Event) *cdr.Record {
	r := b.fillRecord(b.cfg.Node+"-"+strconv.FormatUint(b.nextID, 10), e)
	b.nextID++
	return r
}

// fillRecord is a record with id filled from an attempt event.
func (b *Billing) fillRecord(id string, e *events.Event) *cdr.Record {
	r := &cdr.Record{ID: id, Node: b.cfg.Node,
		CallingIn: e.Calling, CalledIn: e.Called, CallingOut: e.CallingSent, CalledOut: e.CalledSent,
		Account: e.Account, Route: e.Route, Seizure: utc(e.Setup), CallID: e.CallID, AAAClass: e.AAAClass}
	if r.Seizure.IsZero() {
		r.Seizure = utc(e.Time)
	}
	if e.Trunk != "" {
		r.SourceKind, r.Source = "trunk", e.Trunk
	} else {
		r.SourceKind, r.Source = "subscriber", e.Calling
	}
	return r
}

// takeCallee copies what the event knows of the callee side.
func (b *Billing) takeCallee(r *cdr.Record, e *events.Event) {
	if e.Gateway != "" {
		r.Gateway = e.Gateway
	}
	if e.CalledSent != "" {
		r.CalledOut = e.CalledSent
	}
	if e.CallingSent != "" {
		r.CallingOut = e.CallingSent
	}
	if e.Attempts > r.Attempts {
		r.Attempts = e.Attempts
	}
	if e.CalleeCallID != "" {
		r.CalleeCallID = e.CalleeCallID
	}
	if e.Route != "" {
		r.Route = e.Route
	}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

// endReason maps call control's release cause to the record's end reason.
func endReason(cause string) string {
	switch cause {
	case "BYE":
		return cdr.EndNormal
	case "cancelled":
		return cdr.EndCancelled
	case "no answer":
		return cdr.EndNoAnswer
	case "rejected", "redirected":
		return cdr.EndRejected
	case "session timer expired", "session refresh failed":
		return cdr.EndSessionTime
	case "switch shutdown":
		return cdr.EndShutdown
	case "time limit":
		return cdr.EndTimeLimit
	case "credit control failed":
		return cdr.EndCreditFailed
	}
	return cdr.EndFailed
}

// commit writes the queued changes and the counters in one bbolt
// transaction. THIS is where records become durable: when Update
// returns nil, bbolt has fdatasync'ed them. On failure nothing is lost:
// the changes stay queued and are tried again every second.
func (b *Billing) commit(now time.Time) {
	b.lastCommit = now
	// A call's open record is written once per commit, as it is last (the
	// record pointer holds its latest state), and not at all when the call
	// began and ended within the commit: short calls cost the spool their
	// closed record only.
	last := make(map[string]int, len(b.writes))
	fresh := map[string]bool{}
	for i, w := range b.writes {
		if !w.closed {
			if _, seen := last[w.callID]; !seen && w.fresh {
				fresh[w.callID] = true
			}
			last[w.callID] = i
		}
	}
	err := store.Update(b.sp.db, func(tx *bolt.Tx) error {
		open := tx.Bucket(bucketOpen)
		closed, err := tx.CreateBucketIfNotExists(closedBucket(b.gen))
		if err != nil {
			return err
		}
		for i, w := range b.writes {
			if !w.closed && (last[w.callID] != i || w.del && fresh[w.callID]) {
				continue
			}
			var err error
			switch {
			case w.closed && w.del:
				err = closed.Delete(be(w.seq))
			case w.closed:
				err = putRecord(closed, be(w.seq), w.rec)
			case w.del:
				err = open.Delete([]byte(w.callID))
			default:
				err = putRecord(open, []byte(w.callID), w.rec)
			}
			if err != nil {
				return err
			}
		}
		if err := putU64(tx, keyNextID, b.nextID); err != nil {
			return err
		}
		if err := putU64(tx, keyNextClosed, b.nextClosed); err != nil {
			return err
		}
		if err := putU64(tx, keyJournal, b.applied); err != nil {
			return err
		}
		if err := b.putOutboxes(tx); err != nil {
			return err
		}
		if err := putU64(tx, keySettled, b.settledSeq); err != nil {
			return err
		}
		if err := b.putEscrow(tx); err != nil {
			return err
		}
		return putU64(tx, keyAlive, uint64(now.UnixMilli()))
	})
	if err != nil {
		b.fault(err)
		return
	}
	for i, w := range b.writes {
		if !w.closed && !w.del && last[w.callID] == i && w.rec != nil && !w.rec.Answer.IsZero() && b.calls[w.callID] == w.rec {
			// An answered call's record, durable as it is now: the spool
			// holds it until the call's next event (a held call costs
			// billing a map entry, not a record).
			b.calls[w.callID] = nil
		}
		if w.closed && w.del {
			b.pending--
			b.pendingB -= w.size
			b.mirrorReleased(w.id, nil)
			continue
		}
		if w.closed {
			b.mirrorReleased(w.rec.ID, w.rec)
			if b.pending == 0 {
				b.opened = w.rec.Release
				b.pendingB = b.sizer.Header()
			}
			b.pending++
			b.pendingB += w.size
			b.records.Add(1)
			if b.hot != nil {
				if err := b.hot.emit(w.rec); err != nil {
					b.log.Warn("hot billing stream", "err", err)
				}
			}
		}
	}
	b.committedOutboxes()
	b.escrowCommitted()
	b.unreport = b.unreport[:0]
	b.settledSav = b.settledSeq
	b.writes = b.writes[:0]
	b.unsaved, b.unsavedB = 0, 0
	b.appliedSaved = b.applied
	b.recovered()
}

// closeJournal stops the appends (later events only queue) and closes
// the files; it empties them when the spool has everything they held.
func (b *Billing) closeJournal() {
	b.mu.Lock()
	cur := b.jcur
	b.jcur = nil
	all := b.appliedSaved >= b.jseq
	b.mu.Unlock()
	for _, jf := range []*jfile{cur, b.jspare} {
		if jf != nil {
			jf.inflight.Wait()
			if all {
				jf.f.Truncate(0)
			}
			jf.close()
		}
	}
	b.jspare = nil
}

// turnJournal empties the spare journal file once the spool has what it
// held, and switches files when the active one has grown.
func (b *Billing) turnJournal() {
	if b.jspare == nil {
		return
	}
	if b.jspareUntil != 0 && b.appliedSaved >= b.jspareUntil {
		if err := b.jspare.empty(); err != nil {
			b.log.Warn("CDR journal: emptying a file failed", "err", err)
			return
		}
		b.jspareUntil = 0
	}
	b.jcur.handBack()
	if b.jspareUntil == 0 && b.jcur.off.Load() > journalRotate {
		b.mu.Lock()
		old := b.jcur
		b.jcur, b.jspare = b.jspare, old
		b.jspareUntil = b.jseq
		b.mu.Unlock()
	}
}

func (b *Billing) fault(err error) {
	msg := err.Error()
	if !b.failing.Swap(true) || msg != b.lastErr {
		b.log.Error("CDR spool cannot be written: records are kept in memory and tried again every second",
			"dir", b.cfg.Dir, "err", err, "refusing_new_calls", b.cfg.RefuseOnFault)
		if b.bus != nil {
			b.bus.Publish(&events.Event{Kind: events.CDRSpool, State: "failing", Cause: msg})
		}
	}
	b.lastErr = msg
}

func (b *Billing) recovered() {
	if b.failing.Swap(false) {
		b.lastErr = ""
		b.log.Info("CDR spool written again", "dir", b.cfg.Dir)
		if b.bus != nil {
			b.bus.Publish(&events.Event{Kind: events.CDRSpool, State: "ok"})
		}
	}
}

// closeFile closes the current file: the intent first (durable), then the
// file (durable when writeFile returns), then the counters and the pruning
// of its records in one commit. A crash anywhere in between is finished
// at start by finishIntent.
func (b *Billing) closeFile() {
	in := fileIntent{Seq: b.fileSeq + 1, Gen: b.gen, Format: string(b.cfg.Format)}
	in.Name = fileName(b.cfg.Node, in.Seq, b.opened, b.cfg.Format)
	// Out of the standby's copy first, and out of this process, before
	// the file can exist: a standby that took over after this node put
	// them in a file must not keep them as undelivered (escrow.go).
	if box := b.repl.Load(); box != nil && len(b.pendingIDs) > 0 {
		for _, id := range b.pendingIDs {
			box.r.PutReleased(id, nil)
		}
		box.r.Flush()
	}
	// The intent and the next generation in one commit: records released
	// from now on go to the next file.
	err := store.Update(b.sp.db, func(tx *bolt.Tx) error {
		if err := putU64(tx, keyGen, in.Gen+1); err != nil {
			return err
		}
		return putJSON(tx, keyIntent, in)
	})
	if err != nil {
		b.fault(err)
		return
	}
	b.gen = in.Gen + 1
	b.pendingIDs = b.pendingIDs[:0]
	failpoint.Hit(b.cfg.Dir, "cdr-intent") // the intent is durable, the file not written
	n := b.pending
	b.pending, b.pendingB = 0, 0
	if err := b.finishIntent(in); err != nil {
		// Tried again every second, and at the next start.
		b.fault(err)
		b.retry = &in
		return
	}
	b.files.Add(1)
	b.log.Info("CDR file closed", "file", in.Name, "records", n)
}

// finishIntent writes the intent's file from the spool and commits it.
func (b *Billing) finishIntent(in fileIntent) error {
	each := func(yield func(*cdr.Record) error) error {
		return b.sp.db.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket(closedBucket(in.Gen))
			if bk == nil {
				return nil
			}
			c := bk.Cursor()
			n := 0
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if n++; n%256 == 0 {
					blocking.Yield() // a file is tens of milliseconds of work: SIP first
				}
				r, err := getRecord(v)
				if err != nil {
					return fmt.Errorf("record %d in the spool: %w", u64(k), err)
				}
				if err := yield(r); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := writeFile(b.cfg.Dir, in.Name, cdr.Format(in.Format), each); err != nil {
		return err
	}
	failpoint.Hit(b.cfg.Dir, "cdr-file-written") // the file is in place, the spool not told
	err := store.Update(b.sp.db, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(closedBucket(in.Gen)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if err := tx.Bucket(bucketMeta).Delete(keyIntent); err != nil {
			return err
		}
		files, err := tx.CreateBucketIfNotExists(bucketFiles)
		if err != nil {
			return err
		}
		if err := files.Put(be(in.Seq), []byte(in.Name)); err != nil {
			return err
		}
		return putU64(tx, keyFileSeq, in.Seq)
	})
	if err == nil {
		b.fileSeq, b.retry = in.Seq, nil
		select {
		case b.closed <- struct{}{}:
		default:
		}
		b.mirrorFile(b.cfg.Dir, in.Name)
	}
	return err
}

// recover loads the counters, finishes a file a crash left half closed,
// and closes every call that was in progress as "ended by restart", its
// release time the last time the writer was alive.
func (b *Billing) recover() error {
	removeTemps(b.cfg.Dir)
	var in *fileIntent
	var alive time.Time
	err := b.sp.db.View(func(tx *bolt.Tx) error {
		b.nextID, b.nextClosed = getU64(tx, keyNextID), getU64(tx, keyNextClosed)
		b.fileSeq, b.gen = getU64(tx, keyFileSeq), getU64(tx, keyGen)
		b.settledSeq = getU64(tx, keySettled)
		b.settledSav = b.settledSeq
		b.escrowSince.Store(int64(getU64(tx, keyEscrowSince)))
		if b.cfg.HoldCut {
			if keys := b.pendingAccountKeys(tx); len(keys) > 0 {
				b.acctIn.Store(&keys)
			}
		}
		b.loadOutboxes(tx)
		if ms := getU64(tx, keyAlive); ms > 0 {
			alive = time.UnixMilli(int64(ms)).UTC()
		}
		if v := tx.Bucket(bucketMeta).Get(keyIntent); v != nil {
			in = &fileIntent{}
			return getJSON(v, in)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var recent []*cdr.Record // released, possibly in the last moments before the stop
	if in != nil {
		b.sp.db.View(func(tx *bolt.Tx) error {
			if bk := tx.Bucket(closedBucket(in.Gen)); bk != nil {
				bk.ForEach(func(_, v []byte) error {
					if r, err := getRecord(v); err == nil {
						recent = append(recent, r)
					}
					return nil
				})
			}
			return nil
		})
		b.log.Warn("finishing a CDR file a stop left half closed", "file", in.Name)
		if err := b.finishIntent(*in); err != nil {
			return err
		}
	}
	// The calls in progress, then what the journal holds beyond the spool:
	// applied in order, as the writer would have.
	var applied uint64
	err = b.sp.db.View(func(tx *bolt.Tx) error {
		applied = getU64(tx, keyJournal)
		return tx.Bucket(bucketOpen).ForEach(func(k, v []byte) error {
			r, err := getRecord(v)
			if err != nil {
				return fmt.Errorf("call %q in the spool: %w", k, err)
			}
			b.calls[string(k)] = r
			return nil
		})
	})
	if err != nil {
		return err
	}
	replay, maxSeq, err := readJournals(b.cfg.Dir, applied)
	if err != nil {
		return err
	}
	for _, j := range replay {
		b.apply(j.e)
		for _, t := range []time.Time{j.e.Time, j.e.Setup, j.e.Answer, j.e.Ringing} {
			if t.After(alive) {
				alive = t.UTC()
			}
		}
	}
	b.applied = max(applied, maxSeq)
	b.jseq = b.applied
	if len(replay) > 0 {
		b.log.Warn("CDR journal: events the spool had not committed applied again", "events", len(replay))
	}
	cutIDs := make([]string, 0, len(b.calls))
	for id := range b.calls {
		cutIDs = append(cutIDs, id)
	}
	sort.Strings(cutIDs)
	cut := make([]*cdr.Record, len(cutIDs))
	for i, id := range cutIDs {
		cut[i] = b.record(id)
	}
	clear(b.calls)
	b.orphans = map[string]*cdr.Record{}
	for i, r := range cut {
		// The release time is the last durable time of the start that had
		// the call (kept in the record by an earlier recovery).
		if r.Release.IsZero() {
			r.Release = alive
			for _, t := range []time.Time{r.Seizure, r.Ringing, r.Answer} {
				if t.After(r.Release) {
					r.Release = t
				}
			}
		}
		if r.Answer.IsZero() {
			// Durable with its release time: a crash now keeps it.
			b.orphans[cutIDs[i]] = r
			b.writes = append(b.writes, write{callID: cutIDs[i], rec: r})
			continue
		}
		if b.cfg.HoldCut {
			// Held as in progress (durable with its release time) until
			// the pair says who carried it on (Settle).
			b.calls[cutIDs[i]] = r
			b.held[cutIDs[i]] = r.ID
			b.writes = append(b.writes, write{callID: cutIDs[i], rec: r})
			continue
		}
		b.endByRestart(cutIDs[i], r)
	}
	if len(b.orphans) > 0 {
		ids := make(map[string]struct{}, len(b.orphans))
		for id := range b.orphans {
			ids[id] = struct{}{}
		}
		b.orphanIDs.Store(&ids)
	}
	if len(b.writes) > 0 || b.applied > applied {
		b.commit(time.Now())
		if len(b.writes) > 0 {
			return errors.New(b.lastErr)
		}
	}
	if len(cut) > 0 {
		answered := "recorded as ended by restart"
		if b.cfg.HoldCut {
			answered = "held until the pair's other node says which it carried on"
		}
		b.log.Warn("calls in progress when the switch stopped: answered ones "+answered+
			", unanswered ones wait for their caller's INVITE", "calls", len(cut), "unanswered", len(b.orphans), "last_alive", alive)
	}
	// What is released and not yet in a file. In a pair, those released
	// since the last settling are held out of files until settled: the
	// last ones' deletions may not have reached the other node, which
	// then took the calls on too (pair.go, Releases).
	released := map[string]releasedRec{}
	err = b.sp.db.View(func(tx *bolt.Tx) error {
		b.pending, b.pendingB = 0, 0
		bk := tx.Bucket(closedBucket(b.gen))
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			r, err := getRecord(v)
			if err != nil {
				return fmt.Errorf("record %d in the spool: %w", u64(k), err)
			}
			if b.pending == 0 {
				b.opened = r.Release
				b.pendingB = b.sizer.Header()
			}
			size := b.sizer.Size(r)
			b.pending++
			b.pendingB += size
			recent = append(recent, r)
			if seq := u64(k); b.cfg.HoldCut && seq >= b.settledSeq && r.CallID != "" {
				released[r.CallID] = releasedRec{seq: seq, size: size, id: r.ID}
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	ends := map[string]bool{}
	for _, r := range recent {
		if r.EndReason != cdr.EndRestart && !r.Release.Before(alive.Add(-endedBeforeStop)) {
			for _, id := range []string{r.CallID, r.CalleeCallID} {
				if id != "" {
					ends[id] = true
				}
			}
		}
	}
	b.endedLast = ends
	if len(released) > 0 {
		b.released = released
		ids := make([]string, 0, len(released))
		for id := range released {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		b.releasedIn.Store(&ids)
	} else {
		b.settledSeq = b.nextClosed
	}
	return nil
}

// endedBeforeStop: records released this long before the last durable
// moment may have lost the answer to the request that released them.
const endedBeforeStop = 5 * time.Second

// EndedBeforeStart is the Call-IDs (both legs) of the calls released in
// the last moments before this start's crash or stop, their records
// durable: the 200 to the BYE that released one may not have left, and
// its sender's retransmission is owed that 200, not a 481 (call control's
// SetReleasedThere). Never changed after Open.
func (b *Billing) EndedBeforeStart() map[string]bool { return b.endedLast }

// orphanWait is how long a caller may still retransmit its INVITE
// (RFC 3261 Timer B, 64*T1): an unanswered call a crash cut is taken up
// again by its retransmission until then.
const orphanWait = 32 * time.Second

// endByRestart queues r, a call a crash cut, as released "ended by
// restart" at its release time.
func (b *Billing) endByRestart(callID string, r *cdr.Record) {
	r.EndReason, r.Cause, r.Side, r.Q850 = cdr.EndRestart, "ended by restart", events.SideSwitch.String(), 41
	r.Finish()
	if !r.Answer.IsZero() {
		b.report(OutboxStop, r)
	}
	size := b.sizer.Size(r)
	b.writes = append(b.writes, write{callID: callID, del: true}, write{closed: true, seq: b.nextClosed, rec: r, size: size})
	b.nextClosed++
	b.unsaved++
	b.unsavedB += size
}

// closeOrphans ends the unanswered calls no retransmission took up.
func (b *Billing) closeOrphans() {
	ids := make([]string, 0, len(b.orphans))
	for id := range b.orphans {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b.endByRestart(id, b.orphans[id])
	}
	b.log.Info("unanswered calls cut by the last stop recorded as ended by restart", "calls", len(ids))
	clear(b.orphans)
	b.orphanIDs.Store(nil)
}

// removeTemps deletes the temporary files of a write a crash interrupted.
func removeTemps(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tmp") {
			os.Remove(filepath.Join(dir, n))
		}
	}
}
