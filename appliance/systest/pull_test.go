package systest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	hash, err := bcrypt.GenerateFromPassword([]byte("pull-s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sp := freePort(t)
	srv := billingBed(t, fmt.Sprintf("[billing]\nnode = \"pull1\"\nrotate_records = 5\n"+
		"[billing.pull]\nsftp_listen = \"127.0.0.1:%d\"\nuser = \"billing\"\npassword_hash = %q\n", sp, hash))
	trunkCalls(t, srv, "calls", 5, 20)
	cdrDir := filepath.Join(srv.DataDir, "cdr")
	var name string
	for i := 0; i < 50 && name == ""; i++ {
		for _, n := range closedFiles(cdrDir) {
			if strings.HasSuffix(n, ".csv") {
				name = n
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if name == "" {
		t.Fatal("no CDR file closed")
	}
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
}
