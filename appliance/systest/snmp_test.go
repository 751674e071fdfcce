package systest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// snmpTool runs a net-snmp tool with numeric OIDs, one try of 3 s.
func snmpTool(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(tool, append([]string{"-On", "-r", "1", "-t", "3"}, args...)...).CombinedOutput()
	return string(out), err
}

func mustSNMP(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := snmpTool(t, tool, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return out
}

// snmpValue is the value part of the one line snmpget printed for oid.
func snmpValue(t *testing.T, out, oid string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, oid+" = "); ok {
			return v
		}
	}
	t.Fatalf("no %s in\n%s", oid, out)
	return ""
}

const (
	ssCallAttempts = ".1.3.6.1.4.1.32473.1.1.1.3.0"
	ssCallAnswers  = ".1.3.6.1.4.1.32473.1.1.1.4.0"
	ssActiveCalls  = ".1.3.6.1.4.1.32473.1.1.1.1.0"
	ssGatewayEntry = ".1.3.6.1.4.1.32473.1.1.4.1"
)

// TestSNMPAgent: the daemon's agent over v2c and v3 as net-snmp's tools
// see it: counters after sipp's calls equal the calls made; a gateway
// locked by snmpset gets no more calls (the other one takes them) until
// unlocked; a v3 authPriv walk of the whole tree names every object of
// our MIB; a wrong key and an unknown community get nothing.
func TestSNMPAgent(t *testing.T) {
	t.Parallel()
	pa, pb, ps := freePort(t), freePort(t), freePort(t)
	agent := fmt.Sprintf("127.0.0.1:%d", ps)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[metrics]\nlisten = %q\nsources = [\"127.0.0.1\"]\n\n", metricsAddr) +
		fmt.Sprintf("[snmp]\nlisten = %q\nlocation = \"rack 7\"\n\n"+
			"[[snmp.community]]\nname = \"noc-rw-community\"\naccess = \"write\"\nsources = [\"127.0.0.1\"]\n\n"+
			"[[snmp.user]]\nname = \"noc\"\nauth = \"SHA-256\"\nauth_password = \"noc-auth-secret\"\npriv = \"AES\"\n"+
			"priv_password = \"noc-priv-secret\"\naccess = \"write\"\n\n"+
			"[[aaa.radius]]\nname = \"rad-x\"\naddress = \"127.0.0.1\"\nsecret = \"radius-secret-0123\"\n\n"+
			"[[aaa.diameter]]\nname = \"dia-x\"\naddress = \"127.0.0.1:%d\"\n\n[aaa]\norigin_host = \"ss1.test\"\norigin_realm = \"test\"\n\n"+
			"[[registration]]\nname = \"carrier-x\"\nregistrar = \"127.0.0.1:%d\"\ndomain = \"carrier.test\"\nuser = \"sw\"\n"+
			"password = \"trunk-secret-1\"\nexpires = 60\n\n", agent, freePort(t), startUDPSink(t).Port) +
		huntTOML("", gw("gw-a", pa, 1, 1, ""), gw("gw-b", pb, 2, 1, ""))
	srv := startServer(t, cfg)
	startUAS(t, "gw-a", "uas_answer.xml", sippOpts{Port: pa, Calls: -1, Timeout: 120 * time.Second})
	startUAS(t, "gw-b", "uas_answer.xml", sippOpts{Port: pb, Calls: -1, Timeout: 120 * time.Second})
	v2 := []string{"-v2c", "-c", "noc-rw-community", agent}
	v3 := []string{"-v3", "-l", "authPriv", "-u", "noc", "-a", "SHA-256", "-A", "noc-auth-secret", "-x", "AES", "-X", "noc-priv-secret", agent}

	out := mustSNMP(t, "snmpget", append(v2, ssCallAttempts, ".1.3.6.1.2.1.1.6.0")...)
	if v := snmpValue(t, out, ssCallAttempts); v != "Counter64: 0" {
		t.Fatalf("attempts before any call: %s", v)
	}
	if v := snmpValue(t, out, ".1.3.6.1.2.1.1.6.0"); v != `STRING: "rack 7"` {
		t.Fatalf("sysLocation %s", v)
	}
	trunkCalls(t, srv, "calls-1", 7, 20)
	gwAttempts := func(row int) string {
		oid := fmt.Sprintf("%s.7.%d", ssGatewayEntry, row)
		return snmpValue(t, mustSNMP(t, "snmpget", append(v2, oid)...), oid)
	}
	out = mustSNMP(t, "snmpget", append(v2, ssCallAttempts, ssCallAnswers, ssActiveCalls)...)
	if a, b, c := snmpValue(t, out, ssCallAttempts), snmpValue(t, out, ssCallAnswers), snmpValue(t, out, ssActiveCalls); a != "Counter64: 7" ||
		b != "Counter64: 7" || c != "Gauge32: 0" {
		t.Fatalf("after 7 calls: attempts %s, answers %s, active %s", a, b, c)
	}
	if a, b := gwAttempts(1), gwAttempts(2); a != "Counter64: 7" || b != "Counter64: 0" {
		t.Fatalf("gateway attempts a %s, b %s: gw-a (priority 1) should have taken all 7", a, b)
	}

	// RFC 4780's SIP-COMMON-MIB and SIP-SERVER-MIB: the INVITEs received
	// and the 200s sent to them (each at least once: a retransmission
	// counts too), and a registration accepted.
	registerContact(t, srv, "1001", "secret1001", 5097)
	const invite = "1.6.73.78.86.73.84.69" // applIndex 1, "INVITE"
	sipOIDs := map[string]int{
		".1.3.6.1.2.1.149.1.3.1.1.1.1":                  7 + 1, // sipCommonSummaryInRequests: 7 INVITEs, a REGISTER
		".1.3.6.1.2.1.149.1.4.1.1.3." + invite:          7,     // sipCommonMethodStatsInbounds, INVITE
		".1.3.6.1.2.1.149.1.5.1.1.4." + invite + ".200": 7,     // sipCommonStatusCodeOuts, 200 to INVITE
		".1.3.6.1.2.1.151.1.6.1.1.1.1":                  1,     // sipServerRegStatsAcceptedRegs
	}
	for oid, least := range sipOIDs {
		v := snmpValue(t, mustSNMP(t, "snmpget", append(v2, oid)...), oid)
		n, err := strconv.Atoi(strings.TrimPrefix(v, "Counter32: "))
		if err != nil || n < least {
			t.Errorf("%s = %s, want a Counter32 of at least %d", oid, v, least)
		}
	}

	// Lock gw-a: the next calls go to gw-b.
	mustSNMP(t, "snmpset", append(v2, ssGatewayEntry+".4.1", "i", "2")...)
	trunkCalls(t, srv, "calls-2", 4, 20)
	if a, b := gwAttempts(1), gwAttempts(2); a != "Counter64: 7" || b != "Counter64: 4" {
		t.Fatalf("with gw-a locked: a %s, b %s", a, b)
	}
	out, err := snmpTool(t, "snmpset", append(v2, ssGatewayEntry+".4.1", "i", "5")...)
	if err == nil || !strings.Contains(out, "wrongValue") {
		t.Fatalf("admin state 5: %v\n%s", err, out)
	}
	// A SET of two locks with one wrong value changes neither.
	out, err = snmpTool(t, "snmpset", append(v2, ssGatewayEntry+".4.2", "i", "2", ssGatewayEntry+".4.1", "i", "7")...)
	if err == nil || !strings.Contains(out, "wrongValue") {
		t.Fatalf("two locks, one wrong: %v\n%s", err, out)
	}
	if v := snmpValue(t, mustSNMP(t, "snmpget", append(v2, ssGatewayEntry+".4.2")...), ssGatewayEntry+".4.2"); v != "INTEGER: 1" {
		t.Fatalf("gw-b after a refused SET of two: %s", v)
	}
	mustSNMP(t, "snmpset", append(v3, ssGatewayEntry+".4.1", "i", "1")...)
	trunkCalls(t, srv, "calls-3", 2, 20)
	if a := gwAttempts(1); a != "Counter64: 9" {
		t.Fatalf("gw-a unlocked: attempts %s", a)
	}

	// The whole tree over v3; our subtree with our MIB loaded: each of
	// our objects has a name (a number left would be an object the agent
	// serves and the MIB lacks).
	walk := mustSNMP(t, "snmpwalk", append(v3, ".1")...)
	for _, want := range []string{".1.3.6.1.2.1.1.6.0 = STRING: \"rack 7\"", ".1.3.6.1.6.3.10.2.1.2.0 = INTEGER: 1",
		ssCallAttempts + " = Counter64: 13"} {
		if !strings.Contains(walk, want) {
			t.Errorf("the walk has no %q", want)
		}
	}
	ours := mustSNMP(t, "snmpwalk", append([]string{"-M", "../../oam/snmp/mib/base:../../oam/snmp/mib", "-m", "SOFTSWITCH-MIB", "-Os"},
		append(v3[:len(v3)-1], agent, ".1.3.6.1.4.1.32473")...)...)
	named := regexp.MustCompile(`^ss[A-Za-z0-9]+(\.[0-9]+)+ = `)
	lines := strings.Split(strings.TrimSpace(ours), "\n")
	for _, l := range lines {
		if !named.MatchString(l) {
			t.Errorf("not named by SOFTSWITCH-MIB: %s", l)
		}
	}
	for _, want := range []string{"ssCallAttempts.0 = Counter64: 13", "ssGatewayName.2 = STRING: gw-b",
		"ssGatewayAdminState.1 = INTEGER: unlocked(1)", "ssLogLevel.0 = INTEGER: debug(1)",
		"ssGatewayCompletionRatio.1 = Gauge32: 100", "ssGatewayLastFailureCause.2 = Gauge32: 0", "ssHaRole.0 = INTEGER: standalone(1)",
		"ssCdrDeliveryState.0 = INTEGER: disabled(1)", "ssAaaServerName.1 = STRING: rad-x", "ssAaaServerProtocol.1 = INTEGER: radius(1)",
		"ssAaaServerName.2 = STRING: dia-x", "ssAaaServerProtocol.2 = INTEGER: diameter(2)", "ssTrunkRegName.1 = STRING: carrier-x",
		"ssCauseReleases.16 = Counter64: 13", "ssCauseName.16 = STRING: Normal call clearing", "ssCompletionRatioHour.0 = Gauge32: 100"} {
		if !strings.Contains(ours, want) {
			t.Errorf("our subtree has no %q", want)
		}
	}
	if len(lines) < 20 || t.Failed() {
		t.Fatalf("our subtree:\n%s", ours)
	}

	// The same figures for Prometheus.
	scrape, err := exec.Command("curl", "-sS", "--max-time", "5", "http://"+metricsAddr+"/metrics").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, scrape)
	}
	for _, want := range []string{"# TYPE softswitch_call_attempts_total counter\nsoftswitch_call_attempts_total 13\n",
		"softswitch_call_answers_total 13\n", `softswitch_gateway_attempts_total{gateway="gw-a"} 9`,
		`softswitch_gateway_attempts_total{gateway="gw-b"} 4`, "softswitch_calls_active 0\n",
		`softswitch_call_releases_by_cause_total{cause="16"} 13`, "softswitch_asr_60m_ratio 1\n"} {
		if !strings.Contains(string(scrape), want) {
			t.Errorf("the metrics have no %q:\n%s", want, scrape)
		}
	}

	for name, args := range map[string][]string{
		"wrong key":         {"-v3", "-l", "authPriv", "-u", "noc", "-a", "SHA-256", "-A", "not-the-secret", "-x", "AES", "-X", "noc-priv-secret", agent},
		"unknown community": {"-v2c", "-c", "public", agent},
	} {
		if out, err := snmpTool(t, "snmpget", append(args, ssCallAttempts)...); err == nil {
			t.Errorf("%s: answered\n%s", name, out)
		}
	}
	logData, _ := os.ReadFile(srv.LogPath)
	log := string(logData)
	for _, secret := range []string{"noc-rw-community", "noc-auth-secret", "noc-priv-secret"} {
		if strings.Contains(log, secret) {
			t.Errorf("%q is in the log", secret)
		}
	}
}

