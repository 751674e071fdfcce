// Package imagetest builds the appliance image from nothing with
// packer/image.sh (package, base disk, packer validate and packer build),
// checks offline that it carries no node secret (SSH host keys, the
// build key, a root password), and boots it under qemu with TCG (never
// KVM: the machines' nested KVM does not boot Debian kernels), user-mode
// networking and a host port forward on 127.0.0.1. The softswitch must
// answer SIP OPTIONS through the forward, the host keys must be made at
// first boot, and the image's status unit must report on the serial
// console that the system is running with no failed unit. With no
// first-boot values the node generates the admin's one-time password and
// shows it on the console; the test logs in with it over SSH (expect),
// is made to change it, and checks as root that it never reached the
// journal. pair_test.go boots two VMs of the same image as a pair.
package imagetest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/softswitch/softswitch/appliance/ha"
	"github.com/softswitch/softswitch/appliance/netlab"
	"github.com/softswitch/softswitch/appliance/testenv"
)

const (
	answerBudget = 150 * time.Second // first 200 to OPTIONS after qemu starts
	statusBudget = 240 * time.Second // the status line on the console
)

// freePort picks a free loopback port for qemu's forwards ("udp" or "tcp").
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	buildOnce sync.Once
	buildDir  string
	imagePath string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// builtImage builds the image once for all tests of the package.
