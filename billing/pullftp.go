package billing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path"
	"path/filepath"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/netutil"

	"github.com/softswitch/softswitch/core/safe"
)

// FTPPullConfig is the read-only FTP/FTPS server the billing centre logs
// into to fetch closed CDR files (R18, pull), beside the SFTP one.
type FTPPullConfig struct {
	User         string
	PasswordHash string // bcrypt; the clear password is never stored
	// TLSRequired refuses USER before AUTH TLS (explicit FTPS); when false,
	// plain FTP is served too (the password then crosses in clear).
	TLSRequired bool
	TLS         *tls.Config
	// PassivePorts is the range the data connections listen on; the
	// appliance's firewall opens it on the management interface.
	PassiveFirst, PassiveLast int
}

// maxPullSessions bounds the pull servers' concurrent connections: a
// billing centre needs a few, a flood gets no more.
const maxPullSessions = 16

// ServeFTP serves ln until ctx ends with explicit FTPS (and plain FTP when
// TLS is not required): the closed files of the CDR directory to list, size
// and download, nothing else.
func (b *Billing) ServeFTP(ctx context.Context, cfg FTPPullConfig, ln net.Listener) error {
	d := &ftpDriver{b: b, cfg: cfg, ln: netutil.LimitListener(ln, maxPullSessions)}
	srv := ftpserver.NewFtpServer(d)
	// The library logs connections and errors; at Info and above it never
	// writes command lines (so never a PASS).
	srv.Logger = slog.New(levelFloor{b.log.Handler(), slog.LevelInfo}).With("component", "CDR pull (FTP)")
	if err := srv.Listen(); err != nil {
		return err
	}
	go func() { <-ctx.Done(); srv.Stop() }()
	err := srv.Serve()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type ftpDriver struct {
	b   *Billing
	cfg FTPPullConfig
	ln  net.Listener
}

func (d *ftpDriver) GetSettings() (*ftpserver.Settings, error) {
	tr := ftpserver.ClearOrEncrypted
	if d.cfg.TLSRequired {
		tr = ftpserver.MandatoryEncryption
	}
	return &ftpserver.Settings{
		Listener:                 d.ln,
		Banner:                   "softswitch CDR pull",
		PassiveTransferPortRange: ftpserver.PortRange{Start: d.cfg.PassiveFirst, End: d.cfg.PassiveLast},
		IdleTimeout:              600,
		ConnectionTimeout:        30,
		TLSRequired:              tr,
		// Data connections only from the client's own address, passive
		// only: no FTP bounce through the switch.
		DisableActiveMode:    true,
		PasvConnectionsCheck: ftpserver.IPMatchRequired,
		DisableSite:          true,
		DisableMFMT:          true,
		DisableSTAT:          true,
		// Files go byte for byte: the SHA-256 sidecar must match.
		DisableASCIIConversion: true,
		DefaultTransferType:    ftpserver.TransferTypeBinary,
	}, nil
}

func (d *ftpDriver) ClientConnected(cc ftpserver.ClientContext) (string, error) {
	return "softswitch CDR pull: read-only", nil
}

func (d *ftpDriver) ClientDisconnected(ftpserver.ClientContext) {}

func (d *ftpDriver) AuthUser(cc ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	defer safe.Recover("CDR pull (FTP) login")
	// The same work and the same answer for an unknown user and a wrong
	// password; a failure costs the guesser a second and the connection.
	okPass := bcrypt.CompareHashAndPassword([]byte(d.cfg.PasswordHash), []byte(pass)) == nil
	okUser := subtle.ConstantTimeCompare([]byte(user), []byte(d.cfg.User)) == 1
	if okPass && okUser {
		d.b.log.Info("CDR pull: logged in", "user", user, "source", cc.RemoteAddr().String(), "protocol", "ftp",
			"tls", cc.HasTLSForControl())
		return &ftpFS{b: d.b, user: user}, nil
	}
	time.Sleep(time.Second)
	d.b.log.Warn("CDR pull: login refused", "user", user, "source", cc.RemoteAddr().String(), "protocol", "ftp")
	return nil, errors.New("login incorrect")
}

func (d *ftpDriver) GetTLSConfig() (*tls.Config, error) {
	if d.cfg.TLS == nil {
		return nil, errors.New("no TLS certificate configured")
	}
	return d.cfg.TLS, nil
}

// ftpFS is the read-only afero view of the closed files the FTP server
// serves; every change is refused.
type ftpFS struct {
	b    *Billing
	user string
}

var errReadOnly = fmt.Errorf("read-only: %w", os.ErrPermission)

func (f *ftpFS) Name() string                               { return "cdr" }
func (f *ftpFS) Create(string) (afero.File, error)          { return nil, errReadOnly }
func (f *ftpFS) Mkdir(string, os.FileMode) error            { return errReadOnly }
func (f *ftpFS) MkdirAll(string, os.FileMode) error         { return errReadOnly }
func (f *ftpFS) Remove(string) error                        { return errReadOnly }
func (f *ftpFS) RemoveAll(string) error                     { return errReadOnly }
func (f *ftpFS) Rename(string, string) error                { return errReadOnly }
func (f *ftpFS) Chmod(string, os.FileMode) error            { return errReadOnly }
func (f *ftpFS) Chown(string, int, int) error               { return errReadOnly }
func (f *ftpFS) Chtimes(string, time.Time, time.Time) error { return errReadOnly }

func isRoot(p string) bool { return path.Clean("/"+p) == "/" }

func (f *ftpFS) Stat(p string) (os.FileInfo, error) {
	if isRoot(p) {
		return os.Stat(f.b.cfg.Dir)
	}
	local, ok := f.b.pullPath(p)
	if !ok {
		return nil, os.ErrPermission
	}
	return os.Stat(local)
}

// ReadDir lists the root only (ftpserverlib's ClientDriverExtensionFileList).
func (f *ftpFS) ReadDir(p string) ([]os.FileInfo, error) {
	if !isRoot(p) {
		return nil, os.ErrPermission
	}
	return f.b.pullList()
}

func (f *ftpFS) Open(p string) (afero.File, error) { return f.OpenFile(p, os.O_RDONLY, 0) }

func (f *ftpFS) OpenFile(p string, flag int, _ os.FileMode) (afero.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_APPEND|os.O_TRUNC) != 0 {
		return nil, errReadOnly
	}
	local, ok := f.b.pullPath(p)
	if !ok {
		return nil, os.ErrPermission
	}
	file, err := os.Open(local)
	if err != nil {
		return nil, os.ErrNotExist
	}
	return &fetchFile{File: file, fs: f}, nil
}

