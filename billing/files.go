package billing

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/blocking"
)

// fileName is a closed CDR file's name: the node, the file's sequence
// number (ten digits, no gaps) and when its first record was released,
// e.g. ss1_0000000042_20261201T183000Z.csv.
func fileName(node string, seq uint64, opened time.Time, f cdr.Format) string {
	return fmt.Sprintf("%s_%010d_%s.%s", node, seq, opened.UTC().Format("20060102T150405Z"), f)
}

// writeFile writes a closed CDR file from the records each yields: under a
// temporary name, fsynced, renamed into place, the directory fsynced; then
// its SHA-256 sidecar (name.sha256, "HASH  NAME" as sha256sum prints)
// the same way. Written again over a crash's leftovers, it comes out the
// same byte for byte. The file is durable once writeFile returns.
func writeFile(dir, name string, f cdr.Format, each func(func(*cdr.Record) error) error) error {
	sum := sha256.New()
	if err := atomicWrite(dir, name, func(w io.Writer) error {
		enc, err := cdr.NewEncoder(f, w)
		if err != nil {
			return err
		}
		if err := each(enc.Encode); err != nil {
			return err
		}
		return enc.Flush()
	}, sum); err != nil {
		return err
	}
	line := hex.EncodeToString(sum.Sum(nil)) + "  " + name + "\n"
	return atomicWrite(dir, name+".sha256", func(w io.Writer) error {
		_, err := io.WriteString(w, line)
		return err
	}, nil)
}

// atomicWrite writes dir/name through dir/.name.tmp: write, fsync,
// rename, fsync the directory. sum, when set, hashes what was written.
func atomicWrite(dir, name string, fill func(io.Writer) error, sum hash.Hash) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	var w io.Writer = f
	if sum != nil {
		w = io.MultiWriter(f, sum)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = blocking.Do(f.Sync) // a whole file's pages: a long sync
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("CDR file %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return blocking.Do(d.Sync)
}
