package systest

// Authentication across restarts, and against guessing (issue 10).

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// registrar is a phone that registers by hand, with the digest computed
// here (RFC 2617, MD5, qop=auth), so that a test can choose its nonce and
// nonce count.
type registrar struct {
	t     *testing.T
	srv   *server
	p     *rawPhone
	user  string
	pass  string
	cseq  int
	nonce string
	opq   string
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// register sends one REGISTER (with credentials for nc when nc > 0) and
// returns the final response.
func (r *registrar) register(nc int) sipMsg {
	r.t.Helper()
	r.cseq++
	me := fmt.Sprintf("127.0.0.1:%d", r.p.Port)
	uri := "sip:" + r.srv.Addr
	auth := ""
	if nc > 0 {
		ncs := fmt.Sprintf("%08x", nc)
		ha1 := md5hex(r.user + ":softswitch:" + r.pass)
		resp := md5hex(ha1 + ":" + r.nonce + ":" + ncs + ":0a4f113b:auth:" + md5hex("REGISTER:"+uri))
		auth = fmt.Sprintf("Authorization: Digest username=%q, realm=\"softswitch\", nonce=%q, uri=%q, response=%q, algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=%s, opaque=%q\r\n",
			r.user, r.nonce, uri, resp, ncs, r.opq)
	}
	r.p.send(r.t, r.srv.Addr, fmt.Sprintf("REGISTER %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-reg-%d\r\n"+
		"From: <sip:%s@127.0.0.1>;tag=reg1\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: nonce-%s@test\r\nCSeq: %d REGISTER\r\n"+
		"Contact: <sip:%s@%s>\r\nExpires: 600\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n",
		uri, me, r.cseq, r.user, r.user, r.user, r.cseq, r.user, me, auth))
	res, ok := r.p.recvResponse("REGISTER", r.cseq)
	if !ok {
		r.t.Fatalf("REGISTER %d (nc %d): no final response", r.cseq, nc)
	}
	return res
}

// challenge asks for a fresh nonce.
func (r *registrar) challenge() {
	r.t.Helper()
	res := r.register(0)
	if res.Status != 401 {
		r.t.Fatalf("REGISTER without credentials: %d", res.Status)
	}
	_, p := authParams(res.Header("WWW-Authenticate"))
	r.nonce, r.opq = p["nonce"], p["opaque"]
}

func stale(m sipMsg) bool {
	_, p := authParams(m.Header("WWW-Authenticate"))
	return p["stale"] == "true"
}

// The nonce key lives in the store. After a clean restart the nonce in
// use stays valid, replay protection included; after a crash (kill -9)
// it gets a stale challenge, never a failure: thirty of them in a row
// (more than the failure limit) and the phone still logs in.
func TestNoncesAcrossRestartAndCrash(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	r := &registrar{t: t, srv: srv, p: newRawPhone(t), user: "1001", pass: "secret1001"}
	r.challenge()
	if res := r.register(1); res.Status != 200 {
		t.Fatalf("first login: %d", res.Status)
	}
	srv.restart()
	if res := r.register(2); res.Status != 200 {
		t.Fatalf("the nonce in use after a clean restart: %d %s (stale=%v)", res.Status, res.Reason, stale(res))
	}
	if res := r.register(2); res.Status != 401 || stale(res) {
		t.Fatalf("a replayed nonce count after the restart: %d stale=%v, want 401 (not stale)", res.Status, stale(res))
	}
	srv.kill()
	srv.start()
	for nc := 3; nc < 33; nc++ {
		res := r.register(nc)
		if res.Status != 401 || !stale(res) {
			t.Fatalf("after a crash, nc %d: %d stale=%v, want 401 stale=true", nc, res.Status, stale(res))
		}
	}
	r.challenge()
	if res := r.register(1); res.Status != 200 {
		t.Fatalf("a fresh login after the crash: %d", res.Status)
	}
}

// svtool runs one of SIPVicious's tools (Debian's sipvicious) bounded in
// time, and returns the result lines of its table.
func svtool(t *testing.T, name string, args ...string) (found []string, out string) {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not installed (.ci/deps.sh installs sipvicious): %v", name, err)
	}
	home := t.TempDir()
	// SIGINT makes the tools print what they found so far.
	cmd := exec.Command("timeout", append([]string{"-s", "INT", "120", bin}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.Dir = home
	b, err := cmd.CombinedOutput()
	out = string(b)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	for _, m := range svRow.FindAllStringSubmatch(out, -1) {
		if key := strings.TrimSpace(m[1]); key != "" && !strings.EqualFold(key, "Extension") && !strings.EqualFold(key, "SIP Device") {
			found = append(found, key+" "+strings.TrimSpace(m[2]))
		}
	}
	if strings.Contains(out, "Traceback") {
		t.Fatalf("%s crashed:\n%s", name, out)
	}
	return found, out
}

var svRow = regexp.MustCompile(`(?m)^\| (.*?)\s*\| (.*?)\s*\|$`)

// SIPVicious against the running switch, as an attacker would run it:
// svwar finds no extension (an unknown user and a known one get the same
// answers), svcrack finds no password in a 100-word list with the right
// one near the end (the guessing source is banned first). A user that
// logged in from the same address keeps working through the ban; the
// operator lifts the ban with `softswitch unban`. No password reaches the
// log.
func TestSIPViciousFindsNothing(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	registerContact(t, srv, "1001", "secret1001", freePort(t)) // a real login from 127.0.0.1
	for _, method := range []string{"REGISTER", "INVITE", "OPTIONS"} {
		found, out := svtool(t, "svwar", "-x", "127.0.0.1", "-P", fmt.Sprint(freePort(t)), "-m", method, "--force",
			"-e", "999-1010", "--maximumtime", "10", "udp://"+srv.Addr)
		if len(found) > 0 {
			t.Errorf("svwar -m %s enumerated %v:\n%s", method, found, out)
		}
	}
	words := filepath.Join(t.TempDir(), "words.txt")
	var list []string
	for i := range 100 {
		list = append(list, fmt.Sprintf("guess%03d", i))
	}
	list[94] = "secret1002"
	if err := os.WriteFile(words, []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	found, out := svtool(t, "svcrack", "-x", "127.0.0.1", "-P", fmt.Sprint(freePort(t)), "-u", "1002", "-d", words,
		"-t", "0.02", "--maximumtime", "30", "udp://"+srv.Addr)
	for _, f := range found {
		if strings.Contains(f, "secret1002") {
			t.Fatalf("svcrack found the password: %v\n%s", found, out)
		}
	}
	waitLog(t, srv, 5*time.Second, "authentication ban", "user=1002")

	// The logged-in user keeps working from the banned address.
	registerContact(t, srv, "1001", "secret1001", freePort(t))
	// The guessed user does not, even with the right password...
	if r := register(t, srv, "1002", "secret1002", contactFor("1002", freePort(t)), 600); r.ExitCode == 0 {
		t.Fatal("the guessed user logged in from the guessing address during its ban")
	}
	bans := softswitchCmd(t, srv, "bans")
	if !strings.Contains(bans, "1002") || !strings.Contains(bans, "127.0.0.1") {
		t.Fatalf("softswitch bans:\n%s", bans)
	}
	// ...until the operator lifts the ban.
	if out := softswitchCmd(t, srv, "unban", "127.0.0.1"); !strings.Contains(out, "lifted") {
		t.Fatalf("softswitch unban 127.0.0.1: %s", out)
	}
	registerContact(t, srv, "1002", "secret1002", freePort(t))
	if log, _ := os.ReadFile(srv.LogPath); strings.Contains(string(log), "secret1002") || strings.Contains(string(log), "secret1001") {
		t.Error("a password is in the log")
	}
}

// softswitchCmd runs the binary's maintenance command against srv.
func softswitchCmd(t *testing.T, srv *server, args ...string) string {
	t.Helper()
	full := append([]string{args[0], "--data-dir", srv.DataDir}, args[1:]...)
	out, err := exec.Command(softswitchBin, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("softswitch %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	return string(out)
}
