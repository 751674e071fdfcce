// Package control is the switch's local maintenance socket: a Unix socket
// in the data directory, reachable only by the switch's own user and
// root (mode 0600), one command a connection, one line each way. It is
// how `softswitch bans` and `softswitch unban` reach the running switch;
// the Telnet/SSH command line builds on the same commands later.
package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/softswitch/softswitch/core/safe"
)

// SocketName is the socket's file name in the data directory.
const SocketName = "control.sock"

// Handler runs one command; its text (possibly several lines) is the
// answer. An error is answered as "error: ...".
type Handler func(args []string) (string, error)

// Server answers commands on the socket.
type Server struct {
	Path string
	Log  *slog.Logger

	mu   sync.Mutex
	cmds map[string]command
}

type command struct {
	help   string
	h      Handler
	secret bool // its arguments are not logged (a password)
}

// HandleSecret registers a command whose arguments hold a secret: the
// log names the command only.
func (s *Server) HandleSecret(name, help string, h Handler) {
	s.Handle(name, help, h)
	s.mu.Lock()
	c := s.cmds[name]
	c.secret = true
	s.cmds[name] = c
	s.mu.Unlock()
}

// Handle registers name (before Serve).
func (s *Server) Handle(name, help string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmds == nil {
		s.cmds = map[string]command{}
	}
	s.cmds[name] = command{help: help, h: h}
}

// Listen binds the socket (an old one left by a crash is removed first:
// the store's lock already proved no other switch uses this directory).
func (s *Server) Listen() (net.Listener, error) {
	os.Remove(s.Path)
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", s.Path, err)
	}
	if err := os.Chmod(s.Path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", s.Path, err)
	}
	return ln, nil
}

// Serve answers until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) {
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				os.Remove(s.Path)
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		safe.Go("control connection", func() { s.serveConn(c) }, func() { c.Close() })
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(&limitedReader{r: c, n: 4096})
	line, err := r.ReadString('\n')
	if err != nil && line == "" {
		return
	}
	fmt.Fprint(c, s.Run(strings.TrimSpace(line)))
}

// Run executes one command line and returns the answer, ending in a newline.
func (s *Server) Run(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 || f[0] == "help" {
		return s.help()
	}
	s.mu.Lock()
	cmd, ok := s.cmds[f[0]]
	s.mu.Unlock()
	if !ok {
		return fmt.Sprintf("error: unknown command %q (try help)\n", f[0])
	}
	if s.Log != nil {
		args := strings.Join(f[1:], " ")
		if cmd.secret {
			args = "(not logged: a secret)"
		}
		s.Log.Info("control command", "command", f[0], "args", args)
	}
	out, err := cmd.h(f[1:])
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out
}

func (s *Server) help() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.cmds))
	for n := range s.cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%-8s %s\n", n, s.cmds[n].help)
	}
	return b.String()
}

type limitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("command too long")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}

// Ask sends one command line to the socket at path and returns the answer.
func Ask(path, line string) (string, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("the running softswitch's control socket %s: %w (is it running with this data directory?)", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return "", err
	}
	var b strings.Builder
	if _, err := bufio.NewReader(c).WriteTo(&b); err != nil {
		return "", err
	}
	return b.String(), nil
}
