package systest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/softswitch/softswitch/appliance/netlab"
)

// ---------------------------------------------------------------------------
// configuration

type subscriber struct {
	Number   string
	Password string
}

type trustedPeer struct {
	Name    string
	Address string
}

type route struct {
	Prefix    string
	Gateway   string // host:port
	Transport string
}

// ssConfig is the part of the softswitch TOML configuration the tests set.
type ssConfig struct {
	Realm           string
	Algorithms      []string
	NonceLifetime   string
	MinExpires      int
	MaxExpires      int
	NoAnswerTimeout string
	SessionExpires  int
	MinSE           int
	T1              string // [sip] t1; "" = the default
	TimerC          string // [call] timer_c; "" = the default
	Subscribers     []subscriber
	TrustedPeers    []trustedPeer
	Routes          []route
	Extra           string // TOML appended as it is (routing tables of the numbering tests)
}

const (
	trustedIP   = "127.0.0.5" // the address of the [[trusted_peer]] in every config
	untrustedIP = "127.0.0.1" // where the subscribers' sipp instances run
)

// defaultConfig is the configuration of the spec: subscribers 1001 and 1002,
// trusted peer 127.0.0.5, MD5 only, no routes.
func defaultConfig() ssConfig {
	return ssConfig{
		Realm:           "softswitch",
		Algorithms:      []string{"MD5"},
		NonceLifetime:   "5m",
		MinExpires:      60,
		MaxExpires:      3600,
		NoAnswerTimeout: "60s",
		SessionExpires:  1800,
		MinSE:           90,
		Subscribers: []subscriber{
			{Number: "1001", Password: "secret1001"},
			{Number: "1002", Password: "secret1002"},
		},
		TrustedPeers: []trustedPeer{{Name: "trunk-a", Address: trustedIP}},
	}
}

func tomlString(s string) string { return strconv.Quote(s) }

func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// toml renders the configuration; listen is written to [sip] listen although
// the --sip-listen flag given at start overrides it.
func (c ssConfig) toml(listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[sip]\nlisten = %s\nrealm = %s\n", tomlString(listen), tomlString(c.Realm))
	if c.T1 != "" {
		fmt.Fprintf(&b, "t1 = %s\n", tomlString(c.T1))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[auth]\nalgorithms = %s\nnonce_lifetime = %s\n\n", tomlStrings(c.Algorithms), tomlString(c.NonceLifetime))
	fmt.Fprintf(&b, "[registrar]\nmin_expires = %d\nmax_expires = %d\n\n", c.MinExpires, c.MaxExpires)
	fmt.Fprintf(&b, "[call]\nno_answer_timeout = %s\nsession_expires = %d\nmin_se = %d\n",
		tomlString(c.NoAnswerTimeout), c.SessionExpires, c.MinSE)
	if c.TimerC != "" {
		fmt.Fprintf(&b, "timer_c = %s\n", tomlString(c.TimerC))
	}
	b.WriteString("\n")
	for _, s := range c.Subscribers {
		fmt.Fprintf(&b, "[[subscriber]]\nnumber = %s\npassword = %s\n\n", tomlString(s.Number), tomlString(s.Password))
	}
	for _, p := range c.TrustedPeers {
		fmt.Fprintf(&b, "[[trusted_peer]]\nname = %s\naddress = %s\n\n", tomlString(p.Name), tomlString(p.Address))
	}
	// A static route is one analysis entry -> route -> group of one gateway.
	for i, r := range c.Routes {
		fmt.Fprintf(&b, "[[gateway]]\nname = \"gw-%d\"\naddress = %s\ntransport = %s\n\n", i, tomlString(r.Gateway), tomlString(r.Transport))
		fmt.Fprintf(&b, "[[group]]\nname = \"grp-%d\"\n[[group.member]]\ngateway = \"gw-%d\"\n\n", i, i)
		fmt.Fprintf(&b, "[[route]]\nname = \"rt-%d\"\ngroup = \"grp-%d\"\n\n", i, i)
		fmt.Fprintf(&b, "[[analysis]]\nprefix = %s\naction = \"route\"\nroute = \"rt-%d\"\n\n", tomlString(r.Prefix), i)
	}
	b.WriteString(c.Extra)
	return b.String()
}

// writeConfig writes cfg to path.
func writeConfig(t testing.TB, path string, cfg ssConfig, listen string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(cfg.toml(listen)), 0o644); err != nil {
		t.Fatalf("writing config: %v", err)
	}
}

