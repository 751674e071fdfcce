package billing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/sftp"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
	"golang.org/x/net/netutil"

	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/store"
)

// PullConfig is the read-only SFTP server the billing centre logs into to
// fetch closed CDR files (R18, pull).
type PullConfig struct {
	User         string
	PasswordHash string     // bcrypt; the clear password is never stored
	HostKey      ssh.Signer // SFTPHostKey
}

var bucketFetched = []byte("fetched") // file name \x00 user -> unix ms of the fetch

// ServeSFTP serves ln until ctx ends: password login for cfg.User, the
// closed files of the CDR directory to list, stat and read, nothing else
// (writes, deletes, renames, links and paths outside are refused).
func (b *Billing) ServeSFTP(ctx context.Context, cfg PullConfig, ln net.Listener) error {
	sc := &ssh.ServerConfig{
		MaxAuthTries: 3,
		PasswordCallback: func(c ssh.ConnMetadata, pass []byte) (*ssh.Permissions, error) {
			// The same work and the same answer for an unknown user and a
			// wrong password; a failure costs the guesser a second.
			okPass := bcrypt.CompareHashAndPassword([]byte(cfg.PasswordHash), pass) == nil
			okUser := subtle.ConstantTimeCompare([]byte(c.User()), []byte(cfg.User)) == 1
			if okPass && okUser {
				return &ssh.Permissions{}, nil
			}
			time.Sleep(time.Second)
			b.log.Warn("CDR pull: login refused", "user", c.User(), "source", c.RemoteAddr().String())
			return nil, errors.New("permission denied")
		},
	}
	sc.AddHostKey(cfg.HostKey)
	ln = netutil.LimitListener(ln, maxPullSessions)
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return err
		}
		safe.Go("CDR pull session", func() { b.sftpSession(ctx, conn, sc) })
	}
}

func (b *Billing) sftpSession(ctx context.Context, conn net.Conn, sc *ssh.ServerConfig) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second)) // the handshake and login
	sconn, chans, reqs, err := ssh.NewServerConn(conn, sc)
	if err != nil {
		return
	}
	defer sconn.Close()
	conn.SetDeadline(time.Time{})
	// An idle session is closed after 10 minutes; every wait has a timer.
	idle := time.AfterFunc(10*time.Minute, func() { sconn.Close() })
	defer idle.Stop()
	go ssh.DiscardRequests(reqs)
	user := sconn.User()
	b.log.Info("CDR pull: logged in", "user", user, "source", sconn.RemoteAddr().String())
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			continue
		}
		go func(in <-chan *ssh.Request) {
			defer safe.Recover("CDR pull requests")
			for req := range in {
				ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
				req.Reply(ok, nil)
			}
		}(requests)
		h := &pullFS{b: b, user: user, idle: idle}
		srv := sftp.NewRequestServer(ch, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
		if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
			b.log.Debug("CDR pull session ended", "user", user, "err", err)
		}
		srv.Close()
		ch.Close()
	}
}

// pullFS is the read-only view of the closed files.
type pullFS struct {
	b    *Billing
	user string
	idle *time.Timer
}

