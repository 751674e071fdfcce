package systest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/softswitch/softswitch/appliance/netlab"
)

// sippOpts describes one sipp run. Every run handles exactly one call (-m 1)
// and is bounded by -timeout Timeout -timeout_error and, as a last resort, by
// a Go-side kill a little after Timeout.
type sippOpts struct {
	Name     string            // label used in file names and messages
	Scenario string            // file name under scenarios/
	Remote   string            // host:port to call (client mode); empty for a UAS
	LocalIP  string            // -i; default 127.0.0.1 (not the trusted peer)
	Port     int               // -p; 0 picks a free port
	Service  string            // -s: user part of the Request-URI
	AuthUser string            // -au
	AuthPass string            // -ap
	Keys     map[string]string // -key name value
	Timeout  time.Duration     // -timeout; default 20s
	Pause    time.Duration     // -d: length of <pause/> without milliseconds
	Calls    int               // -m; 0 means 1, -1 no limit (a gateway serving many calls)
	Rate     int               // -r calls per second (client mode); 0: sipp's default
}

type sippProc struct {
	t    *testing.T
	opts sippOpts
	Port int
	Addr string // LocalIP:Port
	res  *sippResult
	cmd  *exec.Cmd
	done chan struct{}
}

// sippResult is what a finished sipp run left: its exit code and its files.
type sippResult struct {
	Name       string
	ExitCode   int
	Addr       string // the local address sipp used
	Dir        string
	Args       []string
	Stdout     string // path
	Stderr     string // path
	MessageLog string // path: -trace_msg
	ErrorLog   string // path: -trace_err
	ActionLog  string // path: -trace_logs
	ScreenLog  string // path: -trace_screen

	t      *testing.T
	msgs   []sipMsg
	parsed bool
}

