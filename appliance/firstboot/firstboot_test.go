package firstboot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/softswitch/softswitch/appliance/testenv"
	"github.com/softswitch/softswitch/core/config"
	"golang.org/x/crypto/bcrypt"
)

func vals(where string, kv ...string) []Value {
	var out []Value
	for _, s := range kv {
		v, ok := pair(Prefix+s, where)
		if !ok {
			panic(s)
		}
		out = append(out, v)
	}
	return out
}

func TestParseLaterSourceWins(t *testing.T) {
	v := append(vals("SMBIOS OEM string 1", "ha.priority=100", "ha.virtual_address=10.0.0.10/24", "hostname=a"),
		vals("kernel command line", "ha.priority=150")...)
	s, err := Parse(v)
	if err != nil {
		t.Fatal(err)
	}
	if s.HA.Priority != 150 || s.Hostname != "a" || s.HA.RouterID != 51 {
		t.Fatalf("got %+v %+v", s, s.HA)
	}
	if s.Set["ha.priority"] != "kernel command line" {
		t.Errorf("source of ha.priority: %q", s.Set["ha.priority"])
	}
}

func TestParseErrorsNameTheSource(t *testing.T) {
	for _, c := range []struct {
		v    []Value
		want string
	}{
		{vals("SMBIOS OEM string 2", "ha.priority=300"), `SMBIOS OEM string 2: softswitch.ha.priority: "300" is not a number 1..254`},
		{vals("/etc/softswitch/node.conf:3", "servcie.address=1.2.3.4/24"), "/etc/softswitch/node.conf:3: unknown key softswitch.servcie.address"},
		{vals("k", "service.address=10.0.0.1"), "is not an address with its prefix length"},
		{vals("k", "ha.priority=150"), "ha.virtual_address is required"},
		{vals("k", "ha.virtual_address=10.0.0.10/24"), "ha.priority is required"},
		{vals("k", "service.address=10.0.0.10/24", "ha.virtual_address=10.0.0.10/24", "ha.priority=1"), "is this node's own service address"},
		{vals("k", "service.gateway=10.0.0.1"), "service.gateway needs"},
		{vals("k", "management.address=10.1.0.5/24"), "management.address needs softswitch.management.interface"},
		{vals("k", "admin.password_hash=secret"), "never a plain password"},
		{vals("k", "admin.ssh_key=hello"), "not an OpenSSH public key"},
		{vals("k", "hostname=a_b"), "is not a host name"},
		{vals("k", "ha.virtual_address=10.0.0.10/24", "ha.priority=1", "ha.replication_key=short"), "32 characters or more"},
		{vals("k", "ha.virtual_address=10.0.0.10/24", "ha.priority=1", "ha.replication_key=0123456789abcdef0123456789abcdef"), "needs softswitch.ha.peer"},
	} {
		_, err := Parse(c.v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.v, err, c.want)
		}
	}
}

func TestSMBIOSStrings(t *testing.T) {
	dir := t.TempDir()
	// type 11, length 5, handle, count 3; then the strings.
	raw := append([]byte{11, 5, 0x10, 0x00, 3}, []byte("softswitch.hostname=node-a\x00other=1\x00softswitch.admin.ssh_key=ssh-ed25519 AAAA key\x00\x00")...)
	if err := os.MkdirAll(filepath.Join(dir, "11-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "11-0", "raw"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := ReadSMBIOS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 2 || v[0].Key != "hostname" || v[0].Val != "node-a" || v[1].Where != "SMBIOS OEM string 3" || v[1].Val != "ssh-ed25519 AAAA key" {
		t.Fatalf("got %+v", v)
	}
	none, err := ReadSMBIOS(t.TempDir())
	if err != nil || len(none) != 0 {
		t.Fatalf("no entries: %v %v", none, err)
	}
}

func TestCmdlineQuotes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(p, []byte(`root=/dev/vda1 ro softswitch.hostname=b "softswitch.admin.ssh_key=ssh-ed25519 AAAA me@x" softswitch.dns=10.0.0.53,10.0.0.54 quiet`+"\n"), 0o644)
	v, err := ReadCmdline(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 3 || v[1].Val != "ssh-ed25519 AAAA me@x" || v[2].Val != "10.0.0.53,10.0.0.54" {
		t.Fatalf("got %+v", v)
	}
}

func TestSiteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node.conf")
	os.WriteFile(p, []byte("# node A\nhostname = node-a\nsoftswitch.ha.priority=150\n\nnonsense\n"), 0o644)
	_, err := ReadFile(p)
	if err == nil || !strings.Contains(err.Error(), "node.conf:5: want KEY=VALUE") {
		t.Fatalf("error %v", err)
	}
	if v, err := ReadFile(filepath.Join(t.TempDir(), "missing")); err != nil || v != nil {
		t.Fatalf("missing file: %v %v", v, err)
	}
}

