// Package pkgtest installs, upgrades, removes and purges the softswitch
// Debian package (appliance/deb/build.sh) in a throwaway Debian root made
// by mmdebstrap from the machine's mirror, as root. Systemd does not run in
// a chroot: the unit is checked by systemd-analyze verify, enabled by the
// maintainer scripts, and its ExecStart is run as the package's user,
// which must answer SIP OPTIONS.
package pkgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/softswitch/softswitch/appliance/netlab"
	"github.com/softswitch/softswitch/appliance/testenv"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPackageLifecycle(t *testing.T) {
	testenv.RequireRoot(t, "mmdebstrap, chroot, dpkg")
	for _, tool := range []string{"mmdebstrap", "dpkg-deb", "chroot", "systemd-analyze", "lintian"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (.ci/deps.sh installs it): %v", tool, err)
		}
	}
	repo := netlab.RepoRoot(t)
	work := t.TempDir()

	// Two package versions: the upgrade is a rebuilt package.
	build := func(version string) string {
		cmd := exec.Command("bash", filepath.Join(repo, "appliance/deb/build.sh"), filepath.Join(work, "dist"))
		cmd.Env = append(os.Environ(), "VERSION="+version)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("build.sh %s: %v\n%s", version, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	v1, v2 := build("1.0.0"), build("1.0.1")
	// lintian: no errors (warnings such as no-manual-page are reported only).
	lint, _ := exec.Command("lintian", "--tag-display-limit", "0", v1).CombinedOutput()
	for _, line := range strings.Split(string(lint), "\n") {
		if strings.HasPrefix(line, "E: ") {
			t.Errorf("lintian: %s", line)
		} else if strings.HasPrefix(line, "W: ") {
			t.Logf("lintian: %s", line)
		}
	}

	root := filepath.Join(work, "root")
	sources := "/etc/apt/sources.list.d/debian.sources"
	if _, err := os.Stat(sources); err != nil {
		sources = "/etc/apt/sources.list"
	}
	start := time.Now()
	// systemd and procps: what the unit needs to verify (the image has them).
	run(t, "mmdebstrap", "--quiet", "--variant=minbase", "--include=adduser,systemd,procps", "bookworm", root, sources)
	t.Logf("mmdebstrap: %v", time.Since(start).Round(time.Second))
	in := func(args ...string) string { return run(t, "chroot", append([]string{root}, args...)...) }
	copyIn := func(deb string) string {
		data, err := os.ReadFile(deb)
		if err != nil {
			t.Fatal(err)
		}
		p := "/tmp/" + filepath.Base(deb)
		if err := os.WriteFile(root+p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Install.
	in("dpkg", "-i", copyIn(v1))
	checkInstalled(t, root, in)
	// The maintainer scripts are idempotent: configure again changes nothing.
	in("/var/lib/dpkg/info/softswitch.postinst", "configure", "1.0.0")
	checkInstalled(t, root, in)
	answersOptions(t, root)

	// Upgrade keeps the operator's config.
	cfg := filepath.Join(root, "etc/softswitch/softswitch.toml")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n[[subscriber]]\nnumber = \"1001\"\npassword = \"kept-across-upgrade\"\n")
	f.Close()
	in("dpkg", "-i", copyIn(v2))
	if v := in("dpkg-query", "-W", "-f=${Version}", "softswitch"); v != "1.0.1" {
		t.Errorf("after upgrade: version %q", v)
	}
	if data, _ := os.ReadFile(cfg); !strings.Contains(string(data), "kept-across-upgrade") {
		t.Error("the upgrade replaced the operator's config")
	}
	checkInstalled(t, root, in)
	answersOptions(t, root)

	// Remove: program gone, config and data kept.
	in("dpkg", "-r", "softswitch")
	if _, err := os.Stat(filepath.Join(root, "usr/bin/softswitch")); err == nil {
		t.Error("remove left /usr/bin/softswitch")
	}
	for _, p := range []string{"etc/softswitch/softswitch.toml", "var/lib/softswitch"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("remove deleted /%s: %v", p, err)
		}
	}

	// Purge: config and data gone; the system user stays (Debian policy).
	in("dpkg", "-P", "softswitch")
	for _, p := range []string{"etc/softswitch", "var/lib/softswitch", "etc/systemd/system/multi-user.target.wants/softswitch.service"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("purge left /%s", p)
		}
	}
	out, _ := exec.Command("chroot", root, "dpkg-query", "-W", "-f=${db:Status-Status}", "softswitch").CombinedOutput()
	if st := string(out); st != "not-installed" && !strings.Contains(st, "no packages found") {
		t.Errorf("after purge: status %q", st)
	}
}

// checkInstalled: user, permissions, enabled unit, and a unit file systemd accepts.
func checkInstalled(t *testing.T, root string, in func(...string) string) {
	t.Helper()
	if !strings.Contains(in("getent", "passwd", "softswitch"), "/usr/sbin/nologin") {
		t.Error("no system user softswitch with a nologin shell")
	}
	for p, want := range map[string]string{
		"var/lib/softswitch":             "softswitch:softswitch 750",
		"etc/softswitch":                 "root:softswitch 750",
		"etc/softswitch/softswitch.toml": "root:softswitch 640",
	} {
		if got := strings.TrimSpace(in("stat", "-c", "%U:%G %a", "/"+p)); got != want {
			t.Errorf("/%s: %s, want %s", p, got, want)
		}
	}
	link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/softswitch.service")
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("unit not enabled: %v", err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "softswitch.service").CombinedOutput()
	if err != nil || strings.Contains(string(out), "softswitch.service:") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// answersOptions runs the unit's command as the unit's user inside the
// root (on a free loopback port instead of 5060) and sends SIP OPTIONS.
func answersOptions(t *testing.T, root string) {
	t.Helper()
	uc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uc.LocalAddr().(*net.UDPAddr).Port
	uc.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command("chroot", "--userspec=softswitch:softswitch", root, "/usr/bin/softswitch",
		"--config", "/etc/softswitch/softswitch.toml", "--data-dir", "/var/lib/softswitch", "--sip-listen", addr)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "softswitch.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := c.LocalAddr().String()
	opt := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKpkg%d\r\nFrom: <sip:pkgtest@%s>;tag=p1\r\nTo: <sip:%s>\r\nCall-ID: pkgtest-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		addr, me, port, me, addr, port)
	to, _ := net.ResolveUDPAddr("udp4", addr)
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, _ = c.WriteTo([]byte(opt), to)
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := c.ReadFrom(buf)
		if err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
			return
		}
	}
	data, _ := os.ReadFile(logf.Name())
	t.Fatalf("the packaged softswitch did not answer OPTIONS on %s within 10 s; its log:\n%s", addr, data)
}
