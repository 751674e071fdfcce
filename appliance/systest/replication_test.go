package systest

import (
	"crypto/md5"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/softswitch/softswitch/aaa/radius/freeradius"
)

// pairConfigs are two nodes' configurations that replicate to each other
// on 127.0.0.1 (the "virtual address" is 127.0.0.1 too: the roles are
// set by hand, as keepalived's notify hook would).
func pairConfigs(t *testing.T, key string) (a, b ssConfig) { return pairBilling(t, key, "") }

// pairBilling is pairConfigs with billing lines of [billing] on both.
func pairBilling(t *testing.T, key, billing string) (a, b ssConfig) {
	pa, pb := freePort(t), freePort(t)
	ha := func(node string, listen, peer int) string {
		return fmt.Sprintf("[billing]\nnode = %q\n"+billing+"\n[ha]\nenabled = true\ninterface = \"lo\"\nvirtual_address = \"127.0.0.1/32\"\n"+
			"replication_listen = \"127.0.0.1:%d\"\npeer = \"127.0.0.1:%d\"\nreplication_key = %q\n\n", node, listen, peer, key)
	}
	a, b = defaultConfig(), defaultConfig()
	a.Extra, b.Extra = ha("ss-a", pa, pb), ha("ss-b", pb, pa)
	return a, b
}

