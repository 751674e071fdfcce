package snmp

import (
	"context"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// testAgent serves a small tree (the system group, a writable scalar, a
// two-row table whose second column is writable) to net-snmp's tools.
type testAgent struct {
	*Agent
	addr  string
	level atomic.Int64
	admin [2]atomic.Int64
}

func startAgent(t *testing.T, dir string) *testAgent {
	t.Helper()
	for _, tool := range []string{"snmpget", "snmpwalk", "snmpbulkwalk", "snmpset"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (Debian package snmp; .ci/deps.sh installs it)", tool)
		}
	}
	ta := &testAgent{}
	ta.level.Store(3)
	m := &MIB{}
	m.RegisterSystem(System{Descr: "softswitch test", Name: "node-t", Start: time.Now()})
	m.WritableScalar(Enterprise.Append(1, 9), gosnmp.Integer, func() any { return int(ta.level.Load()) },
		func(v gosnmp.SnmpPDU, commit bool) error {
			n := v.Value.(int)
			if n < 1 || n > 4 {
				return WrongValue("1 to 4")
			}
			if commit {
				ta.level.Store(int64(n))
			}
			return nil
		})
	m.Table(Enterprise.Append(1, 10, 1), []Column{
		{Sub: 2, Type: gosnmp.OctetString, Get: func(r Row) any { return []byte(r.Data.(string)) }},
		{Sub: 3, Type: gosnmp.Integer, Get: func(r Row) any { return int(ta.admin[r.Index[0]-1].Load()) },
			Set: func(r Row, v gosnmp.SnmpPDU, commit bool) error {
				if commit {
					ta.admin[r.Index[0]-1].Store(int64(v.Value.(int)))
				}
				return nil
			}},
	}, func() []Row { return []Row{{Index: OID{1}, Data: "gw-a"}, {Index: OID{2}, Data: "gw-b"}} })
	lo := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	ta.Agent = &Agent{MIB: m, EngineFile: filepath.Join(dir, "snmp-engine"),
		Communities: []Community{{Name: "ro-community-1", Sources: lo}, {Name: "rw-community-1", Write: true, Sources: lo},
			{Name: "elsewhere-only", Sources: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}},
		Users: []User{{Name: "noc", Auth: gosnmp.SHA256, AuthPass: "noc-auth-pass-1", Priv: gosnmp.AES, PrivPass: "noc-priv-pass-1", Write: true},
			{Name: "watch", Auth: gosnmp.SHA512, AuthPass: "watch-auth-pass"}}}
	if err := ta.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ta.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ta.addr = ta.Addr().String()
	return ta
}

func run(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(tool, append([]string{"-On", "-r", "0", "-t", "2", "-m", ""}, args...)...).CombinedOutput()
	return string(out), err
}

func mustRun(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := run(t, tool, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return out
}

const v3noc = "-v3 -l authPriv -u noc -a SHA-256 -A noc-auth-pass-1 -x AES -X noc-priv-pass-1"

func TestV2cGetWalkBulk(t *testing.T) {
	ta := startAgent(t, t.TempDir())
	c := []string{"-v2c", "-c", "ro-community-1", ta.addr}
	out := mustRun(t, "snmpget", append(c, ".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.2.0")...)
	for _, want := range []string{`.1.3.6.1.2.1.1.1.0 = STRING: "softswitch test"`, `.1.3.6.1.2.1.1.5.0 = STRING: "node-t"`,
		`.1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.32473.2.1`} {
		if !strings.Contains(out, want) {
			t.Errorf("snmpget: no %q in\n%s", want, out)
		}
	}
	out = mustRun(t, "snmpget", append(c, ".1.3.6.1.2.1.1.9.0", ".1.3.6.1.2.1.1.1.1", ".1.3.6.1.4.1.32473.1.10.1.2.3")...)
	for _, want := range []string{".1.3.6.1.2.1.1.9.0 = No Such Object", ".1.3.6.1.2.1.1.1.1 = No Such Instance",
		".1.3.6.1.4.1.32473.1.10.1.2.3 = No Such Instance"} {
		if !strings.Contains(out, want) {
			t.Errorf("snmpget: no %q in\n%s", want, out)
		}
	}
	walk := mustRun(t, "snmpwalk", append(c, ".1")...)
	bulk := mustRun(t, "snmpbulkwalk", append([]string{"-Cr3"}, append(c, ".1")...)...)
	// Counters move between the walks (snmpInPkts): compare names only.
	names := func(s string) string {
		var n []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			if strings.Contains(l, "No more variables") { // the end of the tree: snmpwalk says so, snmpbulkwalk not
				continue
			}
			n = append(n, strings.Fields(l)[0])
		}
		return strings.Join(n, " ")
	}
	if names(walk) != names(bulk) {
		t.Errorf("snmpwalk and snmpbulkwalk differ:\n%s\n---\n%s", walk, bulk)
	}
	for _, want := range []string{".1.3.6.1.4.1.32473.1.10.1.2.1 = STRING: \"gw-a\"", ".1.3.6.1.4.1.32473.1.10.1.3.2 = INTEGER: 0",
		".1.3.6.1.6.3.10.2.1.2.0 = INTEGER: 1"} {
		if !strings.Contains(walk, want) {
			t.Errorf("walk: no %q in\n%s", want, walk)
		}
	}
	if strings.Count(walk, "\n") < 30 {
		t.Errorf("walk:\n%s", walk)
	}
}