// snmptrapd is a net-snmp trap receiver on a free loopback port, logging
// what it gets (numeric OIDs) to a file the test reads.
type snmptrapd struct {
	Addr string
	out  string
}

func startSnmptrapd(t *testing.T, community string) *snmptrapd {
	t.Helper()
	return startSnmptrapdWith(t, "authCommunity log "+community+"\n")
}

// startSnmptrapdWith runs snmptrapd with conf (its persistent state in the
// test's directory).
func startSnmptrapdWith(t *testing.T, confText string) *snmptrapd {
	t.Helper()
	bin, err := exec.LookPath("snmptrapd")
	if err != nil {
		bin = "/usr/sbin/snmptrapd"
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmptrapd.conf")
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &snmptrapd{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), out: filepath.Join(dir, "traps.log")}
	f, err := os.Create(d.out)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", "-Lo", "-C", "-c", conf, "-On", "-m", "", "udp:"+d.Addr)
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+dir)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); f.Close() })
	return d
}

// wait returns the log once it has a line with every part, or fails.
func (d *snmptrapd) wait(t *testing.T, within time.Duration, parts ...string) string {
	t.Helper()
	return waitFileLine(t, d.out, within, parts...)
}

// TestSNMPGatewayAlarm: a gateway that stops answering its OPTIONS
// probes raises ssGatewayDown, sent as an inform to snmptrapd and listed
// in ssAlarmTable; when it answers again ssGatewayUp clears it and the
// table is empty.
func TestSNMPGatewayAlarm(t *testing.T) {
	t.Parallel()
	trapd := startSnmptrapd(t, "trap-community-1")
	sink := startUDPSink(t) // bound at once: a port picked first may be taken meanwhile
	pg, ps := sink.Port, freePort(t)
	agent := fmt.Sprintf("127.0.0.1:%d", ps)
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[snmp]\nlisten = %q\n\n[[snmp.community]]\nname = \"noc-ro-community\"\nsources = [\"127.0.0.0/8\"]\n\n"+
		"[[snmp.target]]\naddress = %q\ncommunity = \"trap-community-1\"\ninform = true\n\n", agent, trapd.Addr) +
		huntTOML("", gw("gw-probed", pg, 1, 1, "probe = true\nprobe_interval = \"200ms\"\nprobe_failures = 2\nprobe_recoveries = 2"))
	srv := startServer(t, cfg)
	v2 := []string{"-v2c", "-c", "noc-ro-community", agent}

	const down, up = ".1.3.6.1.4.1.32473.1.0.1", ".1.3.6.1.4.1.32473.1.0.2"
	trapd.wait(t, 10*time.Second, "OID: "+down, "STRING: \"gw-probed\"", ".1.3.6.1.4.1.32473.1.1.7.1.3.1 = INTEGER: 2")
	table := mustSNMP(t, "snmpwalk", append(v2, ".1.3.6.1.4.1.32473.1.1.7")...)
	for _, want := range []string{".1.3.6.1.4.1.32473.1.1.7.1.2.1 = OID: " + down, ".1.3.6.1.4.1.32473.1.1.7.1.4.1 = STRING: \"gw-probed\""} {
		if !strings.Contains(table, want) {
			t.Errorf("ssAlarmTable has no %q:\n%s", want, table)
		}
	}

	sink.close()
	startUAS(t, "gw-probed", "uas_options.xml", sippOpts{Port: pg, Calls: -1, Timeout: 60 * time.Second})
	log := trapd.wait(t, 10*time.Second, "OID: "+up, "STRING: \"gw-probed\"", ".1.3.6.1.4.1.32473.1.1.7.1.3.1 = INTEGER: 5")
	if n := strings.Count(log, "OID: "+down); n != 1 {
		t.Errorf("%d ssGatewayDown notifications, want 1:\n%s", n, log)
	}
	if table := mustSNMP(t, "snmpwalk", append(v2, ".1.3.6.1.4.1.32473.1.1.7")...); strings.Contains(table, "32473.1.1.7.1.") {
		t.Errorf("ssAlarmTable after the clear:\n%s", table)
	}
	waitLog(t, srv, 5*time.Second, "msg=alarm", "type=gateway-down", "cleared=true")
}