// TestRegistrationsSurviveFailover: the standby follows the active node
// over the replication link; a subscriber registered at the active node
// is called through the standby after the active is killed (SIGKILL) and
// the standby made MASTER, without registering again, by a subscriber
// added on the active node's command line; the standby refuses commits
// of its own. A subscriber registered at the old active node registers
// again at the new one with its old nonce (a count above the last), and a
// count replayed there is refused. A node with another replication key is
// given nothing.
func TestRegistrationsSurviveFailover(t *testing.T) {
	t.Parallel()
	const key = "pair-replication-key-0123456789abcdef"
	ca, cb := pairConfigs(t, key)
	pc, pcb := freePort(t), freePort(t)
	ca.Extra += fmt.Sprintf("[cli]\nssh_listen = \"127.0.0.1:%d\"\npassword_cost = 10\n\n", pc)
	cb.Extra += fmt.Sprintf("[cli]\nssh_listen = \"127.0.0.1:%d\"\npassword_cost = 10\n\n", pcb)
	// A gateway that never answers its probes: the active node finds it
	// down, the standby (which does not probe) learns it.
	dead := startUDPSink(t)
	gwTOML := gatewayTOML("gw-dead", dead.Port, "probe = true\nprobe_interval = \"200ms\"\nprobe_failures = 2\n")
	ca.Extra += gwTOML
	cb.Extra += gwTOML
	// A carrier's registrar: the active node registers (challenge and
	// answer), and after the takeover the new active node refreshes the
	// same registration (same Call-ID, CSeq above the old node's). A sipp
	// per round: sipp answers a call where it first came from.
	rp := freePort(t)
	carrierKeys := map[string]string{"user": "pair-sw", "password": "trunk-secret-2", "expires": "300"}
	carrier := startUAS(t, "carrier-registrar", "uas_registrar_once.xml", sippOpts{Port: rp, Timeout: 60 * time.Second, Keys: carrierKeys})
	regTOML := fmt.Sprintf("[[registration]]\nname = \"carrier-up\"\nregistrar = \"127.0.0.1:%d\"\ndomain = \"carrier.test\"\n"+
		"user = \"pair-sw\"\npassword = \"trunk-secret-2\"\nexpires = 300\n\n", rp)
	ca.Extra += regTOML
	cb.Extra += regTOML
	a, b := startServer(t, ca), startServer(t, cb)
	setRole(t, a, "MASTER")
	setRole(t, b, "BACKUP")
	inStep := func(srv *server) bool {
		return regexpMatch(`in step with the active node\s+true`, softswitchCmd(t, srv, "replication"))
	}
	waitFor(t, 10*time.Second, "the standby in step", func() bool { return inStep(b) })

	// Commits on the active node reach the standby; the standby's own are
	// refused.
	addCLIUser(t, a, "ops", "admin", "ops-secret-1234")
	if out, err := expectSSH(t, pc, "ops", "ops-secret-1234", `
expect "# "
send "configure\r"
expect "(config)# "
send "subscriber 1003 password secret-1003-pw\r"
expect "(config)# "
send "commit\r"
expect "committed"
send "end\r"
expect "# "
send "exit\r"
expect eof
`); err != nil {
		t.Fatalf("configuring on the active node: %v\n%s", err, out)
	}
	revision := func(srv *server) string {
		m := regexp.MustCompile(`revision (\d+)`).FindStringSubmatch(softswitchCmd(t, srv, "replication"))
		if m == nil {
			t.Fatal("no revision in softswitch replication")
		}
		return m[1]
	}
	waitFor(t, 10*time.Second, "the standby at the active's revision", func() bool { return revision(a) == revision(b) })
	if got := softswitchSSH(t, pc, "ops", "ops-secret-1234", "show replication"); !regexpMatch(`standbys following this node\s+1`, got) {
		t.Errorf("show replication on the active node:\n%s", got)
	}
	// The standby has the active's users (ops logs in there) and its
	// finding of the gateway, without probing it itself.
	waitFor(t, 10*time.Second, "gw-dead down at the standby", func() bool {
		return regexpMatch(`gw-dead\s+down`, softswitchSSH(t, pcb, "ops", "ops-secret-1234", "show gateways"))
	})
	if n := countContaining(dead.Messages(), "OPTIONS "); n == 0 {
		t.Error("the active node did not probe gw-dead")
	}
	cmd := exec.Command(softswitchBin, "cli-user", "--data-dir", b.DataDir, "add", "other", "admin")
	cmd.Stdin = strings.NewReader("other-secret-1234\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "standby") {
		t.Errorf("a commit on the standby: %v\n%s", err, out)
	}

	callee := startUAS(t, "callee-1002", "uas_answer.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, a, "1002", "secret1002", callee.Port)
	waitFor(t, 10*time.Second, "the registration at the standby", func() bool {
		return regexpMatch(`changes applied\s+[1-9]`, softswitchCmd(t, b, "replication"))
	})

	// A nonce the active node gave: its count reaches the standby.
	applied := func(srv *server) int {
		m := regexp.MustCompile(`changes applied\s+(\d+)`).FindStringSubmatch(softswitchCmd(t, srv, "replication"))
		if m == nil {
			t.Fatal("no count of changes in softswitch replication")
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	before := applied(b)
	dc := newDigestClient(t, "1001", "secret1001")
	if m := dc.register(a.Addr, 0); m.Status != 401 {
		t.Fatalf("REGISTER without credentials: %d", m.Status)
	}
	if m := dc.register(a.Addr, 1); m.Status != 200 {
		t.Fatalf("REGISTER with the nonce: %d", m.Status)
	}
	waitFor(t, 10*time.Second, "the registration of 1001 at the standby", func() bool { return applied(b) > before })
	waitLog(t, a, 10*time.Second, "trunk registration", "name=carrier-up", "state=registered")
	first := carrier.wait()
	first.requireOK(t)
	carrier = startUAS(t, "carrier-registrar-again", "uas_registrar_once.xml", sippOpts{Port: rp, Timeout: 60 * time.Second, Keys: carrierKeys})
	time.Sleep(500 * time.Millisecond) // the dialog streamed to the standby

	a.kill()
	setRole(t, b, "MASTER")
	time.Sleep(1500 * time.Millisecond) // the role is read each second

	// The old nonce is good at the new active node (no new challenge, no
	// 403); its count replayed is not.
	if m := dc.register(b.Addr, 2); m.Status != 200 {
		t.Errorf("REGISTER at the new active node with the old nonce: %d %s", m.Status, m.Reason)
	}
	if m := dc.register(b.Addr, 2); m.Status == 200 {
		t.Error("a nonce count replayed at the new active node was taken")
	}
	o := callOpts(b, "caller-1003-after-failover", "uac_call_bye.xml", "1002")
	o.AuthUser, o.AuthPass, o.Keys["caller"] = "1003", "secret-1003-pw", "1003"
	r := runSipp(t, o)
	callee.wait().requireOK(t)
	r.expectOK(t)

	// The carrier saw one registration, refreshed by the new active node.
	second := carrier.wait()
	second.requireOK(t)
	regs := append(first.ReceivedRequests("REGISTER"), second.ReceivedRequests("REGISTER")...)
	if len(regs) != 4 {
		t.Fatalf("the carrier's registrar got %d REGISTERs, want 4 (two rounds)", len(regs))
	}
	cseq := func(m sipMsg) int { n, _ := strconv.Atoi(strings.Fields(m.Header("CSeq"))[0]); return n }
	for _, m := range regs[1:] {
		if m.Header("Call-ID") != regs[0].Header("Call-ID") {
			t.Errorf("REGISTER Call-IDs %q then %q: a second registration", regs[0].Header("Call-ID"), m.Header("Call-ID"))
		}
	}
	if !strings.Contains(regs[2].Header("Contact"), b.Addr) || cseq(regs[2]) <= cseq(regs[1]) {
		t.Errorf("the refresh: Contact %q (new active node %s), CSeq %d after %d", regs[2].Header("Contact"), b.Addr, cseq(regs[2]), cseq(regs[1]))
	}

	// A third node with another key is refused by the new active one.
	cc := defaultConfig()
	peer := strings.SplitN(strings.SplitN(cb.Extra, "replication_listen = \"", 2)[1], "\"", 2)[0]
	cc.Extra = fmt.Sprintf("[billing]\nnode = \"ss-c\"\n\n[ha]\nenabled = true\ninterface = \"lo\"\nvirtual_address = \"127.0.0.1/32\"\n"+
		"replication_listen = \"127.0.0.1:%d\"\npeer = %q\nreplication_key = \"another-key-of-enough-length-0123456789\"\n\n", freePort(t), peer)
	c := startServer(t, cc)
	setRole(t, c, "BACKUP")
	waitLog(t, b, 10*time.Second, "replication: a connection refused")
	if inStep(c) {
		t.Fatal("a node with another key is in step")
	}
}

// digestClient registers over UDP with digest answers it computes
// itself, so that a test can reuse a nonce (sipp cannot, across servers).
type digestClient struct {
	t          *testing.T
	conn       *net.UDPConn
	user, pass string
	callID     string
	cseq       int
	realm      string
	nonce      string
	opaque     string
}

func newDigestClient(t *testing.T, user, pass string) *digestClient {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &digestClient{t: t, conn: c, user: user, pass: pass, callID: fmt.Sprintf("dc-%d@127.0.0.1", time.Now().UnixNano())}
}

// register sends one REGISTER to addr (with an Authorization of the
// nonce it holds and count nc, when nc > 0) and returns the final answer.
func (c *digestClient) register(addr string, nc int) sipMsg {
	c.t.Helper()
	c.cseq++
	port := c.conn.LocalAddr().(*net.UDPAddr).Port
	uri := "sip:" + addr
	var auth string
	if nc > 0 {
		h := func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }
		cnonce, ncs := "0a4f113b", fmt.Sprintf("%08x", nc)
		resp := h(h(c.user+":"+c.realm+":"+c.pass) + ":" + c.nonce + ":" + ncs + ":" + cnonce + ":auth:" + h("REGISTER:"+uri))
		auth = fmt.Sprintf("Authorization: Digest username=%q, realm=%q, nonce=%q, uri=%q, response=%q, algorithm=MD5, "+
			"cnonce=%q, opaque=%q, qop=auth, nc=%s\r\n", c.user, c.realm, c.nonce, uri, resp, cnonce, c.opaque, ncs)
	}
	msg := fmt.Sprintf("REGISTER %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-dc%d-%d;rport\r\n"+
		"From: <sip:%s@127.0.0.1>;tag=dc%d\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\n"+
		"Contact: <sip:%s@127.0.0.1:%d>\r\nExpires: 600\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n",
		uri, port, port, c.cseq, c.user, port, c.user, c.callID, c.cseq, c.user, port, auth)
	dst, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.WriteToUDP([]byte(msg), dst); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			c.t.Fatalf("no final answer to REGISTER (CSeq %d) from %s: %v", c.cseq, addr, err)
		}
		m := parseSIP(string(buf[:n]))
		if m.Status >= 200 {
			if m.Status == 401 {
				_, p := authParams(m.Header("WWW-Authenticate"))
				c.realm, c.nonce, c.opaque = p["realm"], p["nonce"], p["opaque"]
			}
			return m
		}
	}
}

