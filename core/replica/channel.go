// Package replica carries the active node's state to the standby of a
// pair over the HA link (docs/ha.md): an authenticated, encrypted stream
// (channel.go), the active side's hub of changes (hub.go) and the
// standby's follower that applies them (follower.go).
package replica

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The channel: each side sends 32 random bytes; from the shared key and
// both nonces HKDF derives one AES-256-GCM key per direction, so that no
// frame of one connection can be replayed on another, nor one direction's
// on the other. Each frame is a 4-byte length then the sealed payload;
// the GCM nonce is the frame's number in its direction, so a frame
// dropped, repeated or reordered fails to open. The first frame each way
// is a fixed confirmation: a peer without the key is refused before
// anything else is read.

const (
	nonceSize = 32
	// MaxFrame bounds one frame (a snapshot is sent in several).
	MaxFrame   = 8 << 20
	confirm    = "softswitch replication v1"
	handshakeT = 5 * time.Second
)

// MinKey is the shortest replication key taken.
const MinKey = 32

// ErrAuth: the peer does not have the key (or the stream was tampered with).
var ErrAuth = errors.New("replication: the peer failed authentication (a different replication_key?)")

// Channel is one authenticated connection.
type Channel struct {
	conn    net.Conn
	seal    cipher.AEAD
	open    cipher.AEAD
	sendSeq uint64
	recvSeq uint64
	lenBuf  [4]byte
}

// Handshake authenticates conn with key; dialer tells the side (the
// directions' keys differ). It takes at most 5 s.
func Handshake(conn net.Conn, key []byte, dialer bool) (*Channel, error) {
	if len(key) < MinKey {
		return nil, fmt.Errorf("replication: the key is shorter than %d bytes", MinKey)
	}
	conn.SetDeadline(time.Now().Add(handshakeT))
	defer conn.SetDeadline(time.Time{})
	var mine, theirs [nonceSize]byte
	if _, err := rand.Read(mine[:]); err != nil {
		return nil, err
	}
	if _, err := conn.Write(mine[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(conn, theirs[:]); err != nil {
		return nil, err
	}
	d, l := mine[:], theirs[:]
	if !dialer {
		d, l = l, d
	}
	salt := append(append([]byte{}, d...), l...)
	toListener, err := aeadFor(key, salt, "dialer to listener")
	if err != nil {
		return nil, err
	}
	toDialer, err := aeadFor(key, salt, "listener to dialer")
	if err != nil {
		return nil, err
	}
	c := &Channel{conn: conn, seal: toListener, open: toDialer}
	if !dialer {
		c.seal, c.open = toDialer, toListener
	}
	if err := c.Send([]byte(confirm)); err != nil {
		return nil, err
	}
	// Nothing large is read from a peer not yet authenticated.
	got, err := c.recv(len(confirm) + c.open.Overhead())
	if err != nil {
		return nil, err
	}
	if string(got) != confirm {
		return nil, ErrAuth
	}
	return c, nil
}

func aeadFor(key, salt []byte, info string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key, salt, info, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// nonce is GCM's nonce of a direction's frame seq (Send and Recv may run
// at once: each makes its own).
func nonce(seq uint64) []byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], seq)
	return n[:]
}

// Send seals and writes one frame. Not safe for concurrent use with
// another Send (a Recv on another goroutine is fine).
func (c *Channel) Send(p []byte) error {
	if len(p)+c.seal.Overhead() > MaxFrame {
		return fmt.Errorf("replication: a frame of %d bytes is over the bound", len(p))
	}
	out := make([]byte, 4, 4+len(p)+c.seal.Overhead())
	binary.BigEndian.PutUint32(out, uint32(len(p)+c.seal.Overhead()))
	out = c.seal.Seal(out, nonce(c.sendSeq), p, out[:4])
	c.sendSeq++
	_, err := c.conn.Write(out)
	return err
}

// Recv reads and opens one frame. Not safe for concurrent use.
func (c *Channel) Recv() ([]byte, error) { return c.recv(MaxFrame) }

func (c *Channel) recv(max int) ([]byte, error) {
	if _, err := io.ReadFull(c.conn, c.lenBuf[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(c.lenBuf[:])
	if int64(n) > int64(max) || int(n) < c.open.Overhead() {
		return nil, ErrAuth
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.conn, buf); err != nil {
		return nil, err
	}
	p, err := c.open.Open(buf[:0], nonce(c.recvSeq), buf, c.lenBuf[:])
	if err != nil {
		return nil, ErrAuth
	}
	c.recvSeq++
	return p, nil
}

// Hello exchanges the nodes' names once the channel is up: the two nodes
// of a pair must be named apart, since the name is in every CDR record id
// and file name each writes (two nodes writing alone, during a split,
// must never write the same ids). It returns the peer's name.
func (c *Channel) Hello(node string) (string, error) {
	c.SetDeadline(time.Now().Add(handshakeT))
	defer c.SetDeadline(time.Time{})
	if err := c.Send([]byte(node)); err != nil {
		return "", err
	}
	b, err := c.Recv()
	if err != nil {
		return "", err
	}
	if peer := string(b); peer == node {
		return peer, fmt.Errorf("both nodes of the pair are named %q: set a [billing] node of its own on each (CDR record ids and files carry it)", node)
	}
	return string(b), nil
}

// SetDeadline bounds the next reads and writes.
func (c *Channel) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline bounds the next reads (Recv).
func (c *Channel) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline bounds the next writes (Send): one goroutine may send
// while another receives.
func (c *Channel) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// Close closes the connection.
func (c *Channel) Close() error { return c.conn.Close() }
