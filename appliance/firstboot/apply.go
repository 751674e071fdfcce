package firstboot

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/softswitch/softswitch/appliance/ha"
	"github.com/softswitch/softswitch/core/config"
	"golang.org/x/crypto/bcrypt"
)

// Paths on the node, relative to the root Apply is given.
const (
	ConfigPath     = "/etc/softswitch/softswitch.toml"
	KeepalivedConf = "/etc/keepalived/keepalived.conf"
	StateDir       = "/var/lib/softswitch-firstboot"
	// PasswordFile holds a generated one-time admin password, root only,
	// until the admin changes it; the console status shows it meanwhile.
	PasswordFile = StateDir + "/admin-password"
	AdminUser    = "admin"
	// SNMPUserFile holds the generated SNMPv3 user "NAME AUTH PRIV"
	// (root only), reused when first boot runs again; the console shows it.
	SNMPUserFile = StateDir + "/snmp-user"
	// CLIPasswordFile holds the first command-line user's generated
	// password (root only) for the console; the switch gets its hash.
	CLIPasswordFile = StateDir + "/cli-password"
	binary          = "/usr/bin/softswitch"
	dataDir         = "/var/lib/softswitch"
)

// Apply writes the node's files under root ("/" on a node): host name,
// network, firewall, the softswitch configuration's first-boot block and
// keepalived.conf. The softswitch configuration is checked whole before
// anything is written, so a conflict changes nothing.
func Apply(s Settings, root string, log io.Writer) error {
	p := func(path string) string { return filepath.Join(root, path) }
	confPath := p(ConfigPath)
	orig, err := os.ReadFile(confPath)
	if err != nil {
		return err
	}
	m, keepSecrets, err := managementSecrets(p(SNMPUserFile), orig)
	if err != nil {
		return err
	}
	conf := ReplaceBlock(string(orig), ConfigBlock(s, m))
	cfg, err := config.Parse(ConfigPath, []byte(conf))
	if err != nil {
		return fmt.Errorf("%v (after adding the first-boot block: does the file already have [ha], [dns], [snmp] or [cli]? Then set those there, not at first boot)", err)
	}

	if s.Hostname != "" {
		if err := writeFile(p("/etc/hostname"), s.Hostname+"\n", 0o644); err != nil {
			return err
		}
		if err := hostsEntry(p("/etc/hosts"), s.Hostname); err != nil {
			return err
		}
		if root == "/" {
			if err := syscall.Sethostname([]byte(s.Hostname)); err != nil {
				return fmt.Errorf("sethostname: %w", err)
			}
		}
		fmt.Fprintf(log, "host name %s\n", s.Hostname)
	}
	if s.Configured() {
		_ = os.Remove(p("/etc/systemd/network/10-eth.network"))
		old, _ := filepath.Glob(p("/etc/systemd/network/0[56]-*.network"))
		for _, o := range old {
			_ = os.Remove(o)
		}
		for name, body := range Network(s) {
			if err := writeFile(p("/etc/systemd/network/"+name), body, 0o644); err != nil {
				return err
			}
		}
		fmt.Fprintf(log, "network: service %s %s", s.Service.Name, addrOrDHCP(s.Service))
		if s.Split() {
			fmt.Fprintf(log, ", management %s %s", s.Management.Name, addrOrDHCP(s.Management))
		}
		fmt.Fprintln(log)
	}
	if len(s.DNS) > 0 {
		var b strings.Builder
		for _, d := range s.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", d)
		}
		if err := writeFile(p("/etc/resolv.conf"), b.String(), 0o644); err != nil {
			return err
		}
	}
	if err := writeFile(p("/etc/nftables.conf"), Firewall(s), 0o755); err != nil {
		return err
	}
	if err := writeFile(confPath, conf, 0o640); err != nil {
		return err
	}
	if err := keepSecrets(); err != nil {
		return err
	}
	if err := firstCLIUser(p(CLIPasswordFile), p(dataDir), p("/etc/passwd"), log); err != nil {
		return err
	}
	if s.HA != nil {
		// keepalived.service regenerates this at every start too (the
		// image's drop-in); writing it here makes its condition true.
		kc := ha.KeepalivedConfig(cfg.HA, binary, ConfigPath, dataDir)
		if err := writeFile(p(KeepalivedConf), kc, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(log, "pair: virtual address %s on %s, priority %d, router id %d\n",
			s.HA.VirtualAddress, s.Service.Name, s.HA.Priority, s.HA.RouterID)
		if s.HA.ReplicationKey != "" { // the key itself never
			fmt.Fprintf(log, "pair: state replicated with %s (port %d)\n", s.HA.Peers[0], ReplicationPort)
		}
	} else if err := os.Remove(p(KeepalivedConf)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func addrOrDHCP(i Interface) string {
	if i.Address.IsValid() {
		return i.Address.String()
	}
	return "DHCP"
}

// hostsEntry points 127.0.1.1 at the host name (Debian's convention), so
// that the name resolves without DNS.
func hostsEntry(path, name string) error {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, "127.0.1.1") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "127.0.1.1\t"+name)
	return writeFile(path, strings.Join(lines, "\n")+"\n", 0o644)
}

