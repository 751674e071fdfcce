package stats

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Delay is a histogram of message processing delays (R21: from the
// datagram's read to the end of its handling, which sends what it
// forwards), per minute: the last complete minute is what is reported.
// Recording costs a few atomic adds, on the SIP workers.
type Delay struct {
	mu    sync.Mutex // only to start a new minute
	slots [2]delaySlot
}

// Buckets: four per power of two of microseconds, up to about 30 s.
const delayBuckets = 4 * 25

type delaySlot struct {
	minute  atomic.Int64
	count   atomic.Uint64
	sumUS   atomic.Uint64
	buckets [delayBuckets]atomic.Uint64
}

func delayBucket(us uint64) int {
	if us < 4 {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us in [2^e, 2^(e+1))
	sub := int(us>>(e-2)) & 3
	return min(e*4+sub, delayBuckets-1)
}

// bucketTop is the upper bound of bucket i in microseconds.
func bucketTop(i int) uint64 {
	switch {
	case i < 4:
		return uint64(i) + 1
	case i < 8: // not used: 4 µs and up start at 8
		return 4
	}
	e, sub := i/4, i%4
	return uint64(4+sub+1) << (e - 2)
}

// Record adds one message's delay.
func (d *Delay) Record(v time.Duration, now time.Time) {
	m := now.Unix() / 60
	s := &d.slots[m&1]
	if s.minute.Load() != m {
		d.mu.Lock()
		if s.minute.Load() != m {
			s.count.Store(0)
			s.sumUS.Store(0)
			for i := range s.buckets {
				s.buckets[i].Store(0)
			}
			s.minute.Store(m)
		}
		d.mu.Unlock()
	}
	us := uint64(max(v, 0) / time.Microsecond)
	s.count.Add(1)
	s.sumUS.Add(us)
	s.buckets[delayBucket(us)].Add(1)
}

// LastMinute is the mean and the 99th percentile (an upper bound, within
// a quarter) of the delays of the last complete minute; zeros when no
// message was handled then.
func (d *Delay) LastMinute(now time.Time) (mean, p99 time.Duration, n uint64) {
	m := now.Unix()/60 - 1
	s := &d.slots[m&1]
	if s.minute.Load() != m {
		return 0, 0, 0
	}
	n = s.count.Load()
	if n == 0 {
		return 0, 0, 0
	}
	mean = time.Duration(s.sumUS.Load()/n) * time.Microsecond
	need := (n*99 + 99) / 100
	var seen uint64
	for i := range s.buckets {
		if seen += s.buckets[i].Load(); seen >= need {
			return mean, time.Duration(bucketTop(i)) * time.Microsecond, n
		}
	}
	return mean, time.Duration(bucketTop(delayBuckets-1)) * time.Microsecond, n
}
