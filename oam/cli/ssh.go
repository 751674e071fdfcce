package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/softswitch/softswitch/core/safe"
)

// SSHServer serves the command line over SSH (password login, the users
// of Users).
type SSHServer struct {
	CLI     *CLI
	Users   *Users
	HostKey ssh.Signer
	Sources func() []netip.Prefix // who may connect now; nil or empty: anyone who reaches the address
	Idle    time.Duration         // a session without a command this long is closed
	Log     *slog.Logger
	conns   atomic.Int32
}

// MaxSessions bounds the connections served at once.
const MaxSessions = 16

// LoadHostKey reads the host key at path, or makes one (ed25519) and
// keeps it there (0600): the key must not change between starts, or
// every client warns of an impostor.
func LoadHostKey(path string) (ssh.Signer, error) {
	if b, err := os.ReadFile(path); err == nil {
		return ssh.ParsePrivateKey(b)
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "softswitch command line")
	if err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// Serve accepts connections until ctx ends.
func (s *SSHServer) Serve(ctx context.Context, ln net.Listener) {
	accept(ctx, ln, s.Sources, &s.conns, "CLI SSH connection", s.serve)
}

func (s *SSHServer) serve(c net.Conn) {
	defer c.Close()
	from := c.RemoteAddr().String()
	if ap, err := netip.ParseAddrPort(from); err == nil {
		from = ap.Addr().Unmap().String()
	}
	cfg := &ssh.ServerConfig{
		MaxAuthTries: 3,
		PasswordCallback: func(m ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			level, err := s.Users.Check(m.User(), string(pw), from, time.Now())
			if err != nil {
				s.Log.Warn("CLI login refused", "user", m.User(), "from", from, "via", "ssh")
				return nil, err
			}
			return &ssh.Permissions{Extensions: map[string]string{"level": strconv.Itoa(int(level))}}, nil
		},
		ServerVersion: "SSH-2.0-softswitch",
	}
	cfg.AddHostKey(s.HostKey)
	c.SetDeadline(time.Now().Add(30 * time.Second)) // the handshake and login
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	defer sc.Close()
	level, _ := strconv.Atoi(sc.Permissions.Extensions["level"])
	s.Log.Info("CLI login", "user", sc.User(), "from", from, "via", "ssh", "level", Level(level).String())
	safe.Go("CLI SSH global requests", func() { ssh.DiscardRequests(reqs) })
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		sess := &Session{CLI: s.CLI, User: sc.User(), From: from, Level: Level(level)}
		id, done := s.CLI.Sessions.add(sess.User, from, "ssh", func() { sc.Close() })
		sess.ID = id
		s.session(ch, creqs, sess, sc)
		done()
		return // one session per connection
	}
}

// session serves one channel: a shell (with a pty or without) or one
// command (exec).
func (s *SSHServer) session(ch ssh.Channel, reqs <-chan *ssh.Request, sess *Session, sc *ssh.ServerConn) {
	defer ch.Close()
	var tm *Terminal
	w, h := 80, 24
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			w, h = ptySize(req.Payload)
			req.Reply(true, nil)
		case "window-change":
			if len(req.Payload) >= 8 && tm != nil {
				tm.SetSize(int(binary.BigEndian.Uint32(req.Payload)), int(binary.BigEndian.Uint32(req.Payload[4:])))
			}
		case "env":
			req.Reply(true, nil)
		case "shell":
			req.Reply(true, nil)
			tm = NewTerminal(ch, sess)
			tm.SetSize(w, h)
			done := make(chan struct{})
			safe.Go("CLI SSH shell", func() {
				defer close(done)
				tm.Run(s.Idle, func() { sc.Close() })
			})
			safe.Go("CLI SSH window changes", func() { // they keep coming while the shell runs
				for r := range reqs {
					if r.Type == "window-change" && len(r.Payload) >= 8 {
						tm.SetSize(int(binary.BigEndian.Uint32(r.Payload)), int(binary.BigEndian.Uint32(r.Payload[4:])))
					}
					if r.WantReply {
						r.Reply(false, nil)
					}
				}
			})
			<-done
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
			return
		case "exec":
			var cmd struct{ Line string }
			if ssh.Unmarshal(req.Payload, &cmd) != nil {
				req.Reply(false, nil)
				return
			}
			req.Reply(true, nil)
			status := uint32(0)
			out, err := sess.Execute(cmd.Line)
			if err != nil {
				out, status = err.Error()+"\n", 1
			}
			fmt.Fprint(ch, crlf(out))
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			return
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

// ptySize reads a pty-req's width and height (RFC 4254 §6.2).
func ptySize(p []byte) (int, int) {
	if len(p) < 4 {
		return 80, 24
	}
	n := int(binary.BigEndian.Uint32(p))
	if len(p) < 4+n+8 {
		return 80, 24
	}
	p = p[4+n:]
	return int(binary.BigEndian.Uint32(p)), int(binary.BigEndian.Uint32(p[4:]))
}

func crlf(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			b = append(b, '\r')
		}
		b = append(b, s[i])
	}
	return string(b)
}
