package billing

import (
	"sort"

	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/events"
)

// Replicator hears the answered calls' open records for the standby of a
// pair (core/replica's Hub, docs/ha.md): the record when the call is
// answered, nil when it is released or handed over. It must never block
// (it runs on the writer).
type Replicator interface {
	PutRecord(callID string, rec []byte)
	// PutReleased: a released record durable here and not yet in a
	// file, by record id (nil: in a file now, or dropped) (escrow.go).
	PutReleased(recordID string, rec []byte)
	// PutAccounting: an accounting outbox entry durable here, keyed
	// "OUTBOX/SEQ" (nil: delivered, or dropped).
	PutAccounting(key string, entry []byte)
	// PutFile: a part of a closed file not yet pushed, keyed
	// "NAME/PART/PARTS" (nil: pushed, or handed over).
	PutFile(key string, part []byte)
	// Flush returns once what was put has left this process (bounded):
	// records leave the standby's copy before they go into a file.
	Flush()
}

type replicatorBox struct{ r Replicator }

// SetReplicator makes the writer report open records to r (nil: none).
func (b *Billing) SetReplicator(r Replicator) {
	if r == nil {
		b.repl.Store(nil)
		return
	}
	b.repl.Store(&replicatorBox{r})
	b.task(b.mirrorAll) // what is undelivered already
}

// replicate reports r (nil: the call's end) for callID. Writer only.
func (b *Billing) replicate(callID string, r *cdr.Record) {
	box := b.repl.Load()
	if box == nil {
		return
	}
	if r == nil {
		box.r.PutRecord(callID, nil)
		return
	}
	box.r.PutRecord(callID, r.AppendBinary(nil))
}

// Adopt takes the open record of a call this node took over from its
// pair's other node: the call's release writes it, with the other node's
// record id (the id accounting's Start carried, so its Stop matches), as
// the CDR of the call. Journalled like every event (Handle): durable
// here from its return. data nil: the other node had not written the
// record yet; the release then makes a record of its own.
func (b *Billing) Adopt(callID string, data []byte) {
	b.Handle(&events.Event{Kind: events.CallAdopt, CallID: callID, Record: data})
}

// applyPair applies an adoption or a handover. Writer only.
func (b *Billing) applyPair(e *events.Event, r *cdr.Record) {
	switch e.Kind {
	case events.CallAdopt:
		if r != nil || len(e.Record) == 0 {
			return // already here (a journal replay), or nothing to take
		}
		rec, err := getRecord(e.Record)
		if err != nil {
			b.log.Error("an adopted call's record does not decode: its release makes a record of its own", "call", e.CallID, "err", err)
			return
		}
		b.calls[e.CallID] = rec
		b.writes = append(b.writes, write{callID: e.CallID, rec: rec, fresh: true})
		if !rec.Answer.IsZero() {
			b.report(OutboxResume, rec)
		}
		b.replicate(e.CallID, rec) // this node's own standby carries it on in turn
	case events.CallHandover:
		if r == nil {
			return
		}
		// The node that took over writes this call's record (it has it,
		// with the same id): none here.
		delete(b.calls, e.CallID)
		b.replicate(e.CallID, nil)
		b.writes = append(b.writes, write{callID: e.CallID, del: true})
	}
}

// TakenElsewhere tells billing that the other node of the pair has a
// call of callID in progress. An unanswered call the last stop cut here
// (an orphan) of that Call-ID is then dropped: its caller's INVITE,
// retransmitted to the address that moved, set the call up there, and
// that node writes its record (without this, the orphan would be
// written "ended by restart" too: two records of one attempt). Cheap for
// every other Call-ID: it is called for each call the other node
// reports.
func (b *Billing) TakenElsewhere(callID string) {
	ids := b.orphanIDs.Load()
	if ids == nil {
		return
	}
	if _, ok := (*ids)[callID]; !ok {
		return
	}
	b.task(func() {
		if b.orphans[callID] == nil {
			return // taken up or closed since
		}
		delete(b.orphans, callID)
		b.writes = append(b.writes, write{callID: callID, del: true})
		b.log.Info("an unanswered call the last stop cut was set up by the pair's other node: its record is written there", "call", callID)
	})
}

