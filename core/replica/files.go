package replica

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/softswitch/softswitch/core/safe"
)

// Closed CDR files the standby has not delivered go to the active node
// over the link (a standby sends nothing to the billing centre itself):
// the standby sends a file in parts, the active node stores it durably
// (Hub.Relay) and acknowledges it, and only then does the standby count
// it delivered (Files). One file at a time.

// Files is the standby's side: its closed files not yet delivered.
type Files interface {
	// Next is the first file to hand over; ok is false when none waits.
	Next() (f File, ok bool, err error)
	// Done records that the active node has f.
	Done(f File) error
}

// File is one closed CDR file and its SHA-256 sidecar.
type File struct {
	Name          string
	Data, Sidecar []byte
	Ref           any // the source's own
}

const (
	filePart     = 1 << 20          // bytes of a file in one frame
	maxFileBytes = 256 << 20        // a larger file is refused (rotate_mb bounds them far below)
	fileAckWait  = 60 * time.Second // for the active node to store a file
	filesIdle    = 2 * time.Second  // between looks when nothing waits
)

// Releases is the standby's side of the question it puts to the active
// node after a restart: for each call whose release it wrote in its last
// moments (its end may not have reached the active node, which then took
// the call on too), who writes the record.
type Releases interface {
	// Pending is the Call-IDs to ask about (none: nothing to settle).
	Pending() []string
	// Answer takes the answers about some of them as they come: ours[id]
	// true when this node's record stands. last: every call is answered
	// (or the active node cannot be asked: the rest stand).
	Answer(ours map[string]bool, last bool)
}

const (
	endedWait  = 10 * time.Second // for the active node's answer about one batch
	endedBatch = 500              // calls asked about in one message
)

// askReleases puts f.Releases' question to the active node (answers, or
// an older one that cannot: the records here stand); false: the
// connection failed (asked again on the next one).
func (f *Follower) askReleases(ctx context.Context, ch *Channel, acks <-chan message, answers bool) bool {
	ids := f.Releases.Pending()
	if !answers {
		if len(ids) > 0 {
			f.Log.Warn("replication: the active node runs an older version that cannot settle the calls released here before the stop: their records stand", "calls", len(ids))
		}
		f.Releases.Answer(nil, true)
		return true
	}
	if len(ids) == 0 {
		f.Releases.Answer(nil, true)
		return true
	}
	for start := 0; start < len(ids); start += endedBatch {
		batch := ids[start:min(start+endedBatch, len(ids))]
		ch.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if err := ch.Send(encode(&message{Kind: kindEnded, Keys: batch})); err != nil {
			return false
		}
		t := time.NewTimer(endedWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
			f.Log.Warn("replication: the active node did not answer about the calls released here before the stop", "calls", len(batch))
			return false
		case m := <-acks:
			t.Stop()
			if m.Kind != kindEndedOK || len(m.Ours) != len(batch) {
				f.Log.Warn("replication: an answer out of order", "kind", m.Kind, "answers", len(m.Ours), "asked", len(batch))
				return false
			}
			// Each batch settled as it comes: a takeover before the rest
			// keeps what was answered.
			f.Releases.Answer(m.Ours, start+len(batch) == len(ids))
		}
	}
	return true
}

