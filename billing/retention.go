package billing

import (
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/store"
)

// sweep removes closed files older than the retention period that every
// push target has (with no push configured: older than the period), and
// raises an event when the CDR directory's file system fills up past the
// alarm threshold. It runs on the writer goroutine about once a minute.
func (b *Billing) sweep(now time.Time) {
	if b.cfg.Retention > 0 {
		b.expire(now)
	}
	if b.cfg.DiskAlarmPercent > 0 {
		b.checkDisk()
	}
}

func (b *Billing) expire(now time.Time) {
	type old struct {
		seq  uint64
		name string
	}
	var gone []old
	pushing := b.keep.Load()
	b.sp.db.View(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		if files == nil {
			return nil
		}
		delivered := getU64(tx, keyDelivered)
		c := files.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			seq := u64(k)
			if pushing && seq > delivered {
				break // kept until delivered, however old
			}
			st, err := os.Stat(filepath.Join(b.cfg.Dir, string(v)))
			if err == nil && now.Sub(st.ModTime()) < b.cfg.Retention {
				break // files close in order: the rest are younger
			}
			gone = append(gone, old{seq, string(v)})
		}
		return nil
	})
	if len(gone) == 0 {
		return
	}
	for _, f := range gone {
		os.Remove(filepath.Join(b.cfg.Dir, f.name))
		os.Remove(filepath.Join(b.cfg.Dir, f.name+".sha256"))
	}
	err := store.Update(b.sp.db, func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		for _, f := range gone {
			if err := files.Delete(be(f.seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.log.Warn("CDR retention: removed files not forgotten by the spool", "err", err)
		return
	}
	b.log.Info("CDR files past retention removed", "files", len(gone), "oldest", gone[0].name)
}

// checkDisk raises cdr-disk "high" once the file system is fuller than
// the threshold, and "ok" once it is 5 points below it again.
func (b *Billing) checkDisk() {
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.cfg.Dir, &st); err != nil || st.Blocks == 0 {
		return
	}
	used := int(100 - st.Bavail*100/st.Blocks)
	switch {
	case used >= b.cfg.DiskAlarmPercent && !b.diskHigh:
		b.diskHigh = true
		b.log.Warn("CDR directory's file system is filling up", "dir", b.cfg.Dir, "used_percent", used, "threshold", b.cfg.DiskAlarmPercent)
		if b.bus != nil {
			b.bus.Publish(&events.Event{Kind: events.CDRDisk, State: "high", Level: used})
		}
	case used < b.cfg.DiskAlarmPercent-5 && b.diskHigh:
		b.diskHigh = false
		b.log.Info("CDR directory's file system below its threshold again", "used_percent", used)
		if b.bus != nil {
			b.bus.Publish(&events.Event{Kind: events.CDRDisk, State: "ok", Level: used})
		}
	}
}
