// Package store keeps provisioning and registrations in one bbolt file
// under the data directory. Writes on the SIP path are queued and
// committed in batches by one writer goroutine; a record is durable once
// its batch commit (fdatasync) has returned.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/softswitch/softswitch/core/blocking"
	"github.com/softswitch/softswitch/core/safe"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	bucketSubscribers = []byte("subscribers")
	bucketBindings    = []byte("bindings")
	bucketTables      = []byte("tables")
	bucketState       = []byte("state")
)

// Subscriber is a provisioned user. No clear-text password is kept.
type Subscriber struct {
	Number    string `json:"number"`
	HA1MD5    string `json:"ha1_md5"`
	HA1SHA256 string `json:"ha1_sha256"`
	Account   string `json:"account,omitempty"`
}

// Binding is one registered contact of an address-of-record.
type Binding struct {
	AOR       string    `json:"aor"`
	Contact   string    `json:"contact"`   // the Contact URI as registered
	Dest      string    `json:"dest"`      // host:port requests are sent to
	Transport string    `json:"transport"` // udp or tcp
	Expires   time.Time `json:"expires"`
	CallID    string    `json:"call_id"`
	CSeq      uint32    `json:"cseq"`
	Received  string    `json:"received,omitempty"` // source address when NAT was detected
}

// DB is the softswitch's durable store.
type DB struct {
	db  *bolt.DB
	log *slog.Logger

	mu      sync.Mutex
	pending map[string][]Binding // aor -> bindings to write (nil slice = delete)
	kick    chan struct{}
	done    chan struct{}
	flushed chan chan struct{}
}

// OpenFile opens (creating) the bbolt file path with the buckets given:
// the project's one way to open a bbolt file (the CDR spool uses it too).
// owner names the directory in the "locked" error ("data dir").
func OpenFile(path, owner string, buckets ...[]byte) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%s is locked by another process (is a softswitch already running with this %s?)", path, owner)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = Update(db, func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return db, nil
}

// Update is bolt's DB.Update, with a processor lent to the runtime for
// the commit's disk syncs (core/blocking): the project's one way to write
// a bbolt file, so that no commit stalls the SIP path of a switch given
// one CPU. Durable (fdatasync'ed) when it returns nil.
func Update(db *bolt.DB, fn func(*bolt.Tx) error) error {
	return blocking.Do(func() error { return db.Update(fn) })
}

// Open opens (creating) dir/softswitch.db.
func Open(dir string, log *slog.Logger) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "softswitch.db")
	db, err := OpenFile(path, "data dir", bucketSubscribers, bucketBindings, bucketTables, bucketState)
	if err != nil {
		return nil, err
	}
	s := &DB{db: db, log: log, pending: map[string][]Binding{}, kick: make(chan struct{}, 1),
		done: make(chan struct{}), flushed: make(chan chan struct{})}
	// A panic in one round of the writer must not stop registrations
	// from being stored: it starts again.
	safe.Loop("store writer", s.done, s.writer)
	return s, nil
}

// PutTable stores one provisioning table set (JSON) under name, replacing
// the previous one in a single transaction: durable when this returns.
func (s *DB) PutTable(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return Update(s.db, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTables).Put([]byte(name), data)
	})
}

// GetTable reads a table set stored by PutTable; found is false if none.
func (s *DB) GetTable(name string, v any) (found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketTables).Get([]byte(name))
		if data == nil {
			return nil
		}
		found = true
		return json.Unmarshal(data, v)
	})
	return found, err
}

// PutState stores one piece of the switch's own state (JSON) under name:
// durable when this returns (bbolt fdatasyncs the commit).
func (s *DB) PutState(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return Update(s.db, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketState).Put([]byte(name), data)
	})
}

// GetState reads what PutState stored; found is false if nothing.
func (s *DB) GetState(name string, v any) (found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketState).Get([]byte(name))
		if data == nil {
			return nil
		}
		found = true
		return json.Unmarshal(data, v)
	})
	return found, err
}

// TakeState reads and deletes name in one transaction (durable when this
// returns): state meant for the next start only, which a crash after it
// must not find again.
func (s *DB) TakeState(name string, v any) (found bool, err error) {
	err = Update(s.db, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState)
		data := b.Get([]byte(name))
		if data == nil {
			return nil
		}
		found = true
		if err := json.Unmarshal(data, v); err != nil {
			return err
		}
		return b.Delete([]byte(name))
	})
	return found, err
}

// Close flushes queued writes and closes the file.
func (s *DB) Close() error {
	s.Flush()
	close(s.done)
	return s.db.Close()
}

// ReplaceSubscribers makes the subscriber table exactly subs, in one
// transaction (all or nothing).
func (s *DB) ReplaceSubscribers(subs []Subscriber) error {
	return Update(s.db, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketSubscribers); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		b, err := tx.CreateBucket(bucketSubscribers)
		if err != nil {
			return err
		}
		for _, sub := range subs {
			v, _ := json.Marshal(sub)
			if err := b.Put([]byte(sub.Number), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Subscribers returns every subscriber.
func (s *DB) Subscribers() ([]Subscriber, error) {
	var out []Subscriber
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSubscribers).ForEach(func(k, v []byte) error {
			var sub Subscriber
			if err := json.Unmarshal(v, &sub); err != nil {
				return fmt.Errorf("subscriber %q: %w", k, err)
			}
			out = append(out, sub)
			return nil
		})
	})
	return out, err
}

// Bindings returns every stored binding.
func (s *DB) Bindings() ([]Binding, error) {
	var out []Binding
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBindings).ForEach(func(k, v []byte) error {
			var bs []Binding
			if err := json.Unmarshal(v, &bs); err != nil {
				return fmt.Errorf("bindings of %q: %w", k, err)
			}
			out = append(out, bs...)
			return nil
		})
	})
	return out, err
}

// SaveBindings queues the bindings of aor (empty means none) for the
// writer; it never blocks on the disk.
func (s *DB) SaveBindings(aor string, bs []Binding) {
	cp := make([]Binding, len(bs))
	copy(cp, bs)
	s.mu.Lock()
	s.pending[aor] = cp
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Flush waits until everything queued so far is committed.
func (s *DB) Flush() {
	ch := make(chan struct{})
	select {
	case s.flushed <- ch:
		<-ch
	case <-s.done:
	}
}

// writer commits queued bindings in batches: at most one fsync per
// 10 ms however many registrations arrive.
func (s *DB) writer() {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	dirty := false
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
			dirty = true
		case <-tick.C:
			if dirty {
				s.commit()
				dirty = false
			}
		case ch := <-s.flushed:
			s.commit()
			dirty = false
			close(ch)
		}
	}
}

func (s *DB) commit() {
	s.mu.Lock()
	batch := s.pending
	s.pending = map[string][]Binding{}
	s.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := Update(s.db, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBindings)
		for aor, bs := range batch {
			if len(bs) == 0 {
				if err := b.Delete([]byte(aor)); err != nil {
					return err
				}
				continue
			}
			v, _ := json.Marshal(bs)
			if err := b.Put([]byte(aor), v); err != nil {
				return err
			}
		}
		return nil
	})
	// Here the batch is durable (bbolt fdatasyncs before Update returns).
	if err != nil {
		s.log.Error("storing registrations failed; will retry", "err", err, "aors", len(batch))
		s.mu.Lock()
		for aor, bs := range batch {
			if _, newer := s.pending[aor]; !newer {
				s.pending[aor] = bs
			}
		}
		s.mu.Unlock()
	}
}