// startSipp starts sipp in the background. A UAS (no Remote) is waited for
// until its UDP port is bound. The process is killed at the end of the test
// if still running; its logs are printed when the test failed.
func startSipp(t *testing.T, o sippOpts) *sippProc {
	t.Helper()
	if o.LocalIP == "" {
		o.LocalIP = untrustedIP
	}
	if o.Port == 0 {
		o.Port = freePort(t)
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	if o.Name == "" {
		o.Name = strings.TrimSuffix(o.Scenario, ".xml")
	}
	scen := filepath.Join(scenarioDir, o.Scenario)
	if _, err := os.Stat(scen); err != nil {
		t.Fatalf("sipp scenario: %v", err)
	}
	dir, err := os.MkdirTemp(t.TempDir(), "sipp-"+o.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	r := &sippResult{
		t:          t,
		Name:       o.Name,
		ExitCode:   -1,
		Addr:       net.JoinHostPort(o.LocalIP, strconv.Itoa(o.Port)),
		Dir:        dir,
		Stdout:     filepath.Join(dir, "stdout.log"),
		Stderr:     filepath.Join(dir, "stderr.log"),
		MessageLog: filepath.Join(dir, "messages.log"),
		ErrorLog:   filepath.Join(dir, "errors.log"),
		ActionLog:  filepath.Join(dir, "actions.log"),
		ScreenLog:  filepath.Join(dir, "screen.log"),
	}
	var args []string
	if o.Remote != "" {
		args = append(args, o.Remote)
	}
	args = append(args,
		"-sf", scen,
		"-i", o.LocalIP, "-p", strconv.Itoa(o.Port), "-bind_local",
		"-ci", "127.0.0.1", "-mi", o.LocalIP,
		"-nostdin",
		"-timeout", fmt.Sprintf("%ds", int(o.Timeout/time.Second)), "-timeout_error",
		"-trace_msg", "-message_file", r.MessageLog,
		"-trace_err", "-error_file", r.ErrorLog,
		"-trace_logs", "-log_file", r.ActionLog,
		"-trace_screen", "-screen_file", r.ScreenLog,
	)
	switch {
	case o.Calls == 0:
		args = append(args, "-m", "1")
	case o.Calls > 0:
		args = append(args, "-m", strconv.Itoa(o.Calls))
	}
	if o.Rate > 0 {
		args = append(args, "-r", strconv.Itoa(o.Rate), "-l", strconv.Itoa(max(o.Rate*4, 10)))
	}
	if o.Service != "" {
		args = append(args, "-s", o.Service)
	}
	if o.AuthUser != "" {
		args = append(args, "-au", o.AuthUser)
	}
	if o.AuthPass != "" {
		args = append(args, "-ap", o.AuthPass)
	}
	if o.Pause > 0 {
		args = append(args, "-d", strconv.Itoa(int(o.Pause/time.Millisecond)))
	}
	keys := make([]string, 0, len(o.Keys))
	for k := range o.Keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-key", k, o.Keys[k])
	}
	r.Args = args

	stdout, err := os.Create(r.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(r.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sippBin, args...)
	cmd.Dir = dir
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		stdout.Close()
		stderr.Close()
		t.Fatalf("starting sipp %s: %v", o.Name, err)
	}
	p := &sippProc{t: t, opts: o, Port: o.Port, Addr: r.Addr, res: r, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		stdout.Close()
		stderr.Close()
		r.ExitCode = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			r.dump(t)
		}
	})

	if o.Remote == "" {
		deadline := time.Now().Add(5 * time.Second)
		for !udpPortBound(o.Port) {
			select {
			case <-p.done:
				t.Fatalf("sipp %s exited (code %d) before binding UDP port %d", o.Name, r.ExitCode, o.Port)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("sipp %s has not bound UDP port %d after 5s", o.Name, o.Port)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

// kill stops the process by PID if it still runs.
func (p *sippProc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// wait waits for sipp to exit by itself (it is bounded by -timeout; the
// Go-side deadline only catches a sipp that ignores it) and returns its result.
func (p *sippProc) wait() *sippResult {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(p.opts.Timeout + 15*time.Second):
		p.t.Errorf("sipp %s still running %v after its -timeout: killing it", p.opts.Name, 15*time.Second)
		p.kill()
	}
	return p.res
}

// runSipp runs sipp to the end.
func runSipp(t *testing.T, o sippOpts) *sippResult {
	t.Helper()
	return startSipp(t, o).wait()
}

// requireOK fails the test now unless sipp exited 0 (every call succeeded,
// every check_it regexp matched).
func (r *sippResult) requireOK(t *testing.T) {
	t.Helper()
	if r.ExitCode != 0 {
		t.Fatalf("sipp %s exited %d, want 0\n%s", r.Name, r.ExitCode, r.summary())
	}
}

// expectOK is requireOK that lets the test go on.
func (r *sippResult) expectOK(t *testing.T) bool {
	t.Helper()
	if r.ExitCode != 0 {
		t.Errorf("sipp %s exited %d, want 0\n%s", r.Name, r.ExitCode, r.summary())
		return false
	}
	return true
}

// summary is the stderr and error log of the run, short enough for an error.
func (r *sippResult) summary() string {
	var b strings.Builder
	for _, f := range []struct{ label, path string }{{"stderr", r.Stderr}, {"errors", r.ErrorLog}} {
		data, err := os.ReadFile(f.path)
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			continue
		}
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- sipp %s %s:\n%s\n", r.Name, f.label, data)
	}
	// Read here without failing the test: this text is part of a failure.
	msgs, err := readSippMessages(r.MessageLog)
	if err != nil {
		fmt.Fprintf(&b, "--- sipp %s: %v\n", r.Name, err)
	}
	if recv := filterMsgs(msgs, func(m sipMsg) bool { return !m.Sent }); len(recv) > 0 {
		fmt.Fprintf(&b, "--- sipp %s received (start lines): %s\n", r.Name, strings.Join(startLines(recv), " | "))
	}
	return b.String()
}

// dump logs every file of the run.
func (r *sippResult) dump(t *testing.T) {
	kept := netlab.KeepFiles(t.Name()+"-sipp-"+r.Name, []string{r.Stderr, r.ErrorLog, r.ActionLog, r.MessageLog})
	t.Logf("=== sipp %s (exit %d, its logs whole in %s): sipp %s", r.Name, r.ExitCode, kept, strings.Join(r.Args, " "))
	for _, f := range []struct{ label, path string }{
		{"stderr", r.Stderr}, {"errors", r.ErrorLog}, {"actions", r.ActionLog}, {"messages", r.MessageLog},
	} {
		data, err := os.ReadFile(f.path)
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			continue
		}
		const max = 6 << 10
		if len(data) > max {
			data = append([]byte("...(cut)...\n"), data[len(data)-max:]...)
		}
		t.Logf("--- sipp %s %s (%s):\n%s", r.Name, f.label, f.path, data)
	}
}

// Messages is every SIP message of the run's -trace_msg log, in order.
// A log that does not parse fails the test: every check built on the
// messages (including "nothing like X was received") needs all of them.
func (r *sippResult) Messages() []sipMsg {
	if !r.parsed {
		msgs, err := readSippMessages(r.MessageLog)
		if err != nil {
			r.t.Fatalf("sipp %s: %v", r.Name, err)
		}
		r.msgs, r.parsed = msgs, true
	}
	return r.msgs
}

// Received is the messages sipp received.
func (r *sippResult) Received() []sipMsg {
	return filterMsgs(r.Messages(), func(m sipMsg) bool { return !m.Sent })
}

// Sent is the messages sipp sent.
func (r *sippResult) Sent() []sipMsg {
	return filterMsgs(r.Messages(), func(m sipMsg) bool { return m.Sent })
}

// ReceivedRequests is the received requests of method.
func (r *sippResult) ReceivedRequests(method string) []sipMsg {
	return filterMsgs(r.Received(), func(m sipMsg) bool { return m.Method == method })
}

// SentRequests is the sent requests of method.
func (r *sippResult) SentRequests(method string) []sipMsg {
	return filterMsgs(r.Sent(), func(m sipMsg) bool { return m.Method == method })
}

// ReceivedResponses is the received responses to requests of method.
func (r *sippResult) ReceivedResponses(method string) []sipMsg {
	return filterMsgs(r.Received(), func(m sipMsg) bool {
		_, cm := m.CSeq()
		return m.Status > 0 && cm == method
	})
}

// ReceivedFinals is the received final responses to requests of method, with
// retransmissions (same status and CSeq) dropped.
func (r *sippResult) ReceivedFinals(method string) []sipMsg {
	var out []sipMsg
	seen := map[string]bool{}
	for _, m := range r.ReceivedResponses(method) {
		if m.Status < 200 {
			continue
		}
		n, _ := m.CSeq()
		k := fmt.Sprintf("%d/%d", m.Status, n)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, m)
	}
	return out
}