// fetchFile records the fetch when a download ends cleanly.
type fetchFile struct {
	*os.File
	fs     *ftpFS
	failed bool
}

// TransferError is ftpserverlib's note that the transfer broke off.
func (t *fetchFile) TransferError(error) { t.failed = true }

func (t *fetchFile) Close() error {
	err := t.File.Close()
	if !t.failed {
		t.fs.b.recordFetch(filepath.Base(t.Name()), t.fs.user, "ftp")
	}
	return err
}

// levelFloor drops records below a level (the library's Debug lines carry
// the commands it received).
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.Handler.Enabled(ctx, lv)
}
func (l levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{l.Handler.WithAttrs(a), l.min}
}
func (l levelFloor) WithGroup(n string) slog.Handler {
	return levelFloor{l.Handler.WithGroup(n), l.min}
}

// PullTLS loads the FTPS certificate, or makes a self-signed one (ECDSA
// P-256, ten years) at first start and keeps it beside the SFTP host key;
// the fingerprint is returned so the operator can give it to the billing
// centre to pin.
func PullTLS(certFile, keyFile, node string) (*tls.Config, string, error) {
	if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
		if err := selfSigned(certFile, keyFile, node); err != nil {
			return nil, "", err
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("FTPS certificate %s / %s: %w", certFile, keyFile, err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, hex.EncodeToString(sum[:]), nil
}

func selfSigned(certFile, keyFile, node string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node, Organization: []string{"softswitch CDR pull"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{node},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o750); err != nil {
		return err
	}
	// The key first: a certificate without its key would stop the next start.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return fmt.Errorf("FTPS key %s: %w", keyFile, err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("FTPS certificate %s: %w", certFile, err)
	}
	return nil
}
