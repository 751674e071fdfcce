// Package freediameter runs Debian's freeDiameter for tests: a Diameter
// peer of its own (Identity peer.test, realm test, plain TCP, no TLS) on a
// free port, from a configuration in the test's directory, accepting
// peers of the realm test; stopped when the test ends. Imported by tests
// only. freeDiameter 1.2.1 listens on every address whatever ListenOn
// says; the tests connect to 127.0.0.1 only.
package freediameter

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/softswitch/softswitch/aaa/internal/testproc"
)

// Server is a running freeDiameter.
type Server struct {
	*testproc.Proc
	Addr string // 127.0.0.1:port
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
	// A peer that does not answer its DPR keeps it 16 s: Stop waits 20.
	return &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port),
		Proc: testproc.Start(t, "freeDiameter", "daemon initialized", 20*time.Second, "freeDiameterd", "-c", conf)}
}
