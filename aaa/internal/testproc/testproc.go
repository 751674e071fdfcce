// Package testproc runs a daemon for the AAA tests (FreeRADIUS,
// freeDiameter): its output captured, ready once a given line appears,
// stopped when the test ends. Imported by test harnesses only.
package testproc

import (
	"bufio"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a running daemon.
type Proc struct {
	t     *testing.T
	what  string // for messages, e.g. "FreeRADIUS"
	ready string // the line that says it is ready
	bin   string
	args  []string
	grace time.Duration // how long Stop waits before SIGKILL
	cmd   *exec.Cmd
	done  chan struct{}
	mu    sync.Mutex
	log   strings.Builder
}

// Start runs bin with args and waits up to 15 s for a line containing
// ready; the test fails otherwise. Stop waits grace after SIGTERM.
func Start(t *testing.T, what, ready string, grace time.Duration, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, what: what, ready: ready, bin: bin, args: args, grace: grace}
	p.start()
	t.Cleanup(p.Stop)
	return p
}

func (p *Proc) start() {
	p.cmd = exec.Command(p.bin, p.args...)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting %s: %v", p.what, err)
	}
	ready := make(chan struct{})
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		var once sync.Once
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.Contains(sc.Text(), p.ready) {
				once.Do(func() { close(ready) })
			}
		}
		p.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-p.done:
		p.t.Fatalf("%s exited at start:\n%s", p.what, p.Log())
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s not ready within 15 s:\n%s", p.what, p.Log())
	}
}

// Log is what the daemon printed so far.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// WaitLog waits up to within for a line holding every part.
func (p *Proc) WaitLog(within time.Duration, parts ...string) bool {
	deadline := time.Now().Add(within)
	for {
		for _, line := range strings.Split(p.Log(), "\n") {
			all := true
			for _, x := range parts {
				all = all && strings.Contains(line, x)
			}
			if all {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM, then SIGKILL after the grace time; safe twice.
func (p *Proc) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(p.grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the daemon at once.
func (p *Proc) Kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Restart starts the stopped daemon again, with a fresh log.
func (p *Proc) Restart() {
	p.Stop()
	p.mu.Lock()
	p.log.Reset()
	p.mu.Unlock()
	p.start()
}