// TestPrepaidCallSurvivesFailover: a subscriber's call granted 12 s by
// FreeRADIUS (Session-Timeout) is answered through the active node, which
// is then killed (SIGKILL) and the standby made MASTER. The new active
// node releases the call when the granted time is used up, 12 s after
// the answer (not after the takeover), with a BYE on both legs, and
// writes its record under the old node's record id, "time limit".
func TestPrepaidCallSurvivesFailover(t *testing.T) {
	t.Parallel()
	const secret = "prepaid-pair-secret-0123456789"
	rad := freeradius.Start(t, freeradius.Options{Secret: secret, Dictionary: "../../docs/dictionary.softswitch",
		Users: "1001\tService-Type == Call-Check, Auth-Type := Accept\n\tSession-Timeout = 12\n\n"})
	ca, cb := pairConfigs(t, "prepaid-pair-key-0123456789abcdef")
	aaa := fmt.Sprintf("[aaa]\ncall_authorization = [\"rad1\"]\n\n[[aaa.radius]]\nname = \"rad1\"\naddress = \"127.0.0.1\"\n"+
		"auth_port = %d\nacct_port = %d\nsecret = %q\ntimeout = \"300ms\"\n\n", rad.Auth.Port(), rad.Acct.Port(), secret)
	ca.Extra += aaa
	cb.Extra += aaa
	a, b := startServer(t, ca), startServer(t, cb)
	setRole(t, a, "MASTER")
	setRole(t, b, "BACKUP")
	waitFor(t, 10*time.Second, "the standby in step", func() bool {
		return regexpMatch(`in step with the active node\s+true`, softswitchCmd(t, b, "replication"))
	})

	callee := startUAS(t, "callee-1002", "uas_answer.xml", sippOpts{Keys: map[string]string{"user": "1002"}, Timeout: 60 * time.Second})
	registerContact(t, a, "1002", "secret1002", callee.Port)
	o := callOpts(a, "caller-1001", "uac_call_recv_bye.xml", "1002")
	o.Timeout = 60 * time.Second
	caller := startSipp(t, o)
	waitFor(t, 10*time.Second, "the call held by the standby", func() bool {
		return regexpMatch(`calls in progress replicated\s+1\n`, softswitchCmd(t, b, "replication"))
	})
	// 4 s into the call: a deadline counted again from the takeover
	// would end it at 16 s or later.
	time.Sleep(4 * time.Second)
	a.kill()
	setRole(t, b, "MASTER")

	cr, ce := caller.wait(), callee.wait()
	cr.requireOK(t)
	ce.requireOK(t)
	requireTimeLimitBYEs(t, cr, ce)
	b.stop()
	recs := cdrFiles(t, filepath.Join(b.DataDir, "cdr"))
	rec := recs[callIDs(cr)[0]]
	if rec == nil {
		t.Fatalf("no record of the call at the new active node: %v", recs)
	}
	ms, _ := strconv.Atoi(rec["duration_ms"])
	if rec["end_reason"] != "time limit" || !strings.HasPrefix(rec["record_id"], "ss-a-") || ms < 11900 || ms > 14500 {
		t.Errorf("the record: id %s, end %q, duration %d ms (granted 12 s)", rec["record_id"], rec["end_reason"], ms)
	}
}

