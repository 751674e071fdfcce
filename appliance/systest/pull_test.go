package systest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// curlSFTP runs curl against the pull server; it returns curl's output
// and exit error.
func curlSFTP(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("curl", append([]string{"-sS", "-k", "--max-time", "20"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCDRPullOverSFTP: the billing centre logs in with its own account and
// fetches closed files with curl; a wrong password, a write, a delete, a
// path outside the CDR directory and the spool itself are refused.
func TestCDRPullOverSFTP(t *testing.T) {
	t.Parallel()
	sp := freePort(t)
	srv, cdrDir, name := pullBed(t, "pull1", fmt.Sprintf("sftp_listen = \"127.0.0.1:%d\"\nuser = \"billing\"\npassword_hash = %q\n",
		sp, pullHash(t)))
	base := fmt.Sprintf("sftp://127.0.0.1:%d/", sp)
	user := "billing:pull-s3cret"

	out, err := curlSFTP(t, "--user", user, "-l", base)
	if err != nil || !strings.Contains(out, name) || strings.Contains(out, "spool.db") {
		t.Fatalf("listing: %v\n%s", err, out)
	}
	got := filepath.Join(t.TempDir(), "got.csv")
	if out, err := curlSFTP(t, "--user", user, "-o", got, base+name); err != nil {
		t.Fatalf("fetch: %v\n%s", err, out)
	}
	a, _ := os.ReadFile(filepath.Join(cdrDir, name))
	b, _ := os.ReadFile(got)
	if len(a) == 0 || string(a) != string(b) {
		t.Fatalf("fetched %d bytes, the file has %d", len(b), len(a))
	}
	waitLog(t, srv, 5*time.Second, "CDR pull: file fetched", "user=billing", name)

	refused := map[string][]string{
		"wrong password": {"--user", "billing:guess", "-l", base},
		"unknown user":   {"--user", "admin:pull-s3cret", "-l", base},
		"write":          {"--user", user, "-T", got, base + "new.csv"},
		"overwrite":      {"--user", user, "-T", got, base + name},
		"delete":         {"--user", user, "-Q", "rm /" + name, base},
		"rename":         {"--user", user, "-Q", "rename /" + name + " /x.csv", base},
		"outside":        {"--user", user, "-o", os.DevNull, base + "../softswitch.toml"},
		"absolute":       {"--user", user, "-o", os.DevNull, "sftp://127.0.0.1:" + fmt.Sprint(sp) + "/etc/passwd"},
		"the spool":      {"--user", user, "-o", os.DevNull, base + "spool.db"},
		"mkdir":          {"--user", user, "-Q", "mkdir /d", base},
	}
	for what, args := range refused {
		if out, err := curlSFTP(t, args...); err == nil {
			t.Errorf("%s: not refused\n%s", what, out)
		}
	}
	if a2, _ := os.ReadFile(filepath.Join(cdrDir, name)); string(a2) != string(a) {
		t.Error("the closed file changed")
	}
	if _, err := os.Stat(filepath.Join(cdrDir, "new.csv")); err == nil {
		t.Error("an upload landed in the CDR directory")
	}
	waitLog(t, srv, 5*time.Second, "CDR pull: login refused", "user=billing")

	// The fingerprint in the start log is the key clients see: pinned to
	// it, curl logs in; pinned to another, it refuses.
	log, _ := os.ReadFile(srv.LogPath)
	m := regexp.MustCompile(`CDR pull server \(SFTP\).* host_key=SHA256:(\S+)`).FindSubmatch(log)
	if m == nil {
		t.Fatal("no host key fingerprint in the start log")
	}
	if out, err := curlSFTP(t, "--hostpubsha256", string(m[1]), "--user", user, "-l", base); err != nil {
		t.Fatalf("pinned to the logged fingerprint: %v\n%s", err, out)
	}
	if out, err := curlSFTP(t, "--hostpubsha256", "AAAA"+string(m[1][4:]), "--user", user, "-l", base); err == nil {
		t.Fatalf("pinned to another fingerprint, curl logged in\n%s", out)
	}

	// A host key file that cannot be parsed stops the start with the
	// reason; it is not replaced.
	srv.stop()
	keyFile := filepath.Join(srv.DataDir, "sftp_host_key")
	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start, err := exec.Command(softswitchBin, "--config", srv.Config, "--data-dir", srv.DataDir,
		"--sip-listen", srv.Addr).CombinedOutput()
	if err == nil || !strings.Contains(string(start), "billing.pull.host_key_file") || !strings.Contains(string(start), keyFile) {
		t.Fatalf("start with a broken host key: %v\n%s", err, start)
	}
	if k, _ := os.ReadFile(keyFile); string(k) != "not a key\n" {
		t.Fatal("the broken host key file was replaced")
	}
}

// pullBed is a switch with a pull server (pullTOML's [billing.pull] body)
// and closed CDR files; it returns the server, the CDR directory and the
// name of a closed CSV file.
func pullBed(t *testing.T, node, pullTOML string) (*server, string, string) {
	t.Helper()
	srv := billingBed(t, fmt.Sprintf("[billing]\nnode = %q\nrotate_records = 5\n[billing.pull]\n%s", node, pullTOML))
	trunkCalls(t, srv, "calls", 5, 20)
	cdrDir := filepath.Join(srv.DataDir, "cdr")
	for i := 0; i < 50; i++ {
		for _, n := range closedFiles(cdrDir) {
			if strings.HasSuffix(n, ".csv") {
				return srv, cdrDir, n
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no CDR file closed")
	return nil, "", ""
}

// pullHash is the bcrypt hash of the billing centre's test password.
func pullHash(t *testing.T) []byte {
	hash, err := bcrypt.GenerateFromPassword([]byte("pull-s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return hash
}

// lftp runs lftp's commands against the FTP pull server with explicit
// FTPS on control and data (the certificate is self-signed).
func lftp(t *testing.T, port int, user, commands string) (string, error) {
	t.Helper()
	script := "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; " +
		"set net:max-retries 1; set net:timeout 10; set cmd:fail-exit true; " +
		fmt.Sprintf("open -u %s -p %d 127.0.0.1; %s", user, port, commands)
	cmd := exec.Command("timeout", "30", "lftp", "-c", script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCDRPullOverFTP: the billing centre fetches closed files over plain
// FTP and explicit FTPS with curl and with lftp; logins with a wrong
// password or an unknown user, writes, deletes, renames, new directories,
// paths outside the CDR directory and the spool are refused; every fetch
// is recorded. With ftp_tls = "required" (the default) a login without
// TLS is refused.
func TestCDRPullOverFTP(t *testing.T) {
	t.Parallel()
	hash := pullHash(t)
	fp, pasv := freePort(t), freePort(t)
	srv, cdrDir, name := pullBed(t, "pullftp", fmt.Sprintf("ftp_listen = \"127.0.0.1:%d\"\nftp_tls = \"optional\"\n"+
		"passive_ports = \"%d-%d\"\nuser = \"billing\"\npassword_hash = %q\n", fp, pasv, pasv+19, hash))
	base := fmt.Sprintf("ftp://127.0.0.1:%d/", fp)
	user := "billing:pull-s3cret"
	want, _ := os.ReadFile(filepath.Join(cdrDir, name))
	sum, _ := os.ReadFile(filepath.Join(cdrDir, name+".sha256"))
	if len(want) == 0 || len(sum) == 0 {
		t.Fatalf("closed file %s or its sidecar is empty", name)
	}
	fetch := func(how string, args ...string) {
		t.Helper()
		got := filepath.Join(t.TempDir(), "got")
		if out, err := curlSFTP(t, append(args, "--user", user, "-o", got, base+name)...); err != nil {
			t.Fatalf("%s fetch: %v\n%s", how, err, out)
		}
		if b, _ := os.ReadFile(got); string(b) != string(want) {
			t.Fatalf("%s: fetched %d bytes, the file has %d", how, len(b), len(want))
		}
	}

	out, err := curlSFTP(t, "--user", user, "-l", base)
	if err != nil || !strings.Contains(out, name) || !strings.Contains(out, name+".sha256") ||
		strings.Contains(out, "spool.db") || strings.Contains(out, ".part") {
		t.Fatalf("listing: %v\n%s", err, out)
	}
	fetch("plain FTP")
	waitLog(t, srv, 5*time.Second, "CDR pull: file fetched", "user=billing", name, "protocol=ftp")
	fetch("FTPS", "--ssl-reqd")
	waitLog(t, srv, 5*time.Second, "CDR pull: logged in", "protocol=ftp", "tls=true")

	// lftp over FTPS: list, then fetch the file and its sidecar, which
	// must agree.
	dir := t.TempDir()
	out, err = lftp(t, fp, "billing,pull-s3cret", fmt.Sprintf("cls -1; lcd %s; get %s; get %s.sha256", dir, name, name))
	if err != nil || !strings.Contains(out, name) {
		t.Fatalf("lftp: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(filepath.Join(dir, name))
	gotSum, _ := os.ReadFile(filepath.Join(dir, name+".sha256"))
	if string(got) != string(want) || string(gotSum) != string(sum) {
		t.Fatalf("lftp fetched %d bytes and sidecar %q; the file has %d, sidecar %q", len(got), gotSum, len(want), sum)
	}
	if h := sha256.Sum256(got); !strings.Contains(string(sum), hex.EncodeToString(h[:])) {
		t.Fatalf("sidecar %q does not match the fetched file", sum)
	}

	refused := map[string][]string{
		"wrong password": {"--user", "billing:guess", "-l", base},
		"unknown user":   {"--user", "admin:pull-s3cret", "-l", base},
		"write":          {"--user", user, "-T", filepath.Join(dir, name), base + "new.csv"},
		"overwrite":      {"--user", user, "-T", filepath.Join(dir, name), base + name},
		"append":         {"--user", user, "--append", "-T", filepath.Join(dir, name), base + name},
		"delete":         {"--user", user, "-Q", "DELE " + name, base},
		"rename":         {"--user", user, "-Q", "RNFR " + name, "-Q", "RNTO x.csv", base},
		"mkdir":          {"--user", user, "-Q", "MKD d", base},
		"outside":        {"--user", user, "--path-as-is", "-o", os.DevNull, base + "../softswitch.toml"},
		"absolute":       {"--user", user, "-o", os.DevNull, base + "/etc/passwd"},
		"the spool":      {"--user", user, "-o", os.DevNull, base + "spool.db"},
		"a subdirectory": {"--user", user, "-l", base + "hot/"},
	}
	for what, args := range refused {
		if out, err := curlSFTP(t, args...); err == nil {
			t.Errorf("%s: not refused\n%s", what, out)
		}
	}
	if out, err := lftp(t, fp, "billing,pull-s3cret", "rm "+name); err == nil {
		t.Errorf("lftp rm: not refused\n%s", out)
	}
	if out, err := lftp(t, fp, "billing,pull-s3cret", fmt.Sprintf("lcd %s; put %s -o up.csv", dir, name)); err == nil {
		t.Errorf("lftp put: not refused\n%s", out)
	}
	if a2, _ := os.ReadFile(filepath.Join(cdrDir, name)); string(a2) != string(want) {
		t.Error("the closed file changed")
	}
	for _, n := range []string{"new.csv", "x.csv", "d", "up.csv"} {
		if _, err := os.Stat(filepath.Join(cdrDir, n)); err == nil {
			t.Errorf("%s appeared in the CDR directory", n)
		}
	}
	waitLog(t, srv, 5*time.Second, "CDR pull: login refused", "user=admin", "protocol=ftp")
	if out := softswitchCmd(t, srv, "cdr-fetched"); !strings.Contains(out, name) || !strings.Contains(out, "billing") {
		t.Errorf("cdr-fetched does not list %s:\n%s", name, out)
	}

	// The default: explicit FTPS only.
	fp2, pasv2 := freePort(t), freePort(t)
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[billing.pull]\nftp_listen = \"127.0.0.1:%d\"\npassive_ports = \"%d-%d\"\n"+
		"user = \"billing\"\npassword_hash = %q\n", fp2, pasv2, pasv2+9, hash)
	strict := startServer(t, cfg)
	base2 := fmt.Sprintf("ftp://127.0.0.1:%d/", fp2)
	if out, err := curlSFTP(t, "--user", user, "-l", base2); err == nil {
		t.Errorf("a plain FTP login was not refused with ftp_tls = required\n%s", out)
	}
	if out, err := curlSFTP(t, "--ssl-reqd", "--user", user, "-l", base2); err != nil {
		t.Errorf("FTPS listing with ftp_tls = required: %v\n%s", err, out)
	}
	waitLog(t, strict, 5*time.Second, "CDR pull server (FTP)", "certificate_sha256=")
}
