package billing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/events"
	"golang.org/x/sys/unix"
)

// The journal makes a call event safe against a crash of the process the
// moment the bus handler returns, without the call waiting for a disk
// sync and without a system call: the handler copies the event into
// journal-0 or journal-1 in the CDR directory, mapped shared into memory
// (the page cache holds the copy, and it outlives a killed process), then
// queues it for the writer, whose batched spool commit (fdatasync) makes
// it safe against power loss too within sync_interval (100 ms by
// default). The spool keeps the sequence number of the last event it
// applied (keyJournal); at start, the journal's later events are applied
// again, in order. The files take turns: once the spool has applied
// everything in one, it is emptied and the next turn writes it.
//
// A file's blocks are allocated before it is mapped (fallocate): a full
// disk then cannot fault a copy. Where allocation or mapping fails, or an
// entry lies beyond the mapped size (the spool fell behind), the entry is
// written with pwrite(2) instead: the same bytes at the same place.
//
// An entry, at an 8-byte boundary: length (4 bytes, big endian) and
// CRC-32C of the payload, then the payload: a version byte, the event's
// sequence number and the fields billing reads. Concurrent handlers reserve their places
// with an atomic add, so a process killed in the middle of a copy can
// leave a hole before entries that were complete: the length is stored
// first, so a cut entry fails its CRC and is stepped over; a place
// reserved but not yet begun reads as zeros and is stepped over 8 bytes
// at a time. Either way it is the event of a handler that had not
// returned, whose effect never left the switch.

var keyJournal = []byte("journal") // sequence number of the last journaled event the spool applied

// journalRotate is the size after which the active file is switched (a
// variable for the tests). A file is mapped to twice that: the writer
// switches files at its next commit, so a file seldom outgrows it.
var journalRotate int64 = 4 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type jfile struct {
	f        *os.File
	mem      []byte         // the file's first bytes, mapped shared; nil: pwrite only
	off      atomic.Int64   // bytes reserved by appends (8-byte aligned)
	returned int            // mem below this was handed back to the kernel (writer only)
	inflight sync.WaitGroup // appends under way
}

func openJournalFile(dir string, n int) (*jfile, error) {
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("journal-%d", n)), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	return &jfile{f: f}, nil
}

// mapSize is how much of a journal file is mapped.
func mapSize() int { return int(2*journalRotate+4095) &^ 4095 }

// append writes one entry; safe for concurrent use.
func (j *jfile) append(entry []byte) error {
	n := int64(len(entry)+7) &^ 7
	at := j.off.Add(n) - n
	if at+n <= int64(len(j.mem)) && j.copyIn(at, entry) == nil {
		return nil
	}
	w, err := j.f.WriteAt(entry, at)
	if err == nil && w != len(entry) {
		err = io.ErrShortWrite
	}
	return err
}

// copyIn copies entry into the mapping at at, the length first. A fault
// (the file shrank under us, an I/O error on a page) becomes an error,
// and the caller writes the entry with pwrite instead.
func (j *jfile) copyIn(at int64, entry []byte) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("journal mapping: %v", r)
		}
	}()
	m := j.mem[at : at+int64(len(entry))]
	copy(m[:4], entry[:4])
	copy(m[4:], entry[4:])
	return nil
}

// empty clears the file once every append to it has finished, gives its
// blocks back and takes fresh ones, and maps it if it is not yet.
func (j *jfile) empty() error {
	j.inflight.Wait()
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	j.off.Store(0)
	j.returned = 0
	size := mapSize()
	if err := unix.Fallocate(int(j.f.Fd()), 0, 0, int64(size)); err != nil {
		// No blocks to be had (or no fallocate here): pwrite only, so
		// that a full disk is an error and never a fault.
		j.unmap()
		return nil
	}
	if j.mem == nil {
		mem, err := unix.Mmap(int(j.f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err == nil {
			j.mem = mem
		}
	}
	return nil
}

// handBack unmaps the pages below what has been written, less a margin
// for appends still copying: the page cache keeps them (and their
// writes), they just stop counting in the process's memory. An append
// that touches one again maps it again.
func (j *jfile) handBack() {
	upto := int(min(j.off.Load(), int64(len(j.mem)))) - 256<<10
	upto &^= 4095
	if upto <= j.returned {
		return
	}
	if unix.Madvise(j.mem[j.returned:upto], unix.MADV_DONTNEED) == nil {
		j.returned = upto
	}
}

func (j *jfile) unmap() {
	if j.mem != nil {
		unix.Munmap(j.mem)
		j.mem = nil
	}
}

func (j *jfile) close() {
	j.unmap()
	j.f.Close()
}

var entryPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// encodeEntry appends e's journal entry (header and payload) to buf.
func encodeEntry(buf []byte, seq uint64, e *events.Event) []byte {
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0) // length, CRC
	p := len(buf)
	buf = append(buf, entryVersion)
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
		e.CallingSent, e.Trunk, e.Route, e.CalleeCallID, e.AAAClass} {
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
	for _, sdp := range [][]byte{e.AnswerSDP, e.Offer} {
		buf = binary.AppendUvarint(buf, uint64(len(sdp)))
		buf = append(buf, sdp...)
	}
	if len(e.Record) > 0 { // last and optional: entries without it read as before
		buf = binary.AppendUvarint(buf, uint64(len(e.Record)))
		buf = append(buf, e.Record...)
	}
	binary.BigEndian.PutUint32(buf[p-8:], uint32(len(buf)-p))
	binary.BigEndian.PutUint32(buf[p-4:], crc32.Checksum(buf[p:], castagnoli))
	return buf
}

var errEntry = errors.New("journal entry cut short or of another version")

// entryVersion starts each payload: an entry another version wrote (an
// upgrade after a crash) is not misread.
const entryVersion = 2

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
	if len(p) < 10 || p[0] != entryVersion {
		return 0, nil, errEntry
	}
	seq := binary.BigEndian.Uint64(p[1:])
	e := &events.Event{Kind: events.Kind(p[9])}
	r := &entryReader{b: p[10:]}
	e.Time, e.Setup, e.Answer, e.Ringing = r.time(), r.time(), r.time(), r.time()
	for _, s := range []*string{&e.CallID, &e.Calling, &e.Called, &e.Account, &e.Cause, &e.Gateway, &e.CalledSent,
		&e.CallingSent, &e.Trunk, &e.Route, &e.CalleeCallID, &e.AAAClass} {
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
	for _, sdp := range []*[]byte{&e.AnswerSDP, &e.Offer} {
		if b := r.bytes(); len(b) > 0 {
			*sdp = append([]byte(nil), b...)
		}
	}
	if r.err == nil && len(r.b) > 0 {
		e.Record = append([]byte(nil), r.bytes()...)
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
// above applied, in order. Cut entries and holes are stepped over (the
// comment at the top); a length that runs past the end ends the file's
// reading (only a power loss writes one).
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
			if l == 0 {
				data = data[8:]
				continue
			}
			if uint64(l) > uint64(len(data)-8) {
				break
			}
			entry := data[8 : 8+l]
			sum := binary.BigEndian.Uint32(data[4:])
			data = data[min(len(data), int(8+l+7)&^7):]
			if crc32.Checksum(entry, castagnoli) != sum {
				continue
			}
			seq, e, err := decodePayload(entry)
			if err != nil {
				continue
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