// mustReceivedRequest returns the first received request of method or fails
// the test now.
func (r *sippResult) mustReceivedRequest(t *testing.T, method string) sipMsg {
	t.Helper()
	reqs := r.ReceivedRequests(method)
	if len(reqs) == 0 {
		t.Fatalf("sipp %s received no %s; it received: %s", r.Name, method, strings.Join(startLines(r.Received()), " | "))
	}
	return reqs[0]
}

// lastSentRequest returns the last sent request of method or fails the test now.
func (r *sippResult) lastSentRequest(t *testing.T, method string) sipMsg {
	t.Helper()
	reqs := r.SentRequests(method)
	if len(reqs) == 0 {
		t.Fatalf("sipp %s sent no %s", r.Name, method)
	}
	return reqs[len(reqs)-1]
}

// lastInitialInvite returns the last INVITE sent outside a dialog (no To
// tag): the one that set up the call, after any digest exchange.
func (r *sippResult) lastInitialInvite(t *testing.T) sipMsg {
	t.Helper()
	reqs := filterMsgs(r.SentRequests("INVITE"), func(m sipMsg) bool { return !hasHeaderParam(m.Header("To"), "tag") })
	if len(reqs) == 0 {
		t.Fatalf("sipp %s sent no initial INVITE", r.Name)
	}
	return reqs[len(reqs)-1]
}

// finalStatuses is the status codes of ReceivedFinals(method).
func (r *sippResult) finalStatuses(method string) []int {
	var out []int
	for _, m := range r.ReceivedFinals(method) {
		out = append(out, m.Status)
	}
	return out
}

func filterMsgs(msgs []sipMsg, keep func(sipMsg) bool) []sipMsg {
	var out []sipMsg
	for _, m := range msgs {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

func startLines(msgs []sipMsg) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.First
		if m.Status > 0 {
			n, meth := m.CSeq()
			out[i] += fmt.Sprintf(" (CSeq %d %s)", n, meth)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// common sipp steps

// register runs scenarios/register.xml: REGISTER, 401, REGISTER with MD5
// digest, 200. contact is the Contact header value (e.g. "<sip:1002@127.0.0.1:5099>"
// or "*"), expires the Expires header value.
func register(t *testing.T, srv *server, user, password, contact string, expires int) *sippResult {
	t.Helper()
	return runSipp(t, sippOpts{
		Name:     fmt.Sprintf("register-%s", user),
		Scenario: "register.xml",
		Remote:   srv.Addr,
		Service:  user,
		AuthUser: user,
		AuthPass: password,
		Keys:     map[string]string{"contact": contact, "expires": strconv.Itoa(expires)},
		Timeout:  15 * time.Second,
	})
}

// registerContact registers user at sip:user@127.0.0.1:port for an hour and
// fails the test now unless that worked.
func registerContact(t *testing.T, srv *server, user, password string, port int) *sippResult {
	t.Helper()
	r := register(t, srv, user, password, contactFor(user, port), 3600)
	r.requireOK(t)
	return r
}

func contactFor(user string, port int) string {
	return fmt.Sprintf("<sip:%s@127.0.0.1:%d>", user, port)
}

// startUAS starts a sipp UAS on a free port of 127.0.0.1 with scenario,
// e.g. the phone of subscriber user once registered there.
func startUAS(t *testing.T, name, scenario string, o sippOpts) *sippProc {
	t.Helper()
	o.Name, o.Scenario, o.Remote = name, scenario, ""
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Keys == nil {
		o.Keys = map[string]string{}
	}
	if _, ok := o.Keys["user"]; !ok {
		o.Keys["user"] = "uas"
	}
	return startSipp(t, o)
}

// callOpts is a sipp UAC run from subscriber 1001 (untrusted 127.0.0.1) to
// number through srv.
func callOpts(srv *server, name, scenario, number string) sippOpts {
	return sippOpts{
		Name:     name,
		Scenario: scenario,
		Remote:   srv.Addr,
		Service:  number,
		AuthUser: "1001",
		AuthPass: "secret1001",
		Keys:     map[string]string{"caller": "1001", "max_forwards": "70"},
		Timeout:  20 * time.Second,
	}
}
