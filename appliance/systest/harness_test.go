package systest

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps the errors it is given.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *recorder) failedWith(part string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		if strings.Contains(e, part) {
			return true
		}
	}
	return false
}

// The harness itself: a daemon that died on its own, or whose log shows
// a panic (recovered or not) or a data race, fails the test that ran it.
// (Before, stop() took a dead daemon for a stopped one and read no log.)
func TestHarnessSeesABrokenDaemon(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	rec := &recorder{TB: t}
	srv.t = rec
	pid := srv.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	srv.stop()
	if !rec.failedWith("had exited before the test stopped it") {
		t.Errorf("a daemon killed under the test went unnoticed: %q", rec.errs)
	}

	for _, line := range []string{
		"panic: runtime error: invalid memory address or nil pointer dereference",
		`time=2026-12-01T00:00:00Z level=ERROR msg="recovered panic" where="call fork" panic="boom"`,
		"WARNING: DATA RACE",
		"fatal error: concurrent map writes",
	} {
		rec := &recorder{TB: t}
		srv.t = rec
		srv.start()
		f, err := os.OpenFile(srv.LogPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, line)
		f.Close()
		srv.stop()
		if !rec.failedWith("shows") {
			t.Errorf("a log line %q went unnoticed: %q", line, rec.errs)
		}
	}
	srv.t = t
}

// A sipp message log that does not parse whole is an error, never an
// empty list (a check that something was not received would pass).
func TestSippTraceMustParse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sep := "----------------------------------------------- 2026-12-01 10:00:00.000000\n"
	good := sep + "UDP message received [36] bytes :\n\nSIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\n\r\n\n"
	for name, text := range map[string]string{
		"truncated": good + sep + "UDP message sent (500 bytes):\n\nINVITE sip:x SIP/2.0\r\n",
		"garbled":   good + sep + "UDP message received [10] bytes :\n\n\x00\x01garbage\n",
		"unknown":   good + sep + "SCTP-ish message of a kind we do not know\n",
	} {
		p := dir + "/" + name
		os.WriteFile(p, []byte(text), 0o644)
		if msgs, err := readSippMessages(p); err == nil {
			t.Errorf("%s: parsed %d messages without an error", name, len(msgs))
		}
	}
	p := dir + "/good"
	os.WriteFile(p, []byte(good), 0o644)
	if msgs, err := readSippMessages(p); err != nil || len(msgs) != 1 || msgs[0].Status != 200 {
		t.Errorf("a good log: %v %v", msgs, err)
	}
	if _, err := readSippMessages(dir + "/missing"); err == nil {
		t.Error("a missing log is not an empty one")
	}
}
