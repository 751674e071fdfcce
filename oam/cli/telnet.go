package cli

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softswitch/softswitch/core/safe"
)

// TelnetServer serves the command line over Telnet (RFC 854), for the
// terminals and networks that have nothing else. Passwords cross the
// network in clear: it is off unless configured (docs/cli.md).
type TelnetServer struct {
	CLI     *CLI
	Users   *Users
	Sources func() []netip.Prefix // who may connect now; nil or empty: anyone
	Idle    time.Duration
	Log     *slog.Logger
	conns   atomic.Int32
}

// Telnet's commands and the options we use (RFC 854, 857, 858, 1073).
const (
	tSE   = 240
	tSB   = 250
	tWILL = 251
	tWONT = 252
	tDO   = 253
	tDONT = 254
	tIAC  = 255

	optEcho = 1
	optSGA  = 3
	optNAWS = 31
)

// Serve accepts connections until ctx ends.
func (s *TelnetServer) Serve(ctx context.Context, ln net.Listener) {
	accept(ctx, ln, s.Sources, &s.conns, "CLI Telnet connection", s.serve)
}

// accept serves ln's connections from allowed sources, at most
// MaxSessions at once (conns counts them), each on a goroutine of its own.
func accept(ctx context.Context, ln net.Listener, sources func() []netip.Prefix, conns *atomic.Int32, what string, serve func(net.Conn)) {
	context.AfterFunc(ctx, func() { ln.Close() })
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var allowed []netip.Prefix
		if sources != nil {
			allowed = sources() // read at each connection: a commit may change it
		}
		if !allowedAddr(allowed, c.RemoteAddr()) {
			c.Close()
			continue
		}
		if conns.Add(1) > MaxSessions {
			conns.Add(-1)
			c.Close()
			continue
		}
		// The count is given back however serve ends (safe.Go's release
		// runs on a panic only).
		safe.Go(what, func() {
			defer conns.Add(-1)
			serve(c)
		})
	}
}

func allowedAddr(sources []netip.Prefix, a net.Addr) bool {
	if len(sources) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	for _, p := range sources {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

func (s *TelnetServer) serve(c net.Conn) {
	defer c.Close()
	from := c.RemoteAddr().String()
	if ap, err := netip.ParseAddrPort(from); err == nil {
		from = ap.Addr().Unmap().String()
	}
	// We echo and suppress go-ahead (character at a time), and ask the
	// client for its window size.
	c.Write([]byte{tIAC, tWILL, optEcho, tIAC, tWILL, optSGA, tIAC, tDO, optNAWS})
	tc := &telnetConn{c: c, r: bufio.NewReader(c)}
	sess := &Session{CLI: s.CLI, From: from}
	login := &Session{CLI: s.CLI}
	tm := NewTerminal(tc, login)
	tc.size = tm.SetSize
	// The login has a minute, like the SSH handshake's 30 s plus typing.
	c.SetDeadline(time.Now().Add(time.Minute))
	tm.t.SetPrompt("Username: ")
	name, err := tm.t.ReadLine()
	if err != nil {
		return
	}
	pw, err := tm.t.ReadPassword("Password: ")
	if err != nil {
		return
	}
	level, err := s.Users.Check(name, pw, from, time.Now())
	if err != nil {
		s.Log.Warn("CLI login refused", "user", name, "from", from, "via", "telnet")
		tm.t.Write([]byte("% Login refused\n"))
		return
	}
	c.SetDeadline(time.Time{})
	s.Log.Info("CLI login", "user", name, "from", from, "via", "telnet", "level", level.String())
	sess.User, sess.Level = name, level
	id, done := s.CLI.Sessions.add(name, from, "telnet", func() { c.Close() })
	defer done()
	sess.ID = id
	tm.s = sess
	tm.Run(s.Idle, func() { c.Close() })
}

// telnetConn strips Telnet's commands from what the client sends (and
// reads NAWS from them), turns CR NUL and CR LF into CR, and doubles
// IAC in what we send.
type telnetConn struct {
	c    net.Conn
	r    *bufio.Reader
	mu   sync.Mutex
	size func(w, h int)
	cr   bool // the last byte was CR
}

func (t *telnetConn) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if n > 0 && t.r.Buffered() == 0 {
			break
		}
		b, err := t.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b == tIAC {
			data, err := t.command()
			if err != nil {
				return n, err
			}
			if !data {
				continue
			}
		}
		if t.cr && (b == 0 || b == '\n') {
			t.cr = false
			continue
		}
		t.cr = b == '\r'
		p[n] = b
		n++
	}
	return n, nil
}

// command reads what follows an IAC; true: it was an escaped 255.
func (t *telnetConn) command() (bool, error) {
	cmd, err := t.r.ReadByte()
	if err != nil {
		return false, err
	}
	switch cmd {
	case tIAC:
		return true, nil
	case tWILL, tWONT, tDO, tDONT:
		_, err := t.r.ReadByte() // the option: what we offered is all we do
		return false, err
	case tSB:
		var sub []byte
		for {
			b, err := t.r.ReadByte()
			if err != nil {
				return false, err
			}
			if b == tIAC {
				if b, err = t.r.ReadByte(); err != nil {
					return false, err
				}
				if b == tSE {
					break
				}
			}
			if len(sub) < 64 { // nothing we read is longer
				sub = append(sub, b)
			}
		}
		if len(sub) == 5 && sub[0] == optNAWS && t.size != nil {
			t.size(int(sub[1])<<8|int(sub[2]), int(sub[3])<<8|int(sub[4]))
		}
	}
	return false, nil
}

func (t *telnetConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]byte, 0, len(p)+8)
	for _, b := range p {
		out = append(out, b)
		if b == tIAC {
			out = append(out, tIAC)
		}
	}
	if _, err := t.c.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

var _ io.ReadWriter = (*telnetConn)(nil)
