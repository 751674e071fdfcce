package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/safe"
	"golang.org/x/crypto/ssh"
)

// startPull opens the billing centre's pull servers that [billing.pull]
// configures.
func startPull(ctx context.Context, cfg config.Config, bill *billing.Billing, log *slog.Logger) error {
	if cfg.Billing.Pull.SFTPListen != "" {
		if err := startSFTPPull(ctx, cfg, bill, log); err != nil {
			return err
		}
	}
	if cfg.Billing.Pull.FTPListen != "" {
		return startFTPPull(ctx, cfg, bill, log)
	}
	return nil
}

// startSFTPPull opens the SFTP pull server ([billing.pull] sftp_listen);
// the host key is made at first start when none is configured.
func startSFTPPull(ctx context.Context, cfg config.Config, bill *billing.Billing, log *slog.Logger) error {
	l := cfg.Billing.Pull
	keyFile := l.HostKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.Data.Dir, "sftp_host_key")
	}
	key, err := billing.SFTPHostKey(keyFile)
	if err != nil {
		return fmt.Errorf("billing.pull.host_key_file: %w", err)
	}
	ln, err := net.Listen("tcp", l.SFTPListen)
	if err != nil {
		return fmt.Errorf("billing.pull.sftp_listen: %w", err)
	}
	pl := billing.PullConfig{User: l.User, PasswordHash: l.PasswordHash, HostKey: key}
	safe.Go("CDR pull (SFTP)", func() {
		if err := bill.ServeSFTP(ctx, pl, ln); err != nil {
			log.Error("CDR pull server (SFTP) stopped", "err", err)
		}
	})
	log.Info("CDR pull server (SFTP)", "listen", ln.Addr().String(), "user", l.User,
		"host_key", ssh.FingerprintSHA256(key.PublicKey()))
	return nil
}

// startFTPPull opens the billing centre's FTP/FTPS pull server
// ([billing.pull] ftp_listen); the certificate is made at first start when
// none is configured, and its fingerprint logged for the billing centre.
func startFTPPull(ctx context.Context, cfg config.Config, bill *billing.Billing, log *slog.Logger) error {
	l := cfg.Billing.Pull
	certFile, keyFile := l.TLSCertFile, l.TLSKeyFile
	if certFile == "" {
		certFile = filepath.Join(cfg.Data.Dir, "ftps_cert.pem")
		keyFile = filepath.Join(cfg.Data.Dir, "ftps_key.pem")
	}
	tc, fingerprint, err := billing.PullTLS(certFile, keyFile, bill.Node())
	if err != nil {
		return fmt.Errorf("billing.pull.tls_cert_file: %w", err)
	}
	first, last, _ := l.PassiveRange() // validated with the config
	ln, err := net.Listen("tcp", l.FTPListen)
	if err != nil {
		return fmt.Errorf("billing.pull.ftp_listen: %w", err)
	}
	fc := billing.FTPPullConfig{User: l.User, PasswordHash: l.PasswordHash, TLSRequired: l.FTPTLS == "required",
		TLS: tc, PassiveFirst: first, PassiveLast: last}
	safe.Go("CDR pull (FTP)", func() {
		if err := bill.ServeFTP(ctx, fc, ln); err != nil {
			log.Error("CDR pull server (FTP) stopped", "err", err)
		}
	})
	log.Info("CDR pull server (FTP)", "listen", ln.Addr().String(), "user", l.User, "tls", l.FTPTLS,
		"passive_ports", l.PassivePorts, "certificate_sha256", fingerprint)
	return nil
}
