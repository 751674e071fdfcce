// Package imagetest builds the appliance image from nothing with
// packer/image.sh (package, base disk, packer validate and packer build),
// checks offline that it carries no node secret (SSH host keys, the
// build key, a root password), and boots it under qemu with TCG (never
// KVM: the machines' nested KVM does not boot Debian kernels), user-mode
// networking and a host port forward on 127.0.0.1. The softswitch must
// answer SIP OPTIONS through the forward, the host keys must be made at
// first boot, and the image's status unit must report on the serial
// console that the system is running with no failed unit.
package imagetest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/softswitch/softswitch/appliance/ha"
)

const (
	answerBudget = 150 * time.Second // first 200 to OPTIONS after qemu starts
	statusBudget = 240 * time.Second // the status line on the console
)

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func TestImageBoots(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mmdebstrap, loop devices)")
	}
	for _, tool := range []string{"mmdebstrap", "qemu-system-x86_64", "qemu-img", "extlinux", "sfdisk", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (.ci/deps.sh installs it)", tool)
		}
	}
	wd, _ := os.Getwd()
	repo := filepath.Dir(filepath.Dir(wd))
	work := t.TempDir()

	for _, tool := range []string{"packer", "debugfs", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (.ci/deps.sh installs it)", tool)
		}
	}
	start := time.Now()
	out, err := exec.Command("bash", filepath.Join(repo, "packer/image.sh"), filepath.Join(work, "build")).CombinedOutput()
	t.Logf("packer/image.sh (%v):\n%s", time.Since(start).Round(time.Second), lastLines(out, 12))
	if err != nil {
		t.Fatalf("image.sh: %v", err)
	}
	base := filepath.Join(work, "build", "image", "softswitch.qcow2")
	checkNoSecrets(t, base, work)

	overlay := filepath.Join(work, "overlay.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	port := freeUDPPort(t)
	serial := filepath.Join(work, "serial.log")
	qemu := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024",
		"-display", "none", "-no-reboot", "-serial", "file:"+serial,
		"-drive", "file="+overlay+",if=virtio",
		"-netdev", "user,id=n0,hostfwd=udp:127.0.0.1:"+strconv.Itoa(port)+"-:5060",
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
			return
		}
		if time.Since(booted) > statusBudget {
			t.Fatalf("no status on the console within %v", statusBudget)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

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