// handOver settles f.Releases, then sends f's files to the active node,
// while the connection lasts; acks carries what the active node
// acknowledged or answered, answers whether it answers questions. A
// failure ends the connection (broken), so that the next one tries
// again.
func (f *Follower) handOver(ctx context.Context, ch *Channel, acks <-chan message, answers bool, broken func()) {
	defer safe.Recover("replication file handover")
	if f.Releases != nil && !f.askReleases(ctx, ch, acks, answers) {
		broken()
		return
	}
	if f.Files == nil {
		return
	}
	// The loop below returns before the connection ends only on a failure.
	defer func() {
		if ctx.Err() == nil {
			broken()
		}
	}()
	for ctx.Err() == nil {
		file, ok, err := f.Files.Next()
		if err != nil {
			f.Log.Error("replication: closed CDR files cannot be read for the active node", "err", err)
		}
		if err != nil || !ok {
			select {
			case <-ctx.Done():
				return
			case <-time.After(filesIdle):
			}
			continue
		}
		if err := sendFile(ch, file); err != nil {
			f.Log.Warn("replication: a CDR file not handed over (tried again on the next connection)", "file", file.Name, "err", err)
			return
		}
		t := time.NewTimer(fileAckWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			f.Log.Warn("replication: the active node did not acknowledge a CDR file", "file", file.Name)
			return
		case m := <-acks:
			t.Stop()
			if m.Kind != kindFileOK || m.Name != file.Name {
				f.Log.Warn("replication: an acknowledgement for another file", "file", file.Name, "ack", m.Name)
				return
			}
		}
		if err := f.Files.Done(file); err != nil {
			// This node's disk, not the link: no new connection would
			// help. Tried again on the next one.
			f.Log.Error("replication: a CDR file handed over cannot be marked", "file", file.Name, "err", err)
			<-ctx.Done()
			return
		}
		f.Log.Info("replication: a closed CDR file handed to the active node", "file", file.Name)
	}
}

func sendFile(ch *Channel, file File) error {
	if len(file.Data) > maxFileBytes {
		return fmt.Errorf("%d bytes: over the bound", len(file.Data))
	}
	for off := 0; ; off += filePart {
		end := min(off+filePart, len(file.Data))
		m := &message{Kind: kindFile, Name: file.Name, Offset: int64(off), Rec: file.Data[off:end]}
		if end == len(file.Data) {
			m.Last, m.Side = true, file.Sidecar
		}
		ch.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if err := ch.Send(encode(m)); err != nil {
			return err
		}
		if end == len(file.Data) {
			return nil
		}
	}
}

// receiveFiles reads what the standby sends on a connection the hub
// serves: files handed over, each stored by h.Relay and acknowledged
// through the session's queue. It returns when the connection ends or
// the standby sends something out of order.
func (h *Hub) receiveFiles(ch *Channel, s *session) {
	defer safe.Recover("replication file receive")
	var name string
	var buf []byte
	for {
		b, err := ch.Recv()
		if err != nil {
			return // the connection ended: the sender notices too
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil || m.Kind != kindFile && m.Kind != kindEnded {
			h.Log.Warn("replication: the standby sent what it must not", "kind", m.Kind, "err", err)
			s.drop()
			return
		}
		if m.Kind == kindEnded {
			if len(m.Keys) > endedBatch {
				h.Log.Warn("replication: the standby asked about too many calls at once", "calls", len(m.Keys))
				s.drop()
				return
			}
			ours := make(map[string]bool, len(m.Keys))
			for _, k := range m.Keys {
				ours[k] = h.Ended == nil || h.Ended(k)
			}
			s.queued.Add(1) // counted like a change (Flush), before it can be sent
			select {
			case s.q <- encode(&message{Kind: kindEndedOK, Ours: ours}):
			default:
				s.drop()
				return
			}
			continue
		}
		if m.Offset == 0 {
			name, buf = m.Name, buf[:0]
		}
		if m.Name != name || m.Offset != int64(len(buf)) || len(buf)+len(m.Rec) > maxFileBytes {
			h.Log.Warn("replication: a CDR file from the standby out of order", "file", m.Name)
			s.drop()
			return
		}
		buf = append(buf, m.Rec...)
		if !m.Last {
			continue
		}
		if h.Relay == nil {
			h.Log.Warn("replication: the standby hands over CDR files but this node keeps none ([billing] is off)", "file", name)
			s.drop()
			return
		}
		if err := h.Relay(name, buf, m.Side); err != nil {
			h.Log.Error("replication: a CDR file from the standby not kept", "file", name, "err", err)
			s.drop()
			return
		}
		h.Log.Info("replication: a closed CDR file taken from the standby, for the push", "file", name)
		ack := encode(&message{Kind: kindFileOK, Name: name})
		s.queued.Add(1)
		select {
		case s.q <- ack:
		default:
			s.drop() // its queue is full: the session ends, the standby sends the file again
			return
		}
		buf = nil
	}
}