// ---------------------------------------------------------------------------
// ports

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freePort returns a port on 127.0.0.1 that was free for both UDP and TCP
// a moment ago and that no other test of this process was given. It is
// below the kernel's ephemeral range: there, any process's outgoing
// connection (ssh, telnet, curl, sipp) could take it before the test
// binds it (CI of 05:04 failed so).
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	hi := ephemeralLow()
	for range 1000 {
		port := 10000 + rand.IntN(hi-10000)
		if portsUsed[port] {
			continue
		}
		uc, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		tl, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		uc.Close()
		if err != nil {
			continue
		}
		tl.Close()
		portsUsed[port] = true
		return port
	}
	t.Fatalf("free port: no port free for both UDP and TCP after 1000 tries")
	return 0
}

// ephemeralLow is the bottom of the kernel's ephemeral port range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		if n, err := strconv.Atoi(f[0]); err == nil && n > 15000 {
			return n
		}
	}
	return 32768
}

// udpPortBound reports whether some socket is bound to UDP port on any
// address, read from /proc/net/udp (passively, so the probe cannot steal the
// port from the process that is about to bind it).
func udpPortBound(port int) bool {
	data, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return false
	}
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 2 && strings.HasSuffix(f[1], suffix) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// the softswitch process

type server struct {
	t       testing.TB
	Port    int
	Addr    string // 127.0.0.1:PORT, the SIP address (UDP and TCP)
	Dir     string
	DataDir string
	Config  string
	LogPath string // stdout and stderr of every start, appended
	// NoConfig starts the binary without --config: embedded defaults
	// with only the listen address and data dir given as flags.
	NoConfig bool

	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error // how the process ended; read after done is closed
	log     *os.File
	checked int64 // how much of LogPath checkLog has read
}

// startServer starts a softswitch with cfg on a fresh port and data dir. It
// is stopped when the test ends; its log is printed when the test failed.
func startServer(t *testing.T, cfg ssConfig) *server {
	t.Helper()
	return startServerWith(t, cfg, false)
}

// startServerDefaults starts the binary with no config file at all, as the
// README's first command does (only the port and data dir are flags).
func startServerDefaults(t *testing.T) *server {
	t.Helper()
	return startServerWith(t, ssConfig{}, true)
}

func startServerWith(t *testing.T, cfg ssConfig, noConfig bool) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, Dir: dir, Port: freePort(t), NoConfig: noConfig}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	s.DataDir = filepath.Join(dir, "data")
	s.Config = filepath.Join(dir, "softswitch.toml")
	s.LogPath = filepath.Join(dir, "softswitch.log")
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if !noConfig {
		writeConfig(t, s.Config, cfg, s.Addr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLog()
		}
	})
	t.Cleanup(s.stop)
	s.start()
	return s
}

// start runs the binary and waits until its TCP port accepts connections.
func (s *server) start() {
	t := s.t
	t.Helper()
	if s.cmd != nil {
		t.Fatalf("softswitch already running")
	}
	f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", s.Config, "--data-dir", s.DataDir, "--sip-listen", s.Addr, "--log-level", "debug"}
	if s.NoConfig {
		args = args[2:]
	}
	fmt.Fprintf(f, "=== systest: starting %s %s\n", softswitchBin, strings.Join(args, " "))
	cmd := exec.Command(softswitchBin, args...)
	cmd.Dir = s.Dir
	cmd.Stdout = f
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting softswitch: %v", err)
	}
	s.cmd, s.log, s.done = cmd, f, make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== systest: softswitch pid %d exited: %v\n", cmd.Process.Pid, errOrOK(err))
		s.exitErr = err
		close(done)
	}(cmd, s.done)

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.cmd = nil
			t.Fatalf("softswitch exited before listening on %s (see its log below)", s.Addr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("softswitch not accepting TCP connections on %s after 10s: %v", s.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, waits up to 5 s, then SIGKILL. It is safe to call
// twice. The test fails when the daemon had died before (crash, panic,
// os.Exit), when it did not exit 0 on SIGTERM (the race detector makes
// a race-built binary exit 66), or when its log shows a panic, a
// recovered panic or a data race: a test that cannot see a dead or
// broken daemon cannot fail.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	cmd, done := s.cmd, s.done
	s.cmd = nil
	select {
	case <-done:
		s.t.Errorf("softswitch pid %d had exited before the test stopped it: %s", cmd.Process.Pid, errOrOK(s.exitErr))
	default:
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if s.exitErr != nil {
				s.t.Errorf("softswitch pid %d did not exit cleanly on SIGTERM: %s", cmd.Process.Pid, errOrOK(s.exitErr))
			}
		case <-time.After(5 * time.Second):
			s.t.Errorf("softswitch pid %d still running 5s after SIGTERM: killing it", cmd.Process.Pid)
			_ = cmd.Process.Kill()
			<-done
		}
	}
	s.log.Close()
	s.checkLog()
}

