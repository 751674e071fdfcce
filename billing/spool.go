package billing

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/store"
)

// The spool is the CDRs' durable store, a bbolt file of its own
// (spool.db in the CDR directory): calls in progress by Call-ID, released
// calls by their release sequence until they are in a closed file (one
// bucket per file to come, dropped whole once the file is closed), and
// the counters that keep record ids and file sequence numbers unique
// across restarts. Every change is a bbolt commit: durable (fdatasync)
// once Update returns. Records are in cdr's binary encoding.
var (
	bucketOpen = []byte("open") // caller Call-ID -> Record, calls in progress
	bucketMeta = []byte("meta")
)

// closedBucket holds the released records of file generation gen: release
// sequence (8 bytes, big endian) -> Record.
func closedBucket(gen uint64) []byte { return append([]byte("closed-"), be(gen)...) }

var (
	keyNextID     = []byte("next_id")     // the next record id's number
	keyNextClosed = []byte("next_closed") // the next release sequence
	keyFileSeq    = []byte("file_seq")    // the sequence number of the last closed file
	keyGen        = []byte("gen")         // the generation released records go to now
	keyIntent     = []byte("intent")      // the file being closed (fileIntent, JSON)
	keyAlive      = []byte("alive")       // when the writer last committed (unix ms): a crash's last durable time
	// keySettled: released records before this release sequence were
	// settled with the pair's other node (pair.go, Releases).
	keySettled = []byte("released_settled")
)

type spool struct {
	db *bolt.DB
}

func openSpool(dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("CDR directory %s: %w", dir, err)
	}
	db, err := store.OpenFile(filepath.Join(dir, "spool.db"), "CDR directory", bucketOpen, bucketMeta)
	if err != nil {
		return nil, err
	}
	return &spool{db: db}, nil
}

func (s *spool) close() error { return s.db.Close() }

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func be(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

func getU64(tx *bolt.Tx, key []byte) uint64 { return u64(tx.Bucket(bucketMeta).Get(key)) }

func putU64(tx *bolt.Tx, key []byte, n uint64) error { return tx.Bucket(bucketMeta).Put(key, be(n)) }

func putRecord(b *bolt.Bucket, key []byte, r *cdr.Record) error {
	return b.Put(key, r.AppendBinary(nil))
}

func getRecord(data []byte) (*cdr.Record, error) {
	r := &cdr.Record{}
	return r, r.UnmarshalBinary(data)
}

// fileIntent is a file being closed: recorded before the file is
// renamed into place, so that a crash at any point is finished the same
// way at start (the file is written again from the spool, byte for byte).
type fileIntent struct {
	Seq    uint64 `json:"seq"`
	Name   string `json:"name"`
	Gen    uint64 `json:"gen"` // the records' bucket
	Format string `json:"format"`
}

func putJSON(tx *bolt.Tx, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(key, data)
}

func getJSON(data []byte, v any) error { return json.Unmarshal(data, v) }