// ReleasedPending is the Call-IDs of the records this node released
// before its last stop and has not yet settled with the pair's other
// node (nil: none). The last of them may have been released in the
// moment before a crash, their deletions never reaching the other node,
// which then took the calls on as well (Releases in core/replica). Until
// SettleReleased, no CDR file closes.
func (b *Billing) ReleasedPending() []string {
	if p := b.releasedIn.Load(); p != nil {
		return *p
	}
	return nil
}

// DropReleased drops the records of those calls the other node wrote
// (it released them itself), with their accounting Stops. On the
// writer, after the events queued before it; durable with its next
// commit (a crash before it asks again, and gets the same answer).
func (b *Billing) DropReleased(callIDs []string) {
	if len(callIDs) == 0 {
		return
	}
	b.task(func() {
		for _, id := range callIDs {
			r, ok := b.released[id]
			if !ok {
				continue // settled already
			}
			delete(b.released, id)
			b.log.Debug("a call released here before the stop was recorded by the pair's other node: this record dropped", "call", id, "record", r.id)
			b.writes = append(b.writes, write{closed: true, del: true, seq: r.seq, size: r.size, id: r.id})
			b.unreport = append(b.unreport, r.id)
			b.droppedReleased++
		}
	})
}

// SettleReleased ends the settling: the records not dropped stand and go
// to files as usual (all of them when there is no other node to ask:
// this node became the active one). Later calls do nothing.
func (b *Billing) SettleReleased() {
	b.task(func() {
		if b.released == nil && b.acctIn.Load() == nil {
			return
		}
		b.log.Info("calls released just before the last stop: settled with the pair's other node",
			"records_kept", len(b.released), "written_by_the_other_node", b.droppedReleased,
			"accounting_entries_sent_by_the_other_node", b.droppedAccounting)
		b.released = nil
		b.releasedIn.Store(nil)
		b.acctIn.Store(nil)
		// Durable with the next commit: a crash before it asks again
		// about those kept (the same answer), one after asks nothing.
		b.settledSeq = b.nextClosed
	})
}

// task runs f on the writer, after the events queued before it.
func (b *Billing) task(f func()) {
	b.mu.Lock()
	b.tasks = append(b.tasks, f)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Settle decides the answered calls a crash cut and Open held (HoldCut):
// those carried says the other node of the pair carried on (it adopted
// them, so it writes their records) are dropped here; the others are
// recorded "ended by restart" at the time this node stopped. Calls live
// on this node again (live: adopted back) are left to their release. The
// unanswered ones it holds (orphans) are asked about too (answered
// false). It runs on the writer, after the events queued before it;
// carried must not block. Once settled, later calls do nothing.
func (b *Billing) Settle(carried func(callID, recordID string, answered bool) bool, live func(callID string) bool) {
	b.task(func() { b.settle(carried, live) })
}

func (b *Billing) settle(carried func(callID, recordID string, answered bool) bool, live func(callID string) bool) {
	if len(b.held) == 0 && len(b.orphans) == 0 {
		return
	}
	dropped, ended := 0, 0
	ids := make([]string, 0, len(b.held))
	for id := range b.held {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := b.record(id)
		if r == nil || r.ID != b.held[id] {
			continue // released or replaced since
		}
		switch {
		case live != nil && live(id):
			// The call goes on here: its release writes this record.
		case carried(id, r.ID, true):
			b.log.Debug("a call the last stop cut is carried on by the pair's other node: this record dropped", "call", id, "record", r.ID)
			delete(b.calls, id)
			b.writes = append(b.writes, write{callID: id, del: true})
			dropped++
		default:
			delete(b.calls, id)
			b.endByRestart(id, r)
			ended++
		}
	}
	clear(b.held)
	// Unanswered ones the other node took on (and refused, with a record
	// of its own) are dropped too; the rest wait for their caller's
	// INVITE as before.
	orphans := 0
	for id, r := range b.orphans {
		if carried(id, r.ID, false) {
			delete(b.orphans, id)
			b.writes = append(b.writes, write{callID: id, del: true})
			orphans++
		}
	}
	b.log.Info("answered calls the last stop cut: settled", "carried_on_by_the_other_node", dropped, "ended_by_restart", ended,
		"unanswered_taken_on_by_the_other_node", orphans)
}
