package billing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/events"
)

// The journal makes a call event safe against a crash of the process the
// moment the bus handler returns, without the call waiting for a disk
// sync: the handler appends the event to journal-0 or journal-1 in the
// CDR directory (one write(2), O_APPEND, no fsync; the kernel's page
// cache outlives a killed process), then queues it for the writer, whose
// batched spool commit (fdatasync) makes it safe against power loss too
// within sync_interval (100 ms by default). The spool keeps the sequence number of the last
// event it applied (keyJournal); at start, the journal's later events
// are applied again, in order. The files take turns: once the spool has
// applied everything in one, it is emptied and the next turn writes it.
//
// An entry: length (4 bytes, big endian) and CRC-32C of the payload, then
// the payload: the event's sequence number and the fields billing reads.
// A torn last entry (power loss) fails its CRC and ends the reading.

var keyJournal = []byte("journal") // sequence number of the last journaled event the spool applied

// journalRotate is the size after which the active file is switched (a
// variable for the tests).
var journalRotate int64 = 4 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type jfile struct {
	f        *os.File
	size     atomic.Int64
	inflight sync.WaitGroup // appends under way
}

func openJournalFile(dir string, n int) (*jfile, error) {
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("journal-%d", n)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	j := &jfile{f: f}
	if st, err := f.Stat(); err == nil {
		j.size.Store(st.Size())
	}
	return j, nil
}

// append writes one entry; safe for concurrent use (O_APPEND writes of a
// whole entry do not interleave).
func (j *jfile) append(entry []byte) error {
	n, err := j.f.Write(entry)
	j.size.Add(int64(n))
	if err == nil && n != len(entry) {
		err = io.ErrShortWrite
	}
	return err
}

// empty truncates the file once every append to it has finished.
func (j *jfile) empty() error {
	j.inflight.Wait()
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	j.size.Store(0)
	return nil
}

var entryPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// encodeEntry appends e's journal entry (header and payload) to buf.
func encodeEntry(buf []byte, seq uint64, e *events.Event) []byte {
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0) // length, CRC
	p := len(buf)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	buf = append(buf, byte(e.Kind))
	for _, t := range []time.Time{e.Time, e.Setup, e.Answer, e.Ringing} {
		var ns int64
		if !t.IsZero() {
			ns = t.UnixNano()
		}
		buf = binary.AppendVarint(buf, ns)
	}
	for _, s := range []string{e.CallID, e.Calling, e.Called, e.Account, e.Cause, e.Gateway, e.CalledSent,
		e.CallingSent, e.Trunk, e.Route, e.CalleeCallID} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	for _, n := range []int{e.Status, e.Q850, int(e.Side), e.Attempts} {
		buf = binary.AppendVarint(buf, int64(n))
	}
	if e.Answered {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	buf = binary.AppendUvarint(buf, uint64(len(e.Media)))
	for _, s := range e.Media {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(e.Offer)))
	buf = append(buf, e.Offer...)
	binary.BigEndian.PutUint32(buf[p-8:], uint32(len(buf)-p))
	binary.BigEndian.PutUint32(buf[p-4:], crc32.Checksum(buf[p:], castagnoli))
	return buf
}

var errEntry = errors.New("journal entry cut short")

type entryReader struct {
	b   []byte
	err error
}

func (r *entryReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errEntry, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *entryReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errEntry, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *entryReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err, r.b = errEntry, nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *entryReader) time() time.Time {
	ns := r.varint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// decodePayload reads an entry's payload.
func decodePayload(p []byte) (uint64, *events.Event, error) {
	if len(p) < 9 {
		return 0, nil, errEntry
	}
	seq := binary.BigEndian.Uint64(p)
	e := &events.Event{Kind: events.Kind(p[8])}
	r := &entryReader{b: p[9:]}
	e.Time, e.Setup, e.Answer, e.Ringing = r.time(), r.time(), r.time(), r.time()
	for _, s := range []*string{&e.CallID, &e.Calling, &e.Called, &e.Account, &e.Cause, &e.Gateway, &e.CalledSent,
		&e.CallingSent, &e.Trunk, &e.Route, &e.CalleeCallID} {
		*s = string(r.bytes())
	}
	for _, n := range []*int{&e.Status, &e.Q850, nil, &e.Attempts} {
		v := int(r.varint())
		if n == nil {
			e.Side = events.Side(v)
		} else {
			*n = v
		}
	}
	if len(r.b) > 0 {
		e.Answered = r.b[0] == 1
		r.b = r.b[1:]
	} else {
		r.err = errEntry
	}
	nm := r.uvarint()
	for i := uint64(0); i < nm && r.err == nil; i++ {
		e.Media = append(e.Media, string(r.bytes()))
	}
	if off := r.bytes(); len(off) > 0 {
		e.Offer = append([]byte(nil), off...)
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	return seq, e, nil
}

type journaled struct {
	seq uint64
	e   *events.Event
}

// readJournals returns the events of both files with a sequence number
// above applied, in order; a file's reading ends at its first bad entry
// (only a power loss tears one, and only the last).
func readJournals(dir string, applied uint64) ([]journaled, uint64, error) {
	var out []journaled
	var maxSeq uint64
	for n := 0; n < 2; n++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("journal-%d", n)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		for len(data) >= 8 {
			l := binary.BigEndian.Uint32(data)
			sum := binary.BigEndian.Uint32(data[4:])
			if uint64(l) > uint64(len(data)-8) || crc32.Checksum(data[8:8+l], castagnoli) != sum {
				break
			}
			seq, e, err := decodePayload(data[8 : 8+l])
			data = data[8+l:]
			if err != nil {
				break
			}
			maxSeq = max(maxSeq, seq)
			if seq > applied {
				out = append(out, journaled{seq, e})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, maxSeq, nil
}