func builtImage(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t, "mmdebstrap, loop devices, network namespaces")
	for _, tool := range []string{"mmdebstrap", "qemu-system-x86_64", "qemu-img", "extlinux", "sfdisk", "losetup", "packer", "debugfs", "ssh-keygen", "ssh", "expect", "sipp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (.ci/deps.sh installs it)", tool)
		}
	}
	buildOnce.Do(func() {
		// An image already built (make image) can be tested as it is,
		// e.g. by make test-long; make test always builds from nothing.
		if pre := os.Getenv("SOFTSWITCH_TEST_IMAGE"); pre != "" {
			if !filepath.IsAbs(pre) {
				pre = filepath.Join(netlab.RepoRoot(t), pre) // relative to the checkout, as make sees it
			}
			if _, buildErr = os.Stat(pre); buildErr == nil {
				imagePath = pre
				t.Logf("testing the image %s (SOFTSWITCH_TEST_IMAGE), not building one", imagePath)
				checkNoSecrets(t, imagePath, t.TempDir())
			}
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "imagetest-"); buildErr != nil {
			return
		}
		start := time.Now()
		out, err := exec.Command("bash", filepath.Join(netlab.RepoRoot(t), "packer/image.sh"), filepath.Join(buildDir, "build")).CombinedOutput()
		t.Logf("packer/image.sh (%v):\n%s", time.Since(start).Round(time.Second), lastLines(out, 12))
		if err != nil {
			buildErr = fmt.Errorf("image.sh: %v", err)
			return
		}
		imagePath = filepath.Join(buildDir, "build", "image", "softswitch.qcow2")
		checkNoSecrets(t, imagePath, buildDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return imagePath
}

// overlay is a copy-on-write disk over the image for one VM.
func overlay(t *testing.T, base, path string) string {
	t.Helper()
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", path).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	return path
}

func TestImageBoots(t *testing.T) {
	base := builtImage(t)
	work := t.TempDir()
	disk := overlay(t, base, filepath.Join(work, "overlay.qcow2"))
	port := freePort(t, "udp")
	sshPort := freePort(t, "tcp")
	cliPort, snmpPort := freePort(t, "tcp"), freePort(t, "udp")
	serial := filepath.Join(work, "serial.log")
	qemu := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024",
		"-display", "none", "-no-reboot", "-serial", "file:"+serial,
		"-drive", "file="+disk+",if=virtio",
		"-netdev", "user,id=n0,hostfwd=udp:127.0.0.1:"+strconv.Itoa(port)+"-:5060,hostfwd=tcp:127.0.0.1:"+strconv.Itoa(sshPort)+"-:22"+
			",hostfwd=tcp:127.0.0.1:"+strconv.Itoa(cliPort)+"-:2022,hostfwd=udp:127.0.0.1:"+strconv.Itoa(snmpPort)+"-:161",
		"-device", "virtio-net-pci,netdev=n0")
	qlog, _ := os.Create(filepath.Join(work, "qemu.log"))
	qemu.Stdout, qemu.Stderr = qlog, qlog
	qemu.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	booted := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = qemu.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-qemu.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			data, _ := os.ReadFile(serial)
			t.Logf("serial console (last part):\n%s", lastLines(data, 60))
		}
	})

	addr := "127.0.0.1:" + strconv.Itoa(port)
	for {
		if err := ha.Check(addr, time.Second); err == nil {
			t.Logf("OPTIONS answered 200 through the forward %v after qemu started", time.Since(booted).Round(time.Second))
			break
		}
		select {
		case <-done:
			t.Fatal("qemu exited")
		default:
		}
		if time.Since(booted) > answerBudget {
			t.Fatalf("no 200 to OPTIONS on %s within %v", addr, answerBudget)
		}
	}
	for {
		data, _ := os.ReadFile(serial)
		if bytes.Contains(data, []byte("appliance: status done")) {
			var failed []string
			running := false
			for _, line := range strings.Split(string(data), "\n") {
				line = strings.TrimSpace(line)
				if i := strings.Index(line, "appliance: "); i >= 0 {
					line = line[i:]
				}
				switch {
				case strings.HasPrefix(line, "appliance: system running"):
					running = true
				case strings.HasPrefix(line, "appliance: failed unit"):
					failed = append(failed, line)
				}
			}
			if !running {
				t.Errorf("the system is not running: %s", statusLine(data))
			}
			if len(failed) > 0 {
				t.Errorf("failed units: %v", failed)
			}
			t.Logf("console status %v after qemu started: %s", time.Since(booted).Round(time.Second), statusLine(data))
			if !bytes.Contains(data, []byte("appliance: firewall active")) {
				t.Error("the firewall (nftables) is not active; SIP got through the forward all the same")
			}
			if !bytes.Contains(data, []byte("Finished")) || !bytes.Contains(data, []byte("ssh-host-keys")) {
				t.Error("the SSH host keys were not made at first boot (ssh-host-keys.service did not run)")
			}
			m := oneTimePassword.FindSubmatch(data)
			if m == nil {
				t.Fatal("no one-time admin password on the console")
			}
			adminLogin(t, sshPort, string(m[1]), work)
			management(t, data, cliPort, snmpPort, work)
			return
		}
		if time.Since(booted) > statusBudget {
			t.Fatalf("no status on the console within %v", statusBudget)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// management reads sysUpTime over SNMPv3 with the user first boot made,
// and runs one command on the command line over SSH as its first user,
// both with what the console showed.
func management(t *testing.T, console []byte, cliPort, snmpPort int, work string) {
	t.Helper()
	cm := regexp.MustCompile(`appliance: command line: ssh -p 2022 admin@.*?, first password (\S+) `).FindSubmatch(console)
	sm := regexp.MustCompile(`appliance: SNMPv3 user "(\S+)" \(read-only, SHA-256 auth password (\S+), AES priv password (\S+);`).FindSubmatch(console)
	if cm == nil || sm == nil {
		t.Fatal("the console shows no command-line password or no SNMPv3 user")
	}
	start := time.Now()
	out, err := exec.Command("snmpget", "-v3", "-l", "authPriv", "-u", string(sm[1]), "-a", "SHA-256", "-A", string(sm[2]),
		"-x", "AES", "-X", string(sm[3]), "-t", "5", "-r", "3", "127.0.0.1:"+strconv.Itoa(snmpPort), "1.3.6.1.2.1.1.3.0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Timeticks") {
		t.Fatalf("snmpget sysUpTime over SNMPv3: %v\n%s", err, out)
	}
	t.Logf("SNMPv3 (user from the console): %s", strings.TrimSpace(string(out)))
	script := filepath.Join(work, "cli.exp")
	os.WriteFile(script, []byte(`set timeout 60
lassign $argv port pw
spawn ssh -p $port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -o PreferredAuthentications=password admin@127.0.0.1 show version
expect {
    "password:" { send "$pw\r" }
    timeout { puts "TIMEOUT prompt"; exit 1 }
}
expect {
    -re "node \\S+" {}
    timeout { puts "TIMEOUT show version"; exit 1 }
}
expect eof
`), 0o600)
	out, err = exec.Command("expect", script, strconv.Itoa(cliPort), string(cm[1])).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "softswitch ") {
		t.Fatalf("show version over the command line's SSH: %v\n%s", err, out)
	}
	t.Logf("command line over SSH as the first-boot user: show version answered (%v)", time.Since(start).Round(time.Second))
}

var oneTimePassword = regexp.MustCompile(`appliance: admin login "admin", one-time password (\S+) `)

// adminLogin logs in over SSH with the one-time password, is made to
// change it, logs in again with the new one, and as root (sudo) reads the
// boot's journal: it must not hold the generated password.
func adminLogin(t *testing.T, port int, old, work string) {
	t.Helper()
	script := filepath.Join(work, "login.exp")
	if err := os.WriteFile(script, []byte(loginScript), 0o600); err != nil {
		t.Fatal(err)
	}
	newPW := "Ch4nged-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "-pw"
	start := time.Now()
	out, err := exec.Command("expect", script, strconv.Itoa(port), old, newPW).CombinedOutput()
	text := string(out)
	if err != nil || !strings.Contains(text, "password updated successfully") {
		t.Fatalf("admin login with the one-time password (%v): %v\n%s", time.Since(start).Round(time.Second), err, text)
	}
	m := regexp.MustCompile(`LINES=(\d+) HITS=(\d+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("second login with the new password, sudo journalctl: no result\n%s", text)
	}
	lines, _ := strconv.Atoi(m[1])
	if lines < 100 {
		t.Fatalf("sudo journalctl gave %d lines: sudo did not work?\n%s", lines, text)
	}
	if m[2] != "0" {
		t.Errorf("the generated admin password is in the journal %s times", m[2])
	}
	t.Logf("admin: one-time password from the console, changed at first login, sudo works, not in the journal (%d lines read; %v)", lines, time.Since(start).Round(time.Second))
}

// loginScript: expect PORT OLD NEW. First login: the expired one-time
// password must be changed (sshd runs passwd, then closes). Second login
// with the new password: the journal as root via sudo, counted for OLD.
const loginScript = `set timeout 90
lassign $argv port old new
set ssh [list ssh -p $port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -o PreferredAuthentications=password -o ConnectTimeout=20 admin@127.0.0.1]
spawn {*}$ssh
expect {
    "password:" { send "$old\r" }
    timeout { puts "TIMEOUT first prompt"; exit 1 }
}
expect {
    "Current password:" { send "$old\r"; exp_continue }
    "New password:" { send "$new\r"; exp_continue }
    "Retype new password:" { send "$new\r"; exp_continue }
    "Permission denied" { puts "DENIED"; exit 1 }
    timeout { puts "TIMEOUT password change"; exit 1 }
    eof {}
}
spawn {*}$ssh "sudo -S -p sudo-password: journalctl -b --no-pager > /tmp/j && echo LINES=\$(wc -l < /tmp/j) HITS=\$(grep -cF -- $old /tmp/j)"
expect {
    "password:" { send "$new\r" }
    timeout { puts "TIMEOUT second login"; exit 1 }
}
expect {
    "sudo-password:" { send "$new\r"; exp_continue }
    -re "LINES=\\d+ HITS=\\d+" {}
    timeout { puts "TIMEOUT journal"; exit 1 }
}
expect eof
`

func statusLine(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "appliance: system"); i >= 0 {
			return strings.TrimSpace(line[i:])
		}
	}
	return "(none)"
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkNoSecrets looks into the image's file system without booting it:
// no SSH host keys, no authorized key left from the build, root locked.
func checkNoSecrets(t *testing.T, image, work string) {
	t.Helper()
	raw := filepath.Join(work, "inspect.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", image, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	defer os.Remove(raw)
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", "--offset", "1048576", raw).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	debugfs := func(cmd string) string {
		out, _ := exec.Command("debugfs", "-R", cmd, loop).CombinedOutput()
		return string(out)
	}
	if ls := debugfs("ls /etc/ssh"); strings.Contains(ls, "ssh_host_") {
		t.Errorf("SSH host keys baked into the image:\n%s", ls)
	} else if !strings.Contains(ls, "sshd_config") {
		t.Errorf("cannot read /etc/ssh in the image:\n%s", ls)
	}
	if ls := debugfs("ls /root/.ssh"); strings.Contains(ls, "authorized_keys") {
		t.Error("the build key is still in /root/.ssh/authorized_keys")
	}
	shadow := debugfs("cat /etc/shadow")
	for _, line := range strings.Split(shadow, "\n") {
		if strings.HasPrefix(line, "root:") {
			if f := strings.Split(line, ":"); len(f) < 2 || !strings.HasPrefix(f[1], "!") && f[1] != "*" {
				t.Errorf("root has a usable password in the image: %q", f[1])
			}
			return
		}
	}
	t.Errorf("no root entry in the image's /etc/shadow:\n%s", shadow)
}