func TestV2cAccess(t *testing.T) {
	ta := startAgent(t, t.TempDir())
	for _, community := range []string{"wrong-community", "elsewhere-only"} {
		if out, err := run(t, "snmpget", "-v2c", "-c", community, ta.addr, ".1.3.6.1.2.1.1.1.0"); err == nil || !strings.Contains(out, "Timeout") {
			t.Errorf("community %q: %v\n%s", community, err, out)
		}
	}
	out, err := run(t, "snmpset", "-v2c", "-c", "ro-community-1", ta.addr, ".1.3.6.1.4.1.32473.1.9.0", "i", "2")
	if err == nil || !strings.Contains(out, "noAccess") {
		t.Errorf("SET with a read-only community: %v\n%s", err, out)
	}
	if ta.Stats.BadCommunityNames.Load() != 2 || ta.Stats.BadCommunityUses.Load() != 1 {
		t.Errorf("bad community names %d, uses %d", ta.Stats.BadCommunityNames.Load(), ta.Stats.BadCommunityUses.Load())
	}
}

func TestSet(t *testing.T) {
	ta := startAgent(t, t.TempDir())
	rw := []string{"-v2c", "-c", "rw-community-1", ta.addr}
	mustRun(t, "snmpset", append(rw, ".1.3.6.1.4.1.32473.1.9.0", "i", "2", ".1.3.6.1.4.1.32473.1.10.1.3.2", "i", "7")...)
	if ta.level.Load() != 2 || ta.admin[1].Load() != 7 {
		t.Fatalf("after SET: %d %d", ta.level.Load(), ta.admin[1].Load())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{".1.3.6.1.4.1.32473.1.9.0", "i", "9"}, "wrongValue"},
		{[]string{".1.3.6.1.4.1.32473.1.9.0", "s", "x"}, "wrongType"},
		{[]string{".1.3.6.1.2.1.1.5.0", "s", "x"}, "notWritable"},
		{[]string{".1.3.6.1.4.1.32473.1.10.1.3.5", "i", "1"}, "noCreation"},
		// The second is refused: the first is not applied either.
		{[]string{".1.3.6.1.4.1.32473.1.9.0", "i", "4", ".1.3.6.1.2.1.1.5.0", "s", "x"}, "notWritable"},
	} {
		out, err := run(t, "snmpset", append(rw, c.args...)...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("SET %v: %v\n%s", c.args, err, out)
		}
	}
	if ta.level.Load() != 2 {
		t.Errorf("a refused SET changed the value: %d", ta.level.Load())
	}
}

func TestV3(t *testing.T) {
	dir := t.TempDir()
	ta := startAgent(t, dir)
	out := mustRun(t, "snmpget", append(strings.Fields(v3noc), ta.addr, ".1.3.6.1.2.1.1.5.0", ".1.3.6.1.6.3.10.2.1.2.0")...)
	if !strings.Contains(out, `STRING: "node-t"`) || !strings.Contains(out, ".1.3.6.1.6.3.10.2.1.2.0 = INTEGER: 1") {
		t.Fatalf("v3 authPriv get:\n%s", out)
	}
	mustRun(t, "snmpset", append(strings.Fields(v3noc), ta.addr, ".1.3.6.1.4.1.32473.1.9.0", "i", "1")...)
	if ta.level.Load() != 1 {
		t.Fatalf("v3 SET not applied")
	}
	out = mustRun(t, "snmpwalk", "-v3", "-l", "authNoPriv", "-u", "watch", "-a", "SHA-512", "-A", "watch-auth-pass", ta.addr, ".1.3.6.1.2.1.1")
	if strings.Count(out, "\n") != 7 {
		t.Fatalf("v3 authNoPriv walk of the system group:\n%s", out)
	}
	out, err := run(t, "snmpset", "-v3", "-l", "authNoPriv", "-u", "watch", "-a", "SHA-512", "-A", "watch-auth-pass", ta.addr,
		".1.3.6.1.4.1.32473.1.9.0", "i", "2")
	if err == nil || !strings.Contains(out, "noAccess") {
		t.Errorf("SET by a read-only user: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{strings.Fields("-v3 -l authPriv -u noc -a SHA-256 -A wrong-auth-pass -x AES -X noc-priv-pass-1"), "Authentication failure"},
		{strings.Fields("-v3 -l authPriv -u nobody -a SHA-256 -A noc-auth-pass-1 -x AES -X noc-priv-pass-1"), "Unknown user name"},
		{strings.Fields("-v3 -l authNoPriv -u noc -a SHA-256 -A noc-auth-pass-1"), "Unsupported security level"},
	} {
		out, err := run(t, "snmpget", append(c.args, ta.addr, ".1.3.6.1.2.1.1.5.0")...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: %v\n%s", c.args, err, out)
		}
	}
	if ta.Stats.WrongDigests.Load() == 0 || ta.Stats.UnknownUserNames.Load() == 0 || ta.Stats.UnsupportedSecLevels.Load() == 0 {
		t.Errorf("usmStats %+v", &ta.Stats)
	}
	// A restart counts a boot: the engine ID stays.
	id := string(ta.EngineID())
	ta2 := startAgent(t, dir)
	if string(ta2.EngineID()) != id || ta2.engine.Boots != 2 {
		t.Fatalf("after a restart: engine %x boots %d", ta2.EngineID(), ta2.engine.Boots)
	}
	mustRun(t, "snmpget", append(strings.Fields(v3noc), ta2.addr, ".1.3.6.1.2.1.1.5.0")...)
}