// writeFile replaces path atomically (temp file, fsync, rename), so a
// power cut during first boot leaves the old file or the new one.
func writeFile(path, body string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".firstboot"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if st, err := os.Stat(path); err == nil {
		// keep the owner of an existing file (softswitch.toml is root:softswitch)
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			_ = os.Chown(tmp, int(sys.Uid), int(sys.Gid))
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Admin makes the administrator account on the node (root "/" only: it
// runs useradd, chpasswd and chage). With SSH keys the account logs in by
// key only; with a password hash that password is set; with neither a
// one-time password is generated, must be changed at first login, and is
// kept in PasswordFile (root only) for the console status to show. It is
// never written to the journal. A second run keeps a password already set.
func Admin(s Settings, log io.Writer) error {
	run := func(stdin string, args ...string) error {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", args[0], err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if _, err := lookupField("/etc/passwd", AdminUser, 0); err != nil {
		if err := run("", "useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo",
			"--comment", "appliance administrator", AdminUser); err != nil {
			return err
		}
		fmt.Fprintf(log, "account %s created\n", AdminUser)
	}
	home, err := lookupField("/etc/passwd", AdminUser, 5)
	if err != nil {
		return err
	}
	if len(s.AdminKeys) > 0 {
		if err := authorizedKeys(home, s.AdminKeys); err != nil {
			return err
		}
		fmt.Fprintf(log, "account %s: %d SSH key(s) installed\n", AdminUser, len(s.AdminKeys))
	}
	sudo := AdminUser + " ALL=(ALL:ALL) ALL\n"
	hash, _ := lookupField("/etc/shadow", AdminUser, 1)
	hasPassword := hash != "" && hash[0] == '$'
	switch {
	case s.AdminPasswordHash != "":
		if err := run("", "usermod", "--password", s.AdminPasswordHash, AdminUser); err != nil {
			return err
		}
		_ = os.Remove(PasswordFile)
		fmt.Fprintf(log, "account %s: password set from the given hash\n", AdminUser)
	case hasPassword:
		fmt.Fprintf(log, "account %s: password kept\n", AdminUser)
	case len(s.AdminKeys) > 0:
		// "*": no password can match, yet the account is not locked
		// (sshd refuses key logins to locked accounts).
		if err := run("", "usermod", "--password", "*", AdminUser); err != nil {
			return err
		}
		sudo = AdminUser + " ALL=(ALL:ALL) NOPASSWD: ALL\n"
		fmt.Fprintf(log, "account %s: SSH key login only\n", AdminUser)
	default:
		pw, err := generatePassword()
		if err != nil {
			return err
		}
		if err := writeFile(PasswordFile, pw+"\n", 0o600); err != nil {
			return err
		}
		if err := run(AdminUser+":"+pw+"\n", "chpasswd"); err != nil {
			return err
		}
		if err := run("", "chage", "--lastday", "0", AdminUser); err != nil {
			return err
		}
		fmt.Fprintf(log, "account %s: one-time password generated; it is shown on the console until changed (must be changed at first login)\n", AdminUser)
	}
	return writeFile("/etc/sudoers.d/"+AdminUser, sudo, 0o440)
}

func authorizedKeys(home string, keys []string) error {
	uid, err1 := lookupField("/etc/passwd", AdminUser, 2)
	gid, err2 := lookupField("/etc/passwd", AdminUser, 3)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	u, _ := strconv.Atoi(uid)
	g, _ := strconv.Atoi(gid)
	dir := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, "authorized_keys")
	if err := writeFile(path, strings.Join(keys, "\n")+"\n", 0o600); err != nil {
		return err
	}
	return errors.Join(os.Chown(dir, u, g), os.Chown(path, u, g))
}

// lookupField returns field n of user's line in a colon-separated file.
func lookupField(path, user string, n int) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Split(l, ":"); len(f) > n && f[0] == user {
			return f[n], nil
		}
	}
	return "", fmt.Errorf("%s: no user %s", path, user)
}

