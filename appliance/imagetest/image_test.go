// Package imagetest builds the appliance disk (packer/base.sh with the
// softswitch package in it) and boots it under qemu with TCG (never KVM:
// the machines' nested KVM does not boot Debian kernels), user-mode
// networking and a host port forward on 127.0.0.1. The softswitch must
// answer SIP OPTIONS through the forward, and the image's status unit must
// report on the serial console that the system is running with no failed
// unit.
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
	for _, tool := range []string{"mmdebstrap", "qemu-system-x86_64", "qemu-img", "extlinux", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (.ci/deps.sh installs it)", tool)
		}
	}
	wd, _ := os.Getwd()
	repo := filepath.Dir(filepath.Dir(wd))
	work := t.TempDir()

	out, err := exec.Command("bash", filepath.Join(repo, "appliance/deb/build.sh"), filepath.Join(work, "dist")).CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	deb := strings.TrimSpace(string(out))
	start := time.Now()
	out, err = exec.Command("bash", filepath.Join(repo, "packer/base.sh"), filepath.Join(work, "img"), deb).CombinedOutput()
	t.Logf("packer/base.sh (%v):\n%s", time.Since(start).Round(time.Second), lastLines(out, 6))
	if err != nil {
		t.Fatalf("base.sh: %v", err)
	}
	base := filepath.Join(work, "img", "base.qcow2")

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
