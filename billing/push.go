package billing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/jlaffaye/ftp"
	bolt "go.etcd.io/bbolt"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/failpoint"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/store"
)

// PushConfig is where closed CDR files are uploaded (R18): FTP servers
// tried in order (primary, then secondary).
type PushConfig struct {
	Servers     []string // host:port
	User        string
	Password    string // never logged
	Dir         string // remote directory; "" = the login directory
	ExplicitTLS bool   // AUTH TLS on the control and data connections (FTPS)
	TLS         *tls.Config
	Timeout     time.Duration // one connection or command
	RetryMin    time.Duration // backoff after a failed upload: doubles up to RetryMax
	RetryMax    time.Duration
}

var (
	bucketFiles  = []byte("files")     // file sequence (8 bytes) -> file name, every closed file
	keyDelivered = []byte("delivered") // the sequence number of the last file delivered to the push target
)

// pusher uploads closed files in sequence order, each once: a file is
// marked delivered (in the spool) only after its rename on the server
// succeeded; after a crash between rename and mark it is uploaded again to
// the same name, never to a second one.
type pusher struct {
	b   *Billing
	cfg PushConfig
	log *slog.Logger

	conn   *ftp.ServerConn
	server string
}

// Push starts uploading closed files; it returns when ctx ends.
func (b *Billing) Push(ctx context.Context, cfg PushConfig) {
	p := &pusher{b: b, cfg: cfg, log: b.log.With("component", "cdr push")}
	defer p.hangUp()
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-b.closed:
		}
		err := p.deliverAll(ctx)
		switch {
		case err == nil:
			wait = time.Second // then at once when a file closes (b.closed)
			p.recover()
		default:
			if wait < cfg.RetryMin {
				wait = cfg.RetryMin
			} else {
				wait = min(2*wait, cfg.RetryMax)
			}
			p.hangUp()
			p.fail(err, wait)
		}
	}
}