// generatePassword: 16 characters from 32 that cannot be confused when
// read off a console (80 bits).
func generatePassword() (string, error) {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789A" // 32: no modulo bias
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return string(b), nil
}

// managementSecrets reads the SNMPv3 user first boot made before (from
// its file, else from the configuration's first-boot block, once the
// operator deleted the file), or makes one (passwords of 16 characters
// from generatePassword).
func managementSecrets(path string, conf []byte) (Management, func() error, error) {
	kept := func() error { return nil }
	if data, err := os.ReadFile(path); err == nil {
		if f := strings.Fields(string(data)); len(f) == 3 {
			return Management{SNMPUser: f[0], SNMPAuth: f[1], SNMPPriv: f[2]}, kept, nil
		}
	}
	if i, j := bytes.Index(conf, []byte(blockBegin)), bytes.Index(conf, []byte(blockEnd)); i >= 0 && j > i {
		var block struct {
			SNMP struct {
				Users []config.SNMPUser `toml:"user"`
			} `toml:"snmp"`
		}
		if toml.Unmarshal(conf[i:j], &block) == nil && len(block.SNMP.Users) > 0 {
			u := block.SNMP.Users[0]
			return Management{SNMPUser: u.Name, SNMPAuth: u.AuthPassword, SNMPPriv: u.PrivPassword}, kept, nil
		}
	}
	a, err1 := generatePassword()
	p, err2 := generatePassword()
	if err := errors.Join(err1, err2); err != nil {
		return Management{}, nil, err
	}
	m := Management{SNMPUser: "noc", SNMPAuth: a, SNMPPriv: p}
	// Written once the configuration with them is known good.
	return m, func() error {
		return writeFile(path, fmt.Sprintf("%s %s %s\n", m.SNMPUser, m.SNMPAuth, m.SNMPPriv), 0o600)
	}, nil
}

// firstCLIUser makes the first command-line user, admin: its password is
// generated (kept root only for the console), its bcrypt hash goes to the
// data directory where the switch takes it at its next start when it has
// no user (cmd/softswitch, cli-first-user). Once made, never again.
func firstCLIUser(pwFile, dataDir, passwd string, log io.Writer) error {
	// Made once: not again when the admin deleted the password's file.
	made := pwFile + ".made"
	if _, err := os.Stat(made); err == nil {
		return nil
	}
	pw, err := generatePassword()
	if err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), 12)
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, "cli-first-user")
	if err := writeFile(path, AdminUser+" admin "+string(hash)+"\n", 0o600); err != nil {
		return err
	}
	// The switch runs as softswitch: the file is its to read and delete.
	// (A tree without /etc/passwd is a test's: nobody to give it to.)
	if _, err := os.Stat(passwd); err == nil {
		uid, err1 := lookupField(passwd, "softswitch", 2)
		gid, err2 := lookupField(passwd, "softswitch", 3)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("the first command-line user's file: %w (is the softswitch package installed?)", err)
		}
		u, _ := strconv.Atoi(uid)
		g, _ := strconv.Atoi(gid)
		if err := os.Chown(path, u, g); err != nil {
			return err
		}
	}
	if err := writeFile(pwFile, pw+"\n", 0o600); err != nil {
		return err
	}
	if err := writeFile(made, "", 0o600); err != nil {
		return err
	}
	fmt.Fprintf(log, "command line: first user %s made; its password is shown on the console\n", AdminUser)
	return nil
}
