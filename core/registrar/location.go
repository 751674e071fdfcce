// Package registrar is the registrar and location service (R1): REGISTER
// handling and the table of where each address-of-record can be reached.
package registrar

import (
	"hash/fnv"
	"sync"
	"time"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/store"
)

// BindingStore persists bindings; SaveBindings must not block on disk.
// A standby replica (later) implements it too.
type BindingStore interface {
	SaveBindings(aor string, bs []store.Binding)
	Bindings() ([]store.Binding, error)
}

// MaxContacts bounds the bindings of one AOR.
const MaxContacts = 10

const shards = 64

// Location maps AORs to live bindings. It is sharded so that registrations
// and call lookups of different users never share a lock.
type Location struct {
	store BindingStore
	bus   *events.Bus
	sh    [shards]locShard
}

type locShard struct {
	mu sync.RWMutex
	m  map[string][]store.Binding
}

// NewLocation loads the stored bindings that have not expired.
func NewLocation(st BindingStore, bus *events.Bus) (*Location, error) {
	l := &Location{store: st, bus: bus}
	for i := range l.sh {
		l.sh[i].m = make(map[string][]store.Binding)
	}
	all, err := st.Bindings()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	n := 0
	for _, b := range all {
		if b.Expires.After(now) {
			s := l.shard(b.AOR)
			s.m[b.AOR] = append(s.m[b.AOR], b)
			n++
		}
	}
	if n > 0 {
		bus.Publish(&events.Event{Kind: events.Registered, Delta: n})
	}
	return l, nil
}

func (l *Location) shard(aor string) *locShard {
	h := fnv.New32a()
	h.Write([]byte(aor))
	return &l.sh[h.Sum32()%shards]
}

// Lookup returns the live bindings of aor (a copy).
func (l *Location) Lookup(aor string) []store.Binding {
	s := l.shard(aor)
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []store.Binding
	for _, b := range s.m[aor] {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}

// Update applies fn to the bindings of aor under its shard lock, stores
// the result and publishes the change. fn returns the new list, or an
// error status to abort.
func (l *Location) Update(aor string, fn func(cur []store.Binding) ([]store.Binding, int)) ([]store.Binding, int) {
	s := l.shard(aor)
	s.mu.Lock()
	cur := s.m[aor]
	next, status := fn(cur)
	if status != 0 {
		s.mu.Unlock()
		return cur, status
	}
	if len(next) == 0 {
		delete(s.m, aor)
	} else {
		s.m[aor] = next
	}
	l.store.SaveBindings(aor, next)
	s.mu.Unlock()
	if d := len(next) - len(cur); d > 0 {
		l.bus.Publish(&events.Event{Kind: events.Registered, Called: aor, Delta: d})
	} else if d < 0 {
		l.bus.Publish(&events.Event{Kind: events.Unregistered, Called: aor, Delta: d})
	} else {
		l.bus.Publish(&events.Event{Kind: events.Registered, Called: aor})
	}
	return next, 0
}

// Purge drops expired bindings; call it periodically.
func (l *Location) Purge(now time.Time) {
	for i := range l.sh {
		s := &l.sh[i]
		var changed []string
		s.mu.RLock()
		for aor, bs := range s.m {
			for _, b := range bs {
				if !b.Expires.After(now) {
					changed = append(changed, aor)
					break
				}
			}
		}
		s.mu.RUnlock()
		for _, aor := range changed {
			l.Update(aor, func(cur []store.Binding) ([]store.Binding, int) {
				var keep []store.Binding
				for _, b := range cur {
					if b.Expires.After(now) {
						keep = append(keep, b)
					}
				}
				return keep, 0
			})
		}
	}
}

// Replace sets the bindings of aor as the active node of the pair has
// them (core/replica, on the standby): stored and published like a
// registration.
func (l *Location) Replace(aor string, bs []store.Binding) {
	l.Update(aor, func([]store.Binding) ([]store.Binding, int) { return bs, 0 })
}

// ReplaceAll makes the table m (the active node's snapshot): AORs m does
// not have are removed.
func (l *Location) ReplaceAll(m map[string][]store.Binding) {
	var gone []string
	for i := range l.sh {
		s := &l.sh[i]
		s.mu.RLock()
		for aor := range s.m {
			if _, ok := m[aor]; !ok {
				gone = append(gone, aor)
			}
		}
		s.mu.RUnlock()
	}
	for _, aor := range gone {
		l.Replace(aor, nil)
	}
	for aor, bs := range m {
		l.Replace(aor, bs)
	}
}
