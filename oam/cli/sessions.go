package cli

import (
	"sort"
	"sync"
	"time"
)

// Sessions lists the logged-in sessions of every terminal, so that an
// admin may see them and end one.
type Sessions struct {
	mu   sync.Mutex
	next int
	live map[int]*Live
}

// Live is one logged-in session.
type Live struct {
	ID    int
	User  string
	From  string
	Via   string // ssh, telnet
	Since time.Time
	end   func()
}

// add registers a session; the returned func removes it.
func (ss *Sessions) add(user, from, via string, end func()) (int, func()) {
	if ss == nil {
		return 0, func() {}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.live == nil {
		ss.live = map[int]*Live{}
	}
	ss.next++
	id := ss.next
	ss.live[id] = &Live{ID: id, User: user, From: from, Via: via, Since: time.Now(), end: end}
	return id, func() {
		ss.mu.Lock()
		delete(ss.live, id)
		ss.mu.Unlock()
	}
}

// List is the sessions by id.
func (ss *Sessions) List() []Live {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]Live, 0, len(ss.live))
	for _, l := range ss.live {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// End closes a session's connection; false when there is none.
func (ss *Sessions) End(id int) bool {
	ss.mu.Lock()
	l := ss.live[id]
	ss.mu.Unlock()
	if l == nil {
		return false
	}
	l.end()
	return true
}