// closedName is a file the billing centre may see: a closed CDR file or
// its sidecar, in the CDR directory itself.
func closedName(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\") {
		return false
	}
	for _, ext := range []string{".csv", ".jsonl", ".csv.sha256", ".jsonl.sha256"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// file maps a request path to a closed file's local path.
func (h *pullFS) file(p string) (string, error) {
	h.idle.Reset(10 * time.Minute)
	local, ok := h.b.pullPath(p)
	if !ok {
		return "", sftp.ErrSSHFxPermissionDenied
	}
	return local, nil
}

// pullPath maps a client's path to a closed file's local path; anything
// but a closed file or sidecar directly in the CDR directory is refused.
func (b *Billing) pullPath(p string) (string, bool) {
	clean := path.Clean("/" + p)
	if path.Dir(clean) != "/" || !closedName(path.Base(clean)) {
		return "", false
	}
	return filepath.Join(b.cfg.Dir, path.Base(clean)), true
}

// pullList is the closed files and sidecars of the CDR directory.
func (b *Billing) pullList() ([]os.FileInfo, error) {
	ents, err := os.ReadDir(b.cfg.Dir)
	if err != nil {
		return nil, err
	}
	var out []os.FileInfo
	for _, e := range ents {
		if closedName(e.Name()) {
			if fi, err := e.Info(); err == nil {
				out = append(out, fi)
			}
		}
	}
	return out, nil
}

// recordFetch logs a fetch and keeps it in the spool, so what each consumer
// fetched can be shown (softswitch ctl cdr-fetched).
func (b *Billing) recordFetch(name, user, proto string) {
	b.log.Info("CDR pull: file fetched", "user", user, "file", name, "protocol", proto)
	err := store.Update(b.sp.db, func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketFetched)
		if err != nil {
			return err
		}
		return bk.Put([]byte(name+"\x00"+user), be(uint64(time.Now().UnixMilli())))
	})
	if err != nil {
		b.log.Warn("CDR pull: recording a fetch failed", "file", name, "err", err)
	}
}

// Fetch is one file a consumer fetched, and when (the latest time).
type Fetch struct {
	File, User string
	At         time.Time
}

// Fetched lists what the pull server's consumers fetched, by file name.
func (b *Billing) Fetched() ([]Fetch, error) {
	var out []Fetch
	err := b.sp.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketFetched)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			name, user, _ := strings.Cut(string(k), "\x00")
			if len(v) == 8 {
				out = append(out, Fetch{File: name, User: user, At: time.UnixMilli(int64(binary.BigEndian.Uint64(v))).UTC()})
			}
			return nil
		})
	})
	return out, err
}

func (h *pullFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	local, err := h.file(r.Filepath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(local)
	if err != nil {
		return nil, sftp.ErrSSHFxNoSuchFile
	}
	h.b.recordFetch(filepath.Base(local), h.user, "sftp")
	return f, nil
}

func (h *pullFS) Filewrite(*sftp.Request) (io.WriterAt, error) {
	return nil, sftp.ErrSSHFxPermissionDenied
}

func (h *pullFS) Filecmd(*sftp.Request) error { return sftp.ErrSSHFxPermissionDenied }

type listing []os.FileInfo

func (l listing) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if int(off)+n == len(l) {
		return n, io.EOF
	}
	return n, nil
}

func (h *pullFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	h.idle.Reset(10 * time.Minute)
	switch r.Method {
	case "List":
		if path.Clean("/"+r.Filepath) != "/" {
			return nil, sftp.ErrSSHFxPermissionDenied
		}
		fis, err := h.b.pullList()
		if err != nil {
			return nil, err
		}
		out := listing(fis)
		return out, nil
	case "Stat":
		if path.Clean("/"+r.Filepath) == "/" {
			fi, err := os.Stat(h.b.cfg.Dir)
			if err != nil {
				return nil, err
			}
			return listing{fi}, nil
		}
		local, err := h.file(r.Filepath)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(local)
		if err != nil {
			return nil, sftp.ErrSSHFxNoSuchFile
		}
		return listing{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// SFTPHostKey reads the SFTP server's key, or makes and stores an
// ed25519 one (0600) when file does not exist; a file that exists and
// cannot be read or parsed is an error, never replaced.
func SFTPHostKey(file string) (ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err == nil {
		k, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("SFTP host key %s: %w", file, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("SFTP host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "softswitch CDR pull")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, fmt.Errorf("SFTP host key %s: %w", file, err)
	}
	return ssh.NewSignerFromKey(priv)
}

// Node is the node name in the file names and records.
func (b *Billing) Node() string { return b.cfg.Node }

// Dir is the CDR directory (spool, files).
func (b *Billing) Dir() string { return b.cfg.Dir }
