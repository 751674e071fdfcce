package inbound

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Listener wraps a stream listener (TCP) so that every request read on
// an accepted connection is mended by Fix. Messages are framed by their
// Content-Length (RFC 3261 §18.3); a stream that cannot be framed is
// passed on as it is from there on, for the parser to refuse.
func Listener(l net.Listener) net.Listener { return &listener{Listener: l} }

// CountingListener is Listener that also tells each framed message read
// to in, and each message written to out (SIP statistics: sipgo writes
// one message per Write).
func CountingListener(l net.Listener, in, out func([]byte)) net.Listener {
	return &listener{Listener: l, count: in, sent: out}
}

type listener struct {
	net.Listener
	count, sent func([]byte)
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	var src netip.AddrPort
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src = ta.AddrPort()
	}
	return &conn{Conn: c, src: src, count: l.count, sent: l.sent}, nil
}

// maxHeader bounds the header part of one message (as sipgo's parser
// bounds a message): beyond it the stream is passed on unframed.
const maxHeader = 64 << 10

type conn struct {
	net.Conn
	count   func([]byte) // nil: not counted
	sent    func([]byte) // nil: not counted
	src     netip.AddrPort
	in      []byte // read, not yet framed
	out     []byte // framed and mended, not yet returned
	raw     bool   // framing failed: pass everything on as it is
	readErr error
	buf     []byte
}

// Write counts what is written: one message per call (sipgo's
// WriteMsg); a keep-alive CRLF is not a message.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.sent != nil && n == len(p) && len(p) > 4 {
		c.sent(p)
	}
	return n, err
}

func (c *conn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.raw {
			return c.Conn.Read(p)
		}
		if c.readErr != nil {
			if len(c.in) > 0 { // a partial message at the end: as it is
				c.out, c.in = c.in, nil
				break
			}
			return 0, c.readErr
		}
		if c.buf == nil {
			c.buf = make([]byte, 32<<10)
		}
		n, err := c.Conn.Read(c.buf)
		c.in = append(c.in, c.buf[:n]...)
		c.readErr = err
		c.frame()
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// frame moves every complete message of c.in to c.out, mended.
func (c *conn) frame() {
	for len(c.in) > 0 {
		// CRLFs between messages (keep-alives, RFC 5626 §3.5.1) pass as they are.
		i := 0
		for i+1 < len(c.in) && c.in[i] == '\r' && c.in[i+1] == '\n' {
			i += 2
		}
		if i > 0 {
			c.out = append(c.out, c.in[:i]...)
			c.in = c.in[i:]
			continue
		}
		end := bytes.Index(c.in, []byte("\r\n\r\n"))
		if end < 0 {
			if len(c.in) > maxHeader {
				c.passRaw()
			}
			return
		}
		cl, ok := contentLength(c.in[:end+2])
		if !ok {
			c.passRaw()
			return
		}
		total := end + 4 + cl
		if len(c.in) < total {
			return
		}
		msg := Fix(c.in[:total], c.src)
		if c.count != nil {
			c.count(msg)
		}
		c.out = append(c.out, msg...)
		c.in = c.in[total:]
	}
}

// passRaw gives up framing: what is buffered goes on as it is, and so
// does everything read after it.
func (c *conn) passRaw() {
	c.raw = true
	c.out = append(c.out, c.in...)
	c.in = nil
}

// contentLength reads Content-Length (or l) from a header block; a stream
// message without one has no body (RFC 3261 §18.3 makes it mandatory).
func contentLength(block []byte) (int, bool) {
	n, found := 0, false
	for _, line := range bytes.Split(block, crlf) {
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := strings.ToLower(strings.TrimSpace(string(line[:colon])))
		if name != "content-length" && name != "l" {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(line[colon+1:])))
		if err != nil || v < 0 || v > 1<<20 || found && v != n {
			return 0, false
		}
		n, found = v, true
	}
	return n, true
}