// nodeRoot is a node's files as the package leaves them.
func nodeRoot(t *testing.T, conf string) string {
	t.Helper()
	root := t.TempDir()
	for path, body := range map[string]string{
		ConfigPath:                            conf,
		"/etc/systemd/network/10-eth.network": "[Match]\nName=eth*\n",
		"/etc/hosts":                          "127.0.0.1\tlocalhost\n127.0.1.1\tsoftswitch\n",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755)
		if err := os.WriteFile(filepath.Join(root, path), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func read(t *testing.T, root, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyPairNode(t *testing.T) {
	const conf = "[sip]\nlisten = \"0.0.0.0:5060\"\n\n[data]\ndir = \"/var/lib/softswitch\"\n"
	root := nodeRoot(t, conf)
	s, err := Parse(vals("SMBIOS OEM string 1", "hostname=node-a", "service.address=10.200.0.11/24", "service.gateway=10.200.0.1",
		"management.interface=eth1", "management.address=10.9.0.11/24", "dns=10.200.0.53",
		"ha.virtual_address=10.200.0.10/24", "ha.priority=150", "ha.peer=10.200.0.12", "ha.check_timeout=3s", "ha.check_failures=3",
		"ha.replication_key=pair-key-from-the-console-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := Apply(s, root, &log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "pair-key-from-the-console") || !strings.Contains(log.String(), "state replicated with 10.200.0.12") {
		t.Errorf("first boot's log:\n%s", log.String())
	}
	got := read(t, root, ConfigPath)
	if !strings.HasPrefix(got, conf) {
		t.Errorf("the operator's part changed:\n%s", got)
	}
	cfg, err := config.Parse("x", []byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.HA.Enabled || cfg.HA.Interface != "eth0" || cfg.HA.VirtualAddress != "10.200.0.10/24" || cfg.HA.Priority != 150 ||
		len(cfg.HA.UnicastPeers) != 1 || cfg.DNS.Servers[0] != "10.200.0.53:53" ||
		cfg.HA.CheckTimeout.Duration != 3*time.Second || cfg.HA.CheckFailures != 3 || cfg.HA.CheckInterval.Duration != time.Second ||
		cfg.HA.ReplicationListen != "10.200.0.11:5070" || cfg.HA.Peer != "10.200.0.12:5070" || !cfg.HA.Replicates() {
		t.Errorf("config: %+v %+v", cfg.HA, cfg.DNS)
	}
	if _, err := os.Stat(filepath.Join(root, "/etc/systemd/network/10-eth.network")); !os.IsNotExist(err) {
		t.Error("the catch-all DHCP network file is still there")
	}
	svc := read(t, root, "/etc/systemd/network/05-service.network")
	for _, want := range []string{"Name=eth0", "Address=10.200.0.11/24", "Gateway=10.200.0.1", "DNS=10.200.0.53", "KeepConfiguration=static"} {
		if !strings.Contains(svc, want) {
			t.Errorf("service network file lacks %q:\n%s", want, svc)
		}
	}
	if m := read(t, root, "/etc/systemd/network/06-management.network"); !strings.Contains(m, "Name=eth1") || !strings.Contains(m, "Address=10.9.0.11/24") {
		t.Errorf("management network file:\n%s", m)
	}
	fw := read(t, root, "/etc/nftables.conf")
	for _, want := range []string{`iifname "eth0" udp dport 5060`, `iifname "eth0" ip saddr { 10.200.0.12 } meta l4proto 112`, `iifname "eth1" udp dport 161`, `iifname "eth1" tcp dport { 22, 2022, 23 }`, `iifname "eth1" tcp dport 2222`, `iifname "eth1" tcp dport 2121`, `iifname "eth1" tcp dport 30000-30049`, `iifname "eth0" ip saddr { 10.200.0.12 } tcp dport 5070`} {
		if !strings.Contains(fw, want) {
			t.Errorf("firewall lacks %q:\n%s", want, fw)
		}
	}
	kc := read(t, root, KeepalivedConf)
	for _, want := range []string{"interface eth0", "priority 150", "10.200.0.10/24 dev eth0", "enable_script_security", "script_user softswitch", "unicast_peer"} {
		if !strings.Contains(kc, want) {
			t.Errorf("keepalived.conf lacks %q:\n%s", want, kc)
		}
	}
	if h := read(t, root, "/etc/hosts"); !strings.Contains(h, "127.0.1.1\tnode-a\n") || strings.Contains(h, "softswitch") {
		t.Errorf("hosts:\n%s", h)
	}
	if read(t, root, "/etc/resolv.conf") != "nameserver 10.200.0.53\n" {
		t.Error("resolv.conf")
	}

	// Management: SNMP and the command line on the management address,
	// a generated SNMPv3 user, the first command-line user for the switch.
	if cfg.SNMP.Listen != "10.9.0.11:161" || cfg.CLI.SSHListen != "10.9.0.11:2022" || cfg.CLI.TelnetListen != "10.9.0.11:23" ||
		len(cfg.SNMP.Users) != 1 || cfg.SNMP.Users[0].Name != "noc" || len(cfg.SNMP.Users[0].AuthPassword) != 16 ||
		cfg.SNMP.Users[0].Priv != "AES" || cfg.SNMP.Users[0].Access != "read" {
		t.Errorf("management: %+v %+v", cfg.SNMP, cfg.CLI)
	}
	first := strings.Fields(read(t, root, "/var/lib/softswitch/cli-first-user"))
	pw := strings.TrimSpace(read(t, root, CLIPasswordFile))
	if len(first) != 3 || first[0] != "admin" || first[1] != "admin" || bcrypt.CompareHashAndPassword([]byte(first[2]), []byte(pw)) != nil {
		t.Errorf("first CLI user %v does not match the password shown", first)
	}
	if strings.Contains(log.String(), pw) || strings.Contains(log.String(), cfg.SNMP.Users[0].AuthPassword) {
		t.Error("a generated password is in first boot's log")
	}

	// Run again with another priority: the block is replaced, not added;
	// the SNMP user is kept even when its file was deleted once noted.
	os.Remove(filepath.Join(root, SNMPUserFile))
	s.HA.Priority = 100
	if err := Apply(s, root, &log); err != nil {
		t.Fatal(err)
	}
	again := read(t, root, ConfigPath)
	if strings.Count(again, blockBegin) != 1 || !strings.Contains(again, "priority = 100") || !strings.HasPrefix(again, conf) ||
		!strings.Contains(again, cfg.SNMP.Users[0].AuthPassword) {
		t.Errorf("second run (the same SNMP user kept):\n%s", again)
	}
	if strings.TrimSpace(read(t, root, CLIPasswordFile)) != pw {
		t.Error("second run made another first CLI password")
	}

	// As a single node again: no [ha], keepalived.conf gone.
	single, _ := Parse(vals("k", "hostname=node-a"))
	if err := Apply(single, root, &log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(read(t, root, ConfigPath), "[ha]") {
		t.Error("[ha] left after a single-node run")
	}
	if _, err := os.Stat(filepath.Join(root, KeepalivedConf)); !os.IsNotExist(err) {
		t.Error("keepalived.conf left after a single-node run")
	}
}

func TestApplyConflictChangesNothing(t *testing.T) {
	const conf = "[ha]\nenabled = false\n"
	root := nodeRoot(t, conf)
	s, _ := Parse(vals("k", "service.address=10.0.0.11/24", "ha.virtual_address=10.0.0.10/24", "ha.priority=150"))
	err := Apply(s, root, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "already have [ha]") {
		t.Fatalf("error %v", err)
	}
	if read(t, root, ConfigPath) != conf {
		t.Error("config changed")
	}
	if _, err := os.Stat(filepath.Join(root, "/etc/systemd/network/10-eth.network")); err != nil {
		t.Error("network files changed")
	}
}

func TestUnconfiguredKeepsDHCP(t *testing.T) {
	root := nodeRoot(t, "[sip]\n")
	s, _ := Parse(nil)
	if err := Apply(s, root, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "/etc/systemd/network/10-eth.network")); err != nil {
		t.Error("the DHCP default went although nothing was configured")
	}
	if fw := read(t, root, "/etc/nftables.conf"); strings.Contains(fw, "iifname") {
		t.Errorf("one interface, yet rules name interfaces:\n%s", fw)
	}
}

// The rendered rule sets must load into nft (checked, not applied).
func TestFirewallLoads(t *testing.T) {
	testenv.RequireRoot(t, "nft checks the rules")
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("nft not installed (.ci/deps.sh installs nftables)")
	}
	one, _ := Parse(nil)
	split, err := Parse(vals("k", "management.interface=eth1", "ha.virtual_address=10.0.0.10/24", "ha.priority=1", "ha.peer=10.0.0.12"))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Settings{"one interface": one, "split": split} {
		p := filepath.Join(t.TempDir(), "nft.conf")
		os.WriteFile(p, []byte(Firewall(s)), 0o644)
		if out, err := exec.Command("nft", "-c", "-f", p).CombinedOutput(); err != nil {
			t.Errorf("%s: nft -c: %v\n%s\n%s", name, err, out, Firewall(s))
		}
	}
}

func TestGeneratedPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p, err := generatePassword()
		if err != nil || len(p) != 16 || strings.ContainsAny(p, "0O1lI") || seen[p] {
			t.Fatalf("password %q %v", p, err)
		}
		seen[p] = true
	}
}

// TestFirewallPassivePortsMatchDefault: the firewall opens the passive
// range the pull server uses by default.
func TestFirewallPassivePortsMatchDefault(t *testing.T) {
	if got := config.Default().Billing.Pull.PassivePorts; got != CDRPullPassivePort {
		t.Fatalf("config default passive_ports %q, the firewall opens %q", got, CDRPullPassivePort)
	}
}
