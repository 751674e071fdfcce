package billing

import (
	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/events"
)

// Replicator hears the answered calls' open records for the standby of a
// pair (core/replica's Hub, docs/ha.md): the record when the call is
// answered, nil when it is released or handed over. It must never block
// (it runs on the writer).
type Replicator interface {
	PutRecord(callID string, rec []byte)
}

type replicatorBox struct{ r Replicator }

// SetReplicator makes the writer report open records to r (nil: none).
func (b *Billing) SetReplicator(r Replicator) {
	if r == nil {
		b.repl.Store(nil)
		return
	}
	b.repl.Store(&replicatorBox{r})
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