// deliverAll uploads every closed file not yet delivered, in order.
func (p *pusher) deliverAll(ctx context.Context) error {
	defer safe.Recover("CDR push")
	for ctx.Err() == nil {
		seq, name, ok, err := p.b.nextUndelivered()
		if err != nil {
			return err
		}
		if !ok {
			return p.deliverRelayed(ctx)
		}
		if err := p.upload(ctx, p.b.cfg.Dir, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// Delivered: durable once this commit returns.
		if err := store.Update(p.b.sp.db, func(tx *bolt.Tx) error { return putU64(tx, keyDelivered, seq) }); err != nil {
			return err
		}
		p.b.unmirrorFile(name)
		p.log.Info("CDR file delivered", "file", name, "server", p.server)
	}
	return nil
}

// deliverRelayed uploads the files the other node of the pair handed
// over (handover.go), after this node's own, each removed here once the
// server has it.
func (p *pusher) deliverRelayed(ctx context.Context) error {
	names, err := p.b.relayed()
	if err != nil {
		return err
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return nil
		}
		if err := p.upload(ctx, filepath.Join(p.b.cfg.Dir, relayDir), name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := p.b.HandedOver(Handover{Name: name}); err != nil {
			return err
		}
		p.log.Info("CDR file delivered (handed over by the other node of the pair)", "file", name, "server", p.server)
	}
	return nil
}

// upload sends the file of dir, then its sidecar, each under a temporary
// name, checks the size the server reports, and renames it into place.
func (p *pusher) upload(ctx context.Context, dir, name string) error {
	if p.conn == nil {
		if err := p.dial(ctx); err != nil {
			return err
		}
	}
	for _, n := range []string{name, name + ".sha256"} {
		local := filepath.Join(dir, n)
		f, err := os.Open(local)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		tmp := path.Join(p.cfg.Dir, "."+n+".part")
		err = p.conn.Stor(tmp, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("STOR %s: %w", tmp, err)
		}
		size, err := p.conn.FileSize(tmp)
		if err != nil {
			return fmt.Errorf("SIZE %s: %w", tmp, err)
		}
		if size != st.Size() {
			return fmt.Errorf("%s: the server has %d bytes of %d", tmp, size, st.Size())
		}
		failpoint.Hit(p.b.cfg.Dir, "cdr-upload-stored") // a .part on the server
		if err := p.conn.Rename(tmp, path.Join(p.cfg.Dir, n)); err != nil {
			return fmt.Errorf("RNFR/RNTO %s: %w", n, err)
		}
	}
	failpoint.Hit(p.b.cfg.Dir, "cdr-upload-renamed") // delivered, not yet marked
	return nil
}

// dial logs in to the first server that takes us.
func (p *pusher) dial(ctx context.Context) error {
	var errs []error
	for _, s := range p.cfg.Servers {
		opts := []ftp.DialOption{ftp.DialWithTimeout(p.cfg.Timeout), ftp.DialWithContext(ctx)} // ctx: a stopped push ends its dial
		if p.cfg.ExplicitTLS {
			tc := p.cfg.TLS
			if tc == nil {
				tc = &tls.Config{}
			}
			tc = tc.Clone()
			if tc.ClientSessionCache == nil {
				// Servers such as vsftpd refuse data connections that do
				// not resume the control connection's TLS session.
				tc.ClientSessionCache = tls.NewLRUClientSessionCache(8)
			}
			if tc.ServerName == "" {
				// The session cache is keyed by ServerName, else by the
				// remote address: a data connection's port differs, and
				// without a name it would never find the session.
				tc.ServerName, _, _ = net.SplitHostPort(s)
			}
			opts = append(opts, ftp.DialWithExplicitTLS(tc))
		}
		c, err := ftp.Dial(s, opts...)
		if err == nil {
			if err = c.Login(p.cfg.User, p.cfg.Password); err != nil {
				c.Quit()
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		p.conn, p.server = c, s
		return nil
	}
	return errors.Join(errs...)
}

func (p *pusher) hangUp() {
	if p.conn != nil {
		p.conn.Quit()
		p.conn = nil
	}
}

func (p *pusher) fail(err error, wait time.Duration) {
	if !p.b.pushFailing.Swap(true) {
		p.log.Error("CDR files cannot be delivered: kept and tried again", "err", err, "retry_in", wait)
		if p.b.bus != nil {
			p.b.bus.Publish(&events.Event{Kind: events.CDRDelivery, State: "failing", Cause: err.Error()})
		}
		return
	}
	p.log.Debug("CDR delivery still failing", "err", err, "retry_in", wait)
}

func (p *pusher) recover() {
	if p.b.pushFailing.Swap(false) {
		p.log.Info("CDR files delivered again")
		if p.b.bus != nil {
			p.b.bus.Publish(&events.Event{Kind: events.CDRDelivery, State: "ok"})
		}
	}
}

// SetKeepUntilDelivered says whether a push target is configured now (a
// commit may add or remove one): closed files are then kept until it has
// them, however old.
func (b *Billing) SetKeepUntilDelivered(on bool) {
	if !b.keep.Swap(on) && on {
		b.task(b.mirrorAll) // the files closed so far are undelivered now: the standby's copy
	}
}

// PushBacklog is how many closed files the push target does not have yet.
func (b *Billing) PushBacklog() (int, error) {
	n := 0
	err := b.sp.db.View(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		if files == nil {
			return nil
		}
		if k, _ := files.Cursor().Last(); len(k) == 8 {
			if last, done := u64(k), getU64(tx, keyDelivered); last > done {
				n = int(last - done)
			}
		}
		return nil
	})
	return n, err
}

// nextUndelivered is the first closed file the push target does not have.
func (b *Billing) nextUndelivered() (seq uint64, name string, ok bool, err error) {
	return b.undeliveredAfter(0)
}

// undeliveredAfter is the first closed file after seq that the push
// target does not have.
func (b *Billing) undeliveredAfter(after uint64) (seq uint64, name string, ok bool, err error) {
	err = b.sp.db.View(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		if files == nil {
			return nil
		}
		if k, v := files.Cursor().Seek(be(max(after, getU64(tx, keyDelivered)) + 1)); k != nil {
			seq, name, ok = u64(k), string(v), true
		}
		return nil
	})
	return
}
