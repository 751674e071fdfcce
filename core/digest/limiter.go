package digest

import (
	"sync"
	"time"
)

// Limiter counts authentication failures per source address in a
// one-minute window, to slow password guessing.
type Limiter struct {
	Max int

	mu     sync.Mutex
	window int64
	counts map[string]int
}

// Blocked reports whether src has used up its failures this minute.
func (l *Limiter) Blocked(src string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	return l.counts[src] >= l.Max
}

// Fail records one failure from src.
func (l *Limiter) Fail(src string, now time.Time) {
	l.mu.Lock()
	l.roll(now)
	l.counts[src]++
	l.mu.Unlock()
}

func (l *Limiter) roll(now time.Time) {
	w := now.Unix() / 60
	if w != l.window || l.counts == nil {
		l.window = w
		l.counts = make(map[string]int)
	}
}
