// Package netlab is the test bench the appliance tests share: network
// namespaces the test makes and always deletes, processes started inside
// them and always stopped by their process group, and a sipp client that
// sends SIP OPTIONS to an address every 20 ms and reports who answered
// when, from which the outage of a failover is measured.
package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Lab owns namespaces and processes for one test.
type Lab struct {
	T      testing.TB
	Dir    string // logs and files of this lab
	prefix string
	procs  map[string]*exec.Cmd
	nss    []string
}

// New makes an empty lab; everything it starts or makes is removed when
// the test ends, passed or failed. tag keeps the namespace names of
// different tests apart.
func New(t testing.TB, tag string) *Lab {
	t.Helper()
	l := &Lab{T: t, Dir: t.TempDir(), prefix: fmt.Sprintf("%s%d-", tag, os.Getpid()%100000), procs: map[string]*exec.Cmd{}}
	t.Cleanup(l.close)
	return l
}

// NS is the real name of the lab's namespace n.
func (l *Lab) NS(n string) string { return l.prefix + n }

// AddNS makes namespaces with their loopback up.
func (l *Lab) AddNS(names ...string) {
	l.T.Helper()
	for _, n := range names {
		Sh(l.T, "ip", "netns", "add", l.NS(n))
		l.nss = append(l.nss, n)
		Sh(l.T, "ip", "-n", l.NS(n), "link", "set", "lo", "up")
	}
}

// In runs a command inside namespace n and returns its output.
func (l *Lab) In(n string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.NS(n)}, args...)...).CombinedOutput()
	return string(out), err
}

