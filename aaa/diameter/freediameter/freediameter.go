// Package freediameter runs Debian's freeDiameter for tests: a Diameter
// peer of its own (Identity peer.test, realm test, plain TCP, no TLS) on a
// free port, from a configuration in the test's directory, accepting
// peers of the realm test; stopped when the test ends. Imported by tests
// only. freeDiameter 1.2.1 listens on every address whatever ListenOn
// says; the tests connect to 127.0.0.1 only.
package freediameter

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running freeDiameter.
type Server struct {
	Addr string // 127.0.0.1:port
	t    *testing.T
	conf string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  strings.Builder
}

// Start writes the configuration and starts the server; it fails the
// test when freeDiameter is missing or not ready within 15 s.
func Start(t *testing.T) *Server {
	t.Helper()
	if _, err := exec.LookPath("freeDiameterd"); err != nil {
		t.Fatalf("freeDiameter is not installed (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	acl := filepath.Join(dir, "acl_wl.conf")
	// go-diameter sends Inband-Security-Id 0, which freeDiameter calls
	// IPsec: allow that (plain TCP) for the test realm.
	if err := os.WriteFile(acl, []byte("ALLOW_IPSEC *.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "freeDiameter.conf")
	body := fmt.Sprintf(`Identity = "peer.test";
Realm = "test";
Port = %d;
SecPort = 0;
No_SCTP;
No_IPv6;
ListenOn = "127.0.0.1";
LoadExtension = "/usr/lib/freeDiameter/dict_nasreq.fdx";
LoadExtension = "/usr/lib/freeDiameter/dict_dcca.fdx";
LoadExtension = "/usr/lib/freeDiameter/acl_wl.fdx" : %q;
`, port, acl)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), t: t, conf: conf}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.cmd = exec.Command("freeDiameterd", "-c", s.conf)
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting freeDiameter: %v", err)
	}
	ready := make(chan struct{})
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		var once sync.Once
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if strings.Contains(sc.Text(), "daemon initialized") {
				once.Do(func() { close(ready) })
			}
		}
		s.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-s.done:
		s.t.Fatalf("freeDiameter exited at start:\n%s", s.Log())
	case <-time.After(15 * time.Second):
		s.t.Fatalf("freeDiameter not ready within 15 s:\n%s", s.Log())
	}
}

// Log is what the server printed so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// WaitLog waits up to within for a line holding every part.
func (s *Server) WaitLog(within time.Duration, parts ...string) bool {
	deadline := time.Now().Add(within)
	for {
		for _, line := range strings.Split(s.Log(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM: it sends DPR to its peers), then
// SIGKILL after 20 s; safe twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Kill ends the server at once (no DPR).
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Restart starts the stopped server again, same port and configuration.
func (s *Server) Restart() {
	s.Stop()
	s.mu.Lock()
	s.log.Reset()
	s.mu.Unlock()
	s.start()
}
