package call

import (
	"hash/maphash"
	"sync"
)

// table maps Call-IDs of both legs to their leg. Sharded: no lock is
// shared by unrelated calls.
type table struct {
	seed   maphash.Seed
	shards [256]tableShard
}

type tableShard struct {
	mu sync.RWMutex
	m  map[string]*leg
}

func newTable() *table {
	t := &table{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*leg)
	}
	return t
}

func (t *table) shard(id string) *tableShard {
	return &t.shards[maphash.String(t.seed, id)%uint64(len(t.shards))]
}

func (t *table) get(id string) *leg {
	s := t.shard(id)
	s.mu.RLock()
	l := s.m[id]
	s.mu.RUnlock()
	return l
}

// add stores l under id unless id is taken; it reports success.
func (t *table) add(id string, l *leg) bool {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; ok {
		return false
	}
	s.m[id] = l
	return true
}

func (t *table) del(id string) {
	s := t.shard(id)
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// calls lists every call (by its caller leg); for shutdown, not the hot path.
func (t *table) calls() []*Call {
	var out []*Call
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for _, l := range s.m {
			if l.isA {
				out = append(out, l.call)
			}
		}
		s.mu.RUnlock()
	}
	return out
}