// Start runs a process inside namespace n (outside any when n is ""),
// its output in Dir/name.log; it is killed at cleanup.
func (l *Lab) Start(name, n string, args ...string) *exec.Cmd {
	l.T.Helper()
	if n != "" {
		args = append([]string{"ip", "netns", "exec", l.NS(n)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = l.Dir // what a process writes beside it (sipp's error logs) stays in the lab
	f, err := os.Create(filepath.Join(l.Dir, name+".log"))
	if err != nil {
		l.T.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.T.Fatalf("%s: %v", name, err)
	}
	l.procs[name] = cmd
	return cmd
}

// Stop signals the process group of a process started by Start and
// waits for it (SIGKILL after 5 s).
func (l *Lab) Stop(name string, sig syscall.Signal) {
	cmd := l.procs[name]
	if cmd == nil || cmd.Process == nil {
		return
	}
	delete(l.procs, name)
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Wait waits up to d for a process started by Start to end by itself;
// its exit status is not an error (sipp fails calls during an outage).
func (l *Lab) Wait(name string, d time.Duration) error {
	cmd := l.procs[name]
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		delete(l.procs, name)
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s still running after %v", name, d)
	}
}

func (l *Lab) close() {
	for name := range l.procs {
		l.Stop(name, syscall.SIGKILL)
	}
	if l.T.Failed() {
		kept := keepLogs(l.T.Name(), l.Dir)
		logs, _ := filepath.Glob(filepath.Join(l.Dir, "*.log"))
		for _, p := range logs {
			data, _ := os.ReadFile(p)
			if len(data) > 8000 {
				data = data[len(data)-8000:]
			}
			l.T.Logf("--- %s:\n%s", filepath.Base(p), data)
		}
		if kept != "" {
			// Last, so that a shortened output (CI's) still says where.
			l.T.Logf("the failure is printed above the logs; the whole logs are kept in %s", kept)
		}
	}
	for i := len(l.nss) - 1; i >= 0; i-- {
		_ = exec.Command("ip", "netns", "del", l.NS(l.nss[i])).Run()
	}
}

// Sh runs a command and fails the test with its output if it fails.
func Sh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// RepoRoot is the module's root (the folder with go.mod) above the
// working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = up
	}
}

// Client starts sipp in namespace n sending OPTIONS from ip to target
// (host:port) every 20 ms, count in all; Answers reads what it got.
func (l *Lab) Client(n, ip, target string, count int) (trace string) {
	l.T.Helper()
	trace = filepath.Join(l.Dir, "client-messages.log")
	scenario := filepath.Join(RepoRoot(l.T), "appliance", "systest", "scenarios", "options.xml")
	l.Start("sipp-client", n, "sipp", target, "-sf", scenario,
		"-i", ip, "-p", "5070", "-r", "50", "-m", fmt.Sprint(count), "-recv_timeout", "2000",
		"-nostdin", "-timeout", fmt.Sprintf("%ds", count/50+20), "-trace_msg", "-message_file", trace)
	return trace
}

// Answer is one 200 the client got: when, and which node sent it (from
// a Server header "node-X"; "" when the header does not say).
type Answer struct {
	At   time.Time
	Node string
}

var (
	traceEntry = regexp.MustCompile(`(?m)^-{40,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(UDP message (?:received|sent))[^\n]*\n`)
	serverHdr  = regexp.MustCompile(`(?m)^Server: *node-(\w+)`)
)

// Message is one SIP message of a sipp message trace (-trace_msg).
type Message struct {
	At       time.Time
	Received bool   // else sent
	Text     string // the message, from its first line
}

// Messages parses a sipp message trace, in file order.
func Messages(t testing.TB, path string) []Message {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	idx := traceEntry.FindAllStringSubmatchIndex(text, -1)
	out := make([]Message, 0, len(idx))
	for i, m := range idx {
		end := len(text)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05.000000", text[m[2]:m[3]], time.Local)
		if err != nil {
			t.Fatalf("trace time %q: %v", text[m[2]:m[3]], err)
		}
		out = append(out, Message{At: at, Received: text[m[4]:m[5]] == "UDP message received",
			Text: strings.TrimLeft(text[m[1]:end], "\r\n ")})
	}
	return out
}

// Answers parses sipp's message trace into the 200s received, in time
// order.
func Answers(t testing.TB, path string) []Answer {
	t.Helper()
	var out []Answer
	for _, m := range Messages(t, path) {
		if !m.Received || !strings.Contains(m.Text, "SIP/2.0 200") {
			continue
		}
		a := Answer{At: m.At}
		if s := serverHdr.FindStringSubmatch(m.Text); s != nil {
			a.Node = s[1]
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// Gap is the longest silence between answers in [from, to]: the outage
// seen by the client when a failure happened at from.
func Gap(as []Answer, from, to time.Time) (last, next time.Time) {
	var best time.Duration
	prev := time.Time{}
	for _, a := range as {
		if a.At.After(to) {
			break
		}
		if !prev.IsZero() && a.At.After(from) && a.At.Sub(prev) > best {
			best, last, next = a.At.Sub(prev), prev, a.At
		}
		prev = a.At
	}
	return last, next
}

// RouteAllTOML is provisioning that takes calls from callers (an address:
// a trusted peer, no digest) and routes every number to the gateway at
// gateway (host:port), as the pair tests configure their switches.
func RouteAllTOML(callers, gateway string) string {
	return fmt.Sprintf(`
[[trusted_peer]]
name = "callers"
address = "%s"

[[gateway]]
name = "gw"
address = "%s"

[[group]]
name = "out"
[[group.member]]
gateway = "gw"
priority = 1
weight = 1

[[route]]
name = "out"
group = "out"

[[analysis]]
prefix = ""
action = "route"
route = "out"
`, callers, gateway)
}

// FailedLogs is where a failed lab's logs are kept, a folder per failure,
// the newest keptFailures of them: the output of a long run shows only
// their ends.
const (
	FailedLogs   = "/var/tmp/softswitch-test-failures"
	keptFailures = 20
)

// keepLogs copies dir's logs to a new folder under FailedLogs and returns
// it ("" if it could not).
func keepLogs(test, dir string) string {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	return KeepFiles(test, logs)
}

// KeepFiles copies a failed test's files (logs) to a new folder under
// FailedLogs and returns it ("" if it could not); two files of one base
// name are told apart by a number.
func KeepFiles(test string, paths []string) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(test) + "-" + time.Now().UTC().Format("20060102T150405.000")
	to := filepath.Join(FailedLogs, name)
	if err := os.MkdirAll(to, 0o755); err != nil {
		return ""
	}
	seen := map[string]int{}
	for _, p := range paths {
		base := filepath.Base(p)
		if n := seen[base]; n > 0 {
			base = fmt.Sprintf("%d-%s", n, base)
		}
		seen[filepath.Base(p)]++
		if data, err := os.ReadFile(p); err == nil {
			_ = os.WriteFile(filepath.Join(to, base), data, 0o644)
		}
	}
	if old, _ := os.ReadDir(FailedLogs); len(old) > keptFailures {
		sort.Slice(old, func(i, j int) bool {
			a, _ := old[i].Info()
			b, _ := old[j].Info()
			return a != nil && b != nil && a.ModTime().Before(b.ModTime())
		})
		for _, e := range old[:len(old)-keptFailures] {
			_ = os.RemoveAll(filepath.Join(FailedLogs, e.Name()))
		}
	}
	return to
}
