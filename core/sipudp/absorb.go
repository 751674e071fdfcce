package sipudp

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// absorber answers copies of finished non-INVITE requests (RFC 3261
// §17.2.2: a server transaction in Completed sends its final response
// again to each copy, for Timer J, 64*T1 over UDP) without keeping the
// transactions. Kept as a serverTx with its timer, a finished BYE cost
// some 1 KB in a dozen objects that the collector marked in every cycle
// for 32 s: at 2,600 calls/s some 80,000 of them, and after a minute at
// that rate the collector took a fifth of the processor (against a
// twentieth after a few seconds) and a call cost a third more. Here a
// finished transaction is its key and its encoded response, copied into
// the arena of the current second (a byte slice, which the collector does
// not scan), and found through one map from a hash of the key to its
// place (integers: not scanned either). A second's arena is reused, and
// its entries forgotten, once everything in it is older than Timer J.
//
// Two keys with the same 64-bit hash: the later one's place replaces the
// earlier one's, whose copies then find a different key there and reach
// the handler as a new request, as after Timer J.
type absorber struct {
	mu    sync.Mutex
	seed  maphash.Seed
	at    map[uint64]uint64 // hash of a key -> slot<<32 | offset in the slot's arena
	slots [absorbSlots]absorbSlot
	cur   int
}

func init() {
	if time.Duration(absorbSlots-2)*absorbSlot1 < absorbFor {
		panic("sipudp: too few absorber slots for Timer J")
	}
}

// absorbSlot is a second's arena: entries of a 2-byte key length, the
// key, a 4-byte response length and the response.
type absorbSlot struct {
	buf  []byte
	from int64 // when the slot began (unix ns); 0: unused
}

const (
	absorbSlot1 = time.Second // each slot's span
	// Slots enough that a slot is reused only after all in it expired:
	// Timer J (64*T1, 32 s) and two.
	absorbSlots = 34
)

// absorbFor is Timer J over UDP.
var absorbFor = 64 * sip.T1

// init readies the absorber, hashing keys with seed (the endpoint's).
func (a *absorber) init(seed maphash.Seed) {
	a.seed = seed
	a.at = make(map[uint64]uint64)
}

// put records a finished transaction's final response at now (unix ns).
// Keys over 64 KB (never seen: a key is a branch, a method and an
// address) and responses over 4 GB are not recorded.
func (a *absorber) put(key string, res []byte, now int64) {
	if len(key) > 0xffff || int64(len(res)) > 0xffffffff {
		return
	}
	h := maphash.String(a.seed, key)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &a.slots[a.cur]
	if s.from == 0 {
		s.from = now
	} else if now-s.from >= int64(absorbSlot1) {
		a.cur = (a.cur + 1) % absorbSlots
		a.recycle(a.cur, now)
		s = &a.slots[a.cur]
	}
	off := len(s.buf)
	s.buf = binary.BigEndian.AppendUint16(s.buf, uint16(len(key)))
	s.buf = append(s.buf, key...)
	s.buf = binary.BigEndian.AppendUint32(s.buf, uint32(len(res)))
	s.buf = append(s.buf, res...)
	a.at[h] = uint64(a.cur)<<32 | uint64(off)
}

// recycle empties slot i for reuse from now: its entries are forgotten
// (those whose place another entry of the same hash took stay).
func (a *absorber) recycle(i int, now int64) {
	s := &a.slots[i]
	for off := 0; off < len(s.buf); {
		key, _, next := entryAt(s.buf, off)
		h := maphash.Bytes(a.seed, key)
		if a.at[h] == uint64(i)<<32|uint64(off) {
			delete(a.at, h)
		}
		off = next
	}
	s.buf = s.buf[:0]
	s.from = now
}

// get returns a copy of the response recorded for key, if it is younger
// than Timer J at now.
func (a *absorber) get(key string, now int64) ([]byte, bool) {
	h := maphash.String(a.seed, key)
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.at[h]
	if !ok {
		return nil, false
	}
	s := &a.slots[v>>32]
	if now-s.from > int64(absorbFor+absorbSlot1) {
		return nil, false // the traffic paused: the slot was not reused yet
	}
	k, res, _ := entryAt(s.buf, int(v&0xffffffff))
	if string(k) != key {
		return nil, false
	}
	// A copy: the writer may still hold it when the arena is reused.
	return append([]byte(nil), res...), true
}

// entryAt reads the entry at off: its key, its response and where the
// next entry begins.
func entryAt(buf []byte, off int) (key, res []byte, next int) {
	n := int(binary.BigEndian.Uint16(buf[off:]))
	key = buf[off+2 : off+2+n]
	off += 2 + n
	m := int(binary.BigEndian.Uint32(buf[off:]))
	res = buf[off+4 : off+4+m]
	return key, res, off + 4 + m
}