// failAt arms the failpoint name (core/failpoint) in the CDR directory
// and waits up to within for the daemon to die there.
func (s *server) failAt(name string, within time.Duration) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("softswitch not running")
	}
	trigger := filepath.Join(s.DataDir, "cdr", ".failpoint-"+name)
	if err := os.WriteFile(trigger, nil, 0o644); err != nil {
		s.t.Fatal(err)
	}
	cmd, done := s.cmd, s.done
	select {
	case <-done:
	case <-time.After(within):
		s.t.Fatalf("softswitch did not reach failpoint %s within %s", name, within)
	}
	s.cmd = nil
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !st.Signaled() || st.Signal() != syscall.SIGKILL {
		s.t.Errorf("softswitch pid %d ended at failpoint %s with %s, not SIGKILL", cmd.Process.Pid, name, errOrOK(s.exitErr))
	}
	s.log.Close()
	s.checkLog()
}

// kill ends the daemon with SIGKILL, as a crash or power loss would; the
// test expects it, so it is not an error.
func (s *server) kill() {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("softswitch not running")
	}
	cmd, done := s.cmd, s.done
	s.cmd = nil
	_ = cmd.Process.Kill()
	<-done
	s.log.Close()
	s.checkLog()
}

// logFaults are the lines that mean the daemon is broken even if it still
// answers: the Go runtime's panic and fatal error reports, the race
// detector's report, and the log record of a panic the daemon recovered.
var logFaults = []string{"panic: ", "fatal error: ", "WARNING: DATA RACE", `msg="recovered panic"`}

// checkLog fails the test for every fault line in the log written since
// the last check, quoting the lines after it.
func (s *server) checkLog() {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		s.t.Errorf("softswitch log: %v", err)
		return
	}
	from := s.checked
	s.checked = int64(len(data))
	lines := strings.Split(string(data[from:]), "\n")
	for i, l := range lines {
		for _, f := range logFaults {
			if strings.HasPrefix(l, f) || (strings.HasPrefix(f, "msg=") && strings.Contains(l, " "+f)) {
				end := min(i+30, len(lines))
				s.t.Errorf("softswitch log (%s) shows %q:\n%s", s.LogPath, strings.TrimSpace(f), strings.Join(lines[i:end], "\n"))
				return
			}
		}
	}
}

// signal sends sig to the running softswitch.
func (s *server) signal(sig os.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("softswitch not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// restart stops the softswitch and starts it again with the same port,
// configuration and data dir.
func (s *server) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

func (s *server) dumpLog() {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		s.t.Logf("softswitch log: %v", err)
		return
	}
	// The whole log kept where the test's temporary folder does not
	// vanish; its end here, short, so that the test's own errors stay in
	// the end of a long run's output (what CI shows).
	kept := netlab.KeepFiles(s.t.Name(), []string{s.LogPath})
	const max = 24 << 10
	if len(data) > max {
		data = append([]byte("...(cut)...\n"), data[len(data)-max:]...)
	}
	s.t.Logf("softswitch log (%s, whole in %s), its end:\n%s", s.LogPath, kept, data)
}

func errOrOK(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	return err.Error()
}

// ---------------------------------------------------------------------------
// a UDP sink: a registered contact that must receive nothing

type udpSink struct {
	Port int
	conn net.PacketConn
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

// startUDPSink listens on a free 127.0.0.1 port and records every datagram.
func startUDPSink(t *testing.T) *udpSink {
	t.Helper()
	// Bound on the spot: a port picked first could be taken by any
	// process's ephemeral socket before the sink binds it.
	for range 100 {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("udp sink: %v", err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		portsMu.Lock()
		taken := portsUsed[port]
		portsUsed[port] = true
		portsMu.Unlock()
		if taken {
			c.Close()
			continue
		}
		return serveUDPSink(t, c, port)
	}
	t.Fatal("udp sink: no port")
	return nil
}

// startUDPSinkOn is startUDPSink on a given port.
func startUDPSinkOn(t *testing.T, port int) *udpSink {
	t.Helper()
	c, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("udp sink: %v", err)
	}
	return serveUDPSink(t, c, port)
}

func serveUDPSink(t *testing.T, c net.PacketConn, port int) *udpSink {
	s := &udpSink{Port: port, done: make(chan struct{}), conn: c}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.close)
	return s
}

// close stops listening (the port is free again); safe to call twice.
func (s *udpSink) close() {
	s.conn.Close()
	<-s.done
}

// Messages returns the datagrams received so far.
func (s *udpSink) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// requireSilent fails the test if the sink received anything.
func (s *udpSink) requireSilent(t *testing.T, what string) {
	t.Helper()
	if msgs := s.Messages(); len(msgs) > 0 {
		t.Errorf("%s (127.0.0.1:%d) received %d message(s), want none; first:\n%s", what, s.Port, len(msgs), msgs[0])
	}
}