// TestStandbyHandsCDRFilesOver: CDR files a standby closes (calls sent to
// its own address; after a split of the pair, the calls it carried
// alone) go to the active node over the pair's link, and the active node
// pushes them to the billing centre; the standby itself sends nothing
// over FTP.
func TestStandbyHandsCDRFilesOver(t *testing.T) {
	t.Parallel()
	ftpd := startVsftpd(t, false)
	push := fmt.Sprintf("[billing.push]\nservers = [%q]\nuser = \"anonymous\"\npassword = \"cdr@example.net\"\n"+
		"dir = \"incoming\"\nretry_min = \"1s\"\nretry_max = \"2s\"\n\n", ftpd.Addr)
	ca, cb := pairBilling(t, "handover-pair-key-0123456789abcdef", "rotate_records = 2\n")
	pg := freePort(t)
	gws := huntTOML("", gw("gw-ok", pg, 1, 1, ""))
	ca.Extra += push + gws
	cb.Extra += push + gws
	a, b := startServer(t, ca), startServer(t, cb)
	startUAS(t, "gw", "uas_answer.xml", sippOpts{Port: pg, Calls: -1, Timeout: 120 * time.Second})
	setRole(t, a, "MASTER")
	setRole(t, b, "BACKUP")
	waitFor(t, 10*time.Second, "the standby in step", func() bool {
		return regexpMatch(`in step with the active node\s+true`, softswitchCmd(t, b, "replication"))
	})
	calls := trunkCalls(t, b, "to-the-standby", 4, 20)
	delivered := waitDelivered(t, filepath.Join(b.DataDir, "cdr"), ftpd.Incoming, 4, 30*time.Second) // 2 files, 2 sidecars
	for _, n := range delivered {
		if !strings.HasPrefix(n, "ss-b_") {
			t.Errorf("delivered %v: not only the standby's files", delivered)
		}
	}
	waitLog(t, a, 5*time.Second, "CDR file delivered (handed over by the other node of the pair)")
	waitLog(t, b, 5*time.Second, "replication: a closed CDR file handed to the active node")
	if data, _ := os.ReadFile(b.LogPath); strings.Contains(string(data), `msg="CDR file delivered"`) {
		t.Error("the standby pushed to the billing centre itself")
	}
	recs := cdrFiles(t, ftpd.Incoming)
	for _, id := range callIDs(calls) {
		if recs[id] == nil {
			t.Errorf("call %s: no record at the billing centre", id)
		}
	}
}

