// Package freeradius runs Debian's FreeRADIUS for tests: a server of its
// own on free loopback ports, from a configuration written into the
// test's directory (digest authentication, a users file, accounting to a
// detail file), stopped when the test ends. Imported by tests only.
package freeradius

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/softswitch/softswitch/aaa/internal/testproc"
)

// Options shape the server.
type Options struct {
	Secret string // shared with the client at 127.0.0.1
	Users  string // the users file (FreeRADIUS syntax)
	// Unsigned: Access-Accept and Access-Reject go out without a
	// Message-Authenticator, as FreeRADIUS 3.2.1 (Debian bookworm) does
	// by default; otherwise the post-auth section adds one to both.
	Unsigned bool
	// Dictionary, when set, is a dictionary file the server loads besides
	// its own (the switch's vendor-specific attributes).
	Dictionary string
	// Namespace, when set, runs the server in that network namespace
	// (ip netns), listening on Address (ports 1812 and 1813) for clients
	// in Clients (a prefix); without it, 127.0.0.1 on free ports.
	Namespace, Address, Clients string
}

// Server is a running FreeRADIUS.
type Server struct {
	*testproc.Proc
	Auth, Acct netip.AddrPort
	Detail     string // the accounting detail file
	dir        string
	t          *testing.T
}

// Start writes the configuration and starts the server; it fails the
// test when FreeRADIUS is missing or not ready within 15 s.
func Start(t *testing.T, o Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("freeradius")
	if err != nil {
		bin = "/usr/sbin/freeradius"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("FreeRADIUS is not installed (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	s := &Server{dir: dir, t: t, Detail: filepath.Join(dir, "radacct", "detail")}
	args := []string{"-f", "-l", "stdout", "-d", s.dir}
	if o.Namespace != "" {
		addr := netip.MustParseAddr(o.Address)
		s.Auth, s.Acct = netip.AddrPortFrom(addr, 1812), netip.AddrPortFrom(addr, 1813)
		args = append([]string{"netns", "exec", o.Namespace, bin}, args...)
		bin = "ip"
	} else {
		s.Auth, s.Acct = freeUDP(t), freeUDP(t)
		o.Clients = "127.0.0.1"
	}
	s.write(o)
	s.Proc = testproc.Start(t, "FreeRADIUS", "Ready to process requests", 5*time.Second, bin, args...)
	return s
}

func freeUDP(t *testing.T) netip.AddrPort {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (s *Server) write(o Options) {
	sign := "update reply {\n\t\t&Message-Authenticator := 0x00\n\t}"
	if o.Unsigned {
		sign = ""
	}
	files := map[string]string{
		"radiusd.conf": fmt.Sprintf(`prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = %[1]s/log
raddbdir = %[1]s
radacctdir = %[1]s/radacct
name = freeradius
confdir = ${raddbdir}
run_dir = %[1]s/run
db_dir = %[1]s
libdir = /usr/lib/freeradius
pidfile = ${run_dir}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {
	destination = stdout
	colourise = no
	auth = yes
}
security {
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}
proxy_requests = no
$INCLUDE clients.conf
thread pool {
	start_servers = 2
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 3
	max_requests_per_server = 0
}
modules {
	$INCLUDE mods-enabled/
}
$INCLUDE sites-enabled/
`, s.dir),
		"clients.conf":        fmt.Sprintf("client local {\n\tipaddr = %s\n\tsecret = %q\n\trequire_message_authenticator = yes\n}\n", o.Clients, o.Secret),
		"users":               o.Users,
		"mods-enabled/digest": "digest {\n}\n",
		"mods-enabled/files":  "files {\n\tfilename = ${confdir}/users\n\tacctusersfile = ${confdir}/acct_users\n}\n",
		"acct_users":          "",
		"mods-enabled/detail": "detail {\n\tfilename = ${radacctdir}/detail\n\tpermissions = 0600\n\theader = \"%t\"\n}\n",
		"sites-enabled/default": fmt.Sprintf(`server default {
listen {
	type = auth
	ipaddr = %[1]s
	port = %[2]d
}
listen {
	type = acct
	ipaddr = %[1]s
	port = %[3]d
}
authorize {
	digest
	files
}
authenticate {
	digest
}
preacct {
}
accounting {
	detail
}
post-auth {
	%[4]s
	Post-Auth-Type REJECT {
		%[4]s
	}
}
}
`, s.Auth.Addr(), s.Auth.Port(), s.Acct.Port(), sign),
	}
	if o.Dictionary != "" {
		abs, err := filepath.Abs(o.Dictionary)
		if err != nil {
			s.t.Fatal(err)
		}
		files["dictionary"] = "$INCLUDE " + abs + "\n"
	}
	for _, d := range []string{"mods-enabled", "sites-enabled", "log", "run", "radacct"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			s.t.Fatal(err)
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(body), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
}

// Detail reads a detail file: one map per request received (attribute
// name -> value, quotes removed).
func Detail(path string) []map[string]string {
	data, _ := os.ReadFile(path)
	var out []map[string]string
	line := regexp.MustCompile(`^\s+([A-Za-z0-9-]+) = (.*)$`)
	for _, block := range strings.Split(strings.TrimSpace(string(data)), "\n\n") {
		rec := map[string]string{}
		for _, l := range strings.Split(block, "\n") {
			if m := line.FindStringSubmatch(l); m != nil {
				rec[m[1]] = strings.Trim(m[2], `"`)
			}
		}
		if len(rec) > 0 {
			out = append(out, rec)
		}
	}
	return out
}