// TestSNMPHARoleChange: keepalived's notify hook records a new role (the
// maintenance command it runs); the NMS gets ssHaRoleChange with the new
// ssHaRole, as an SNMPv2c trap and as an SNMPv3 inform (authPriv, the
// manager's engine discovered), and reads the role.
func TestSNMPHARoleChange(t *testing.T) {
	t.Parallel()
	trapd := startSnmptrapd(t, "trap-community-2")
	informd := startSnmptrapdWith(t, "createUser noc-inform SHA-256 inform-auth-pass AES inform-priv-pass\nauthUser log noc-inform\n")
	ps := freePort(t)
	agent := fmt.Sprintf("127.0.0.1:%d", ps)
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[snmp]\nlisten = %q\n\n[[snmp.community]]\nname = \"noc-ro-community\"\nsources = [\"127.0.0.0/8\"]\n\n"+
		"[[snmp.user]]\nname = \"noc-inform\"\nauth = \"SHA-256\"\nauth_password = \"inform-auth-pass\"\npriv = \"AES\"\npriv_password = \"inform-priv-pass\"\n\n"+
		"[[snmp.target]]\naddress = %q\ncommunity = \"trap-community-2\"\n\n"+
		"[[snmp.target]]\naddress = %q\nuser = \"noc-inform\"\ninform = true\n\n"+
		"[ha]\nenabled = true\ninterface = \"lo\"\nvirtual_address = \"127.0.0.200/32\"\n\n", agent, trapd.Addr, informd.Addr)
	srv := startServer(t, cfg)
	const change, role = ".1.3.6.1.4.1.32473.1.0.15", ".1.3.6.1.4.1.32473.1.1.3.1.0"
	for _, c := range []struct {
		state string
		value int
	}{{"MASTER", 2}, {"BACKUP", 3}} {
		if out, err := exec.Command(softswitchBin, "ha-notify", "--data-dir", srv.DataDir, "INSTANCE", "VI_SOFTSWITCH", c.state, "100").CombinedOutput(); err != nil {
			t.Fatalf("ha-notify %s: %v\n%s", c.state, err, out)
		}
		trapd.wait(t, 10*time.Second, "OID: "+change, fmt.Sprintf("%s = INTEGER: %d", role, c.value))
		informd.wait(t, 10*time.Second, "OID: "+change, fmt.Sprintf("%s = INTEGER: %d", role, c.value))
		if got := mustSNMP(t, "snmpget", "-v2c", "-c", "noc-ro-community", agent, role); !strings.Contains(got, fmt.Sprintf("INTEGER: %d", c.value)) {
			t.Fatalf("ssHaRole after %s: %s", c.state, got)
		}
	}
}
