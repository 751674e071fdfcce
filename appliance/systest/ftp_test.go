package systest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// vsftpd is Debian's vsftpd as the billing centre's FTP server, on a free
// loopback port, anonymous uploads (and renames) into incoming/.
type vsftpd struct {
	t        *testing.T
	Addr     string
	Incoming string
	CertFile string // FTPS: the server's self-signed certificate
	conf     string
	cmd      *exec.Cmd
	done     chan struct{}
}

func startVsftpd(t *testing.T, ftps bool) *vsftpd {
	t.Helper()
	bin, err := exec.LookPath("vsftpd")
	if err != nil {
		bin = "/usr/sbin/vsftpd"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("vsftpd is not installed (make deps installs it): %v", err)
	}
	ftpUser, err := user.Lookup("ftp")
	if err != nil {
		t.Fatalf("the ftp user (made by Debian's vsftpd package): %v", err)
	}
	uid, _ := strconv.Atoi(ftpUser.Uid)
	gid, _ := strconv.Atoi(ftpUser.Gid)
	dir := t.TempDir()
	root, empty := filepath.Join(dir, "root"), filepath.Join(dir, "empty")
	incoming := filepath.Join(root, "incoming")
	for _, d := range []string{root, empty, incoming} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(root, 0o555) // vsftpd refuses a writable anonymous root
	os.Chmod(dir, 0o755)
	if err := os.Chown(incoming, uid, gid); err != nil {
		t.Fatal(err)
	}
	port, pasv := freePort(t), freePort(t)
	conf := filepath.Join(dir, "vsftpd.conf")
	cfg := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_world_readable_only=NO
no_anon_password=YES
anon_root=%s
anon_umask=022
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=%d
pasv_max_port=%d
secure_chroot_dir=%s
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=YES
vsftpd_log_file=%s
ftp_username=ftp
`, port, root, pasv, pasv, empty, filepath.Join(dir, "vsftpd.log"))
	var cert string
	if ftps {
		var key string
		cert, key = selfSigned(t, dir)
		// Explicit FTPS only, on control and data, with TLS session reuse
		// on the data connections (vsftpd's default require_ssl_reuse).
		cfg += fmt.Sprintf("ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n"+
			"require_ssl_reuse=YES\nssl_tlsv1=YES\nssl_sslv2=NO\nssl_sslv3=NO\nrsa_cert_file=%s\nrsa_private_key_file=%s\n", cert, key)
	}
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	v := &vsftpd{t: t, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Incoming: incoming, conf: conf, CertFile: cert}
	v.start()
	t.Cleanup(v.stop)
	return v
}

func (v *vsftpd) start() {
	v.t.Helper()
	v.cmd = exec.Command("vsftpd", v.conf)
	// Its own process group: stop ends the sessions it forked too, as an
	// outage of the billing centre would.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	v.cmd.Stdout, v.cmd.Stderr = &out, &out
	if err := v.cmd.Start(); err != nil {
		v.t.Fatalf("vsftpd: %v", err)
	}
	v.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(v.cmd, v.done)
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", v.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-v.done:
			v.t.Fatalf("vsftpd exited: %s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	v.t.Fatalf("vsftpd not listening on %s", v.Addr)
}

func (v *vsftpd) stop() {
	if v.cmd == nil {
		return
	}
	syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	// Its sessions leave the group (setsid): they run with its command line.
	exec.Command("pkill", "-KILL", "-f", "vsftpd "+v.conf).Run()
	<-v.done
	v.cmd = nil
}

// closedFiles lists the closed CDR files (and sidecars) in dir.
func closedFiles(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".csv") || strings.HasSuffix(n, ".csv.sha256")) {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// waitDelivered waits until local has at least atLeast closed files (and
// sidecars) and every one of them is in remote with the same bytes.
func waitDelivered(t *testing.T, local, remote string, atLeast int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		want := closedFiles(local)
		missing := ""
		for _, n := range want {
			a, _ := os.ReadFile(filepath.Join(local, n))
			b, err := os.ReadFile(filepath.Join(remote, n))
			if err != nil || !bytes.Equal(a, b) {
				missing = n
				break
			}
		}
		if missing == "" && len(want) >= atLeast {
			return want
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not delivered within %v (local %v, remote %v)", missing, within, want, closedFiles(remote))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pushTOML is [billing] (node, rotation after rotate records) with a
// [billing.push] to ftpd's incoming/; extra adds push keys.
func pushTOML(node string, rotate int, ftpd *vsftpd, extra string) string {
	return fmt.Sprintf("[billing]\nnode = %q\nrotate_records = %d\n"+
		"[billing.push]\nservers = [%q]\nuser = \"anonymous\"\npassword = \"cdr@example.net\"\ndir = \"incoming\"\n"+
		"retry_min = \"1s\"\nretry_max = \"2s\"\ntimeout = \"5s\"\n%s\n", node, rotate, ftpd.Addr, extra)
}

// billingBed starts a switch with billingTOML and one gateway that
// answers every call (the analysis routes every number to it).
func billingBed(t *testing.T, billingTOML string) *server {
	t.Helper()
	pg := freePort(t)
	cfg := defaultConfig()
	cfg.Extra = billingTOML + "\n" + huntTOML("", gw("gw-ok", pg, 1, 1, ""))
	srv := startServer(t, cfg)
	startUAS(t, "gw", "uas_answer.xml", sippOpts{Port: pg, Calls: -1, Timeout: 120 * time.Second})
	return srv
}

// trunkCalls runs n answered calls from the trusted peer through srv.
func trunkCalls(t *testing.T, srv *server, name string, n, rate int) *sippResult {
	t.Helper()
	r := runSipp(t, sippOpts{Name: name, Scenario: "uac_trusted_call.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0301234", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"},
		Calls: n, Rate: rate, Timeout: 30 * time.Second})
	r.requireOK(t)
	return r
}

// TestCDRFilesPushedOverFTP: closed files reach vsftpd complete, renamed,
// with their sidecars; through an outage of the server nothing is lost,
// nothing arrives twice, and the sequence has no gap.
func TestCDRFilesPushedOverFTP(t *testing.T) {
	t.Parallel()
	ftpd := startVsftpd(t, false)
	srv := billingBed(t, pushTOML("push1", 10, ftpd, ""))
	calls := func(name string, n int) { trunkCalls(t, srv, name, n, 40) }
	cdrDir := filepath.Join(srv.DataDir, "cdr")

	calls("before", 30)
	first := waitDelivered(t, cdrDir, ftpd.Incoming, 6, 20*time.Second) // 3 files of 10 and their sidecars

	// The billing centre is down while calls go on and files rotate.
	ftpd.stop()
	calls("outage", 25)
	time.Sleep(2 * time.Second) // at least one failed attempt
	if n := len(closedFiles(cdrDir)); n <= len(first) {
		t.Fatalf("no file closed during the outage (%d)", n)
	}
	ftpd.start()
	all := waitDelivered(t, cdrDir, ftpd.Incoming, 10, 30*time.Second) // 5 files of 10
	srv.stop()

	// Each sequence number once, no gap, no leftover temporary upload.
	remote, _ := os.ReadDir(ftpd.Incoming)
	seqs := map[int]bool{}
	for _, e := range remote {
		n := e.Name()
		if strings.HasPrefix(n, ".") {
			t.Errorf("a temporary upload was left: %s", n)
			continue
		}
		if !strings.HasSuffix(n, ".csv") {
			continue
		}
		f := strings.Split(n, "_")
		seq, err := strconv.Atoi(f[1])
		if err != nil || seqs[seq] {
			t.Errorf("%s: sequence read %d twice or unreadable", n, seq)
		}
		seqs[seq] = true
	}
	for i := 1; i <= len(seqs); i++ {
		if !seqs[i] {
			t.Errorf("file sequence %d missing on the server (%v)", i, all)
		}
	}
	recs := cdrFiles(t, ftpd.Incoming)
	if len(recs) < 50 {
		t.Errorf("%d records delivered, want at least 50 of the 55 calls (the rest are in the file closed at stop)", len(recs))
	}
	waitLog(t, srv, time.Second, "CDR files cannot be delivered")
	waitLog(t, srv, time.Second, "CDR files delivered again")
}

// selfSigned writes a certificate and key for 127.0.0.1 into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "billing-centre"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	return certFile, keyFile
}

// TestCDRFilesPushedOverFTPS: the same delivery over explicit FTPS
// (AUTH TLS, PROT P, TLS session reuse on the data connections).
func TestCDRFilesPushedOverFTPS(t *testing.T) {
	t.Parallel()
	ftpd := startVsftpd(t, true)
	srv := billingBed(t, pushTOML("ftps1", 5, ftpd, fmt.Sprintf("tls = \"explicit\"\nca_file = %q\n", ftpd.CertFile)))
	trunkCalls(t, srv, "calls", 10, 20)
	waitDelivered(t, filepath.Join(srv.DataDir, "cdr"), ftpd.Incoming, 4, 20*time.Second)
	if recs := cdrFiles(t, ftpd.Incoming); len(recs) != 10 {
		t.Errorf("%d records delivered over FTPS, want 10", len(recs))
	}
}

// TestCDRsNoLossThroughKills: 500 calls from sipp with random hold times
// while the switch is killed (SIGKILL) five times: from outside with calls
// in progress, and at failpoints in the middle of a file's rotation (the
// intent durable but no file; the file in place but the spool not told)
// and of an upload (a .part on the server; renamed on the server but not
// marked delivered); restarted each time. At the end the billing centre
// (vsftpd) holds one record for every call sipp made (its Call-ID in the
// record), none twice, none for a call nobody made; the calls a kill cut
// (sipp's BYE got 481 from the restarted switch) are "ended by restart",
// the others normal; the file sequence is unbroken, each file arrived
// once under its own name and no partial upload is left.
func TestCDRsNoLossThroughKills(t *testing.T) {
	t.Parallel()
	ftpd := startVsftpd(t, false)
	srv := billingBed(t, pushTOML("kill1", 15, ftpd, ""))
	cdrDir := filepath.Join(srv.DataDir, "cdr")

	calls := startSipp(t, sippOpts{Name: "calls", Scenario: "uac_trusted_random_hold.xml", Remote: srv.Addr,
		LocalIP: trustedIP, Service: "0301234", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"},
		Calls: 500, Rate: 20, Timeout: 150 * time.Second})
	time.Sleep(3 * time.Second)
	srv.kill() // calls in progress
	srv.start()
	for _, point := range []string{"cdr-intent", "cdr-upload-stored", "cdr-file-written", "cdr-upload-renamed"} {
		time.Sleep(2 * time.Second)
		srv.failAt(point, 20*time.Second)
		srv.start()
	}
	res := calls.wait()
	srv.stop()  // closes the last file
	srv.start() // and delivers it
	delivered := waitDelivered(t, cdrDir, ftpd.Incoming, 2, 30*time.Second)
	srv.stop()

	if remote := closedFiles(ftpd.Incoming); strings.Join(remote, " ") != strings.Join(delivered, " ") {
		t.Errorf("the billing centre has %v, the switch closed %v", remote, delivered)
	}
	if ents, _ := os.ReadDir(ftpd.Incoming); len(ents) != len(delivered) { // files and sidecars
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the billing centre's directory holds more than the files and sidecars: %v", names)
	}
	recs := cdrFiles(t, ftpd.Incoming) // sequence, checksums, one record per Call-ID
	sent := callIDs(res)
	if len(sent) != 500 {
		t.Errorf("sipp made %d calls, want 500", len(sent))
	}
	byeStatus := map[string]int{}
	for _, m := range res.ReceivedFinals("BYE") {
		byeStatus[m.Header("Call-ID")] = m.Status
	}
	restarted := 0
	for _, id := range sent {
		r := recs[id]
		if r == nil {
			t.Errorf("call %s has no record", id)
			continue
		}
		switch byeStatus[id] {
		case 481: // the switch that had the call died
			if r["end_reason"] != "ended by restart" {
				t.Errorf("call %s was cut by a kill but its record ends %q", id, r["end_reason"])
			}
		case 200:
			if r["end_reason"] != "normal" || r["answer"] == "" {
				t.Errorf("call %s ended normally but its record ends %q (answer %q)", id, r["end_reason"], r["answer"])
			}
		}
		if r["end_reason"] == "ended by restart" {
			restarted++
		}
	}
	want := map[string]bool{}
	for _, id := range sent {
		want[id] = true
	}
	for id, r := range recs {
		if !want[id] {
			t.Errorf("record %s for a call nobody made (%s)", r["record_id"], id)
		}
	}
	t.Logf("%d calls, %d records in %d files, %d ended by restart", len(sent), len(recs), len(delivered)/2, restarted)
	if restarted == 0 {
		t.Error("no call was in progress at any kill: the test did not test the restart")
	}
}

// TestCDRPushConfiguredAtRunTime: the billing centre's FTP server given on
// the command line while the switch runs (no restart): the files closed
// before it, and after it, reach it; the password is not in the log.
func TestCDRPushConfiguredAtRunTime(t *testing.T) {
	t.Parallel()
	ftpd := startVsftpd(t, false)
	pc := freePort(t)
	srv := billingBed(t, fmt.Sprintf("[billing]\nnode = \"pushcli\"\nrotate_records = 5\n\n[cli]\nssh_listen = \"127.0.0.1:%d\"\npassword_cost = 10\n", pc))
	addCLIUser(t, srv, "ops", "admin", "ops-secret-1234")
	cdrDir := filepath.Join(srv.DataDir, "cdr")
	trunkCalls(t, srv, "before", 10, 20)
	if got := softswitchSSH(t, pc, "ops", "ops-secret-1234", "show cdr queue"); !strings.Contains(got, "not pushed") {
		t.Fatalf("show cdr queue before a push target:\n%s", got)
	}
	out, err := expectSSH(t, pc, "ops", "ops-secret-1234", fmt.Sprintf(`
expect "pushcli# "
send "configure\r"
expect "pushcli(config)# "
send "billing_push servers %s\r"
expect "pushcli(config)# "
send "billing_push user anonymous\r"
expect "pushcli(config)# "
send "billing_push password cdr-secret@example.net\r"
expect "pushcli(config)# "
send "billing_push dir incoming\r"
expect "pushcli(config)# "
send "billing_push retry_min 1s\r"
expect "pushcli(config)# "
send "commit\r"
expect "committed"
send "end\r"
expect "pushcli# "
send "exit\r"
expect eof
`, ftpd.Addr))
	if err != nil {
		t.Fatalf("configuring the push: %v\n%s", err, out)
	}
	waitDelivered(t, cdrDir, ftpd.Incoming, 4, 20*time.Second) // 2 files of 5 and their sidecars
	trunkCalls(t, srv, "after", 5, 20)
	waitDelivered(t, cdrDir, ftpd.Incoming, 6, 20*time.Second)
	if got := softswitchSSH(t, pc, "ops", "ops-secret-1234", "show cdr queue"); !regexpMatch(`files not yet delivered\s+0`, got) {
		t.Fatalf("show cdr queue after delivery:\n%s", got)
	}
	if data, _ := os.ReadFile(srv.LogPath); strings.Contains(string(data), "cdr-secret@example.net") {
		t.Error("the FTP password is in the log")
	}
}