// TestUndeliveredCDRsOutliveTheOldNode: the billing centre (vsftpd) and
// the RADIUS accounting server (FreeRADIUS) are away while the active
// node of a pair records 6 calls: it closes one file (4 a file), holds 2
// records not yet in a file and 12 accounting entries, and its standby
// holds a copy of all of it (`replication`). The active node is killed,
// the servers come back, and the standby is made MASTER: it keeps the
// copy for peer_records_wait (4 s) and then, the old node not back,
// pushes the old node's file under its own name, writes the 2 records
// into its own files under the old node's ids and sends the accounting:
// the billing centre gets each call's record once (each node's files in
// their own sequence), FreeRADIUS each call's Start and Stop. The old
// node, restarted as standby, hands its file over (acknowledged, not
// pushed again) and drops the records and accounting the other node
// wrote and sent; made active again, it sends none of it again.
func TestUndeliveredCDRsOutliveTheOldNode(t *testing.T) {
	t.Parallel()
	rad := freeradius.Start(t, freeradius.Options{Secret: "escrow-secret-0123456789", Dictionary: "../../docs/dictionary.softswitch"})
	ftpd := startVsftpd(t, false)
	ca, cb := pairBilling(t, "escrow-pair-key-0123456789abcdefgh", "rotate_records = 4\n")
	pg := freePort(t)
	rest := "peer_records_wait = \"4s\"\n\n" + fmt.Sprintf("[billing.push]\nservers = [%q]\nuser = \"anonymous\"\npassword = \"cdr@example.net\"\n"+
		"dir = \"incoming\"\nretry_min = \"1s\"\nretry_max = \"2s\"\ntimeout = \"3s\"\n\n"+
		"[aaa]\naccounting = [\"rad1\"]\n\n[[aaa.radius]]\nname = \"rad1\"\naddress = \"127.0.0.1\"\nacct_port = %d\n"+
		"secret = \"escrow-secret-0123456789\"\ntimeout = \"300ms\"\ntries = 2\ndead_time = \"1s\"\n\n", ftpd.Addr, rad.Acct.Port()) +
		huntTOML("", gw("gw-ok", pg, 1, 1, ""))
	ca.Extra += rest
	cb.Extra += rest
	a, b := startServer(t, ca), startServer(t, cb)
	startUAS(t, "gw", "uas_answer.xml", sippOpts{Port: pg, Calls: -1, Timeout: 180 * time.Second})
	setRole(t, a, "MASTER")
	setRole(t, b, "BACKUP")
	waitFor(t, 10*time.Second, "the standby in step", func() bool {
		return regexpMatch(`in step with the active node\s+true`, softswitchCmd(t, b, "replication"))
	})

	rad.Stop()
	ftpd.stop()
	calls := trunkCalls(t, a, "before-the-kill", 6, 20)
	ids := callIDs(calls)
	waitFor(t, 10*time.Second, "the standby holding 2 records, 1 file and 12 accounting entries", func() bool {
		out := softswitchCmd(t, b, "replication")
		return regexpMatch(`undelivered CDRs replicated\s+2\n`, out) && regexpMatch(`undelivered CDR files\s+1\n`, out) &&
			regexpMatch(`undelivered accounting\s+12\n`, out)
	})
	a.kill()
	rad.Restart()
	ftpd.start()
	setRole(t, b, "MASTER")
	waitLog(t, b, 10*time.Second, "CDRs the pair's other node had not delivered: kept here", "records=2", "accounting_entries=12", "files=1")
	waitLog(t, b, 15*time.Second, "written by this node", "records=2", "accounting_entries=12", "files=1")
	acct := func() map[string]int {
		seen := map[string]int{}
		for _, x := range radiusDetail(rad.Detail) {
			seen[x["Softswitch-Call-ID"]+" "+x["Acct-Status-Type"]]++
		}
		return seen
	}
	waitFor(t, 20*time.Second, "each call's Start and Stop at FreeRADIUS, from the new active node", func() bool {
		seen := acct()
		for _, id := range ids {
			if seen[id+" Start"] == 0 || seen[id+" Stop"] == 0 {
				return false
			}
		}
		return true
	})
	waitLog(t, b, 20*time.Second, "CDR file delivered (handed over by the other node of the pair)", "file=ss-a_0000000001_")
	b.restart() // closes its file (4 a file), and pushes it
	waitDelivered(t, filepath.Join(b.DataDir, "cdr"), ftpd.Incoming, 2, 30*time.Second)
	recs := cdrFiles(t, ftpd.Incoming)
	for _, id := range ids {
		if r := recs[id]; r == nil || !strings.HasPrefix(r["record_id"], "ss-a-") || r["end_reason"] != "normal" {
			t.Errorf("call %s: record %v at the billing centre, want one of the old node's", id, r)
		}
	}
	if len(recs) != len(ids) {
		t.Errorf("%d records at the billing centre, want %d", len(recs), len(ids))
	}

	// The old node back, as standby: it hands its file over (pushed
	// already) and drops what the other node wrote and sent.
	setRole(t, a, "BACKUP")
	a.start()
	waitLog(t, a, 20*time.Second, "settled with the pair's other node", "records_kept=0", "written_by_the_other_node=2",
		"accounting_entries_sent_by_the_other_node=12")
	waitLog(t, b, 20*time.Second, "a CDR file handed over was pushed here already", "file=ss-a_0000000001_")
	// Switched back: it delivers none of it again.
	files, sent := closedFiles(ftpd.Incoming), acct()
	setRole(t, b, "BACKUP")
	setRole(t, a, "MASTER")
	time.Sleep(4 * time.Second)
	a.stop() // closes its file, if it held anything
	setRole(t, a, "MASTER")
	a.start()
	time.Sleep(3 * time.Second)
	if now := closedFiles(ftpd.Incoming); len(now) != len(files) {
		t.Errorf("the old node delivered files again: %v, before %v", now, files)
	}
	data, _ := os.ReadFile(b.LogPath)
	pushed := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "CDR file delivered (handed over") && strings.Contains(line, "file=ss-a_0000000001_") {
			pushed++
		}
	}
	if pushed != 1 {
		t.Errorf("the old node's file pushed %d times, want once", pushed)
	}
	for k, n := range acct() {
		if n != sent[k] && !strings.HasSuffix(k, "Interim-Update") {
			t.Errorf("accounting %s: %d at FreeRADIUS after the old node returned, %d before", k, n, sent[k])
		}
	}
}
