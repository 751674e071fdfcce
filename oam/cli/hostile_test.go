package cli

import (
	"bufio"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// Whatever a user types, the command line answers and does not panic;
// whatever a Telnet client sends, the reader neither panics nor hangs.
func TestHostileInput(t *testing.T) {
	c := testCLI()
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("sh gateway lock gw-a|\\\"? \t\x00\xff\r\ninclude exclude begin (*[+")
	for _, level := range []Level{View, Operator, Admin} {
		s := &Session{CLI: c, Level: level}
		for i := 0; i < 20000; i++ {
			b := make([]byte, r.IntN(40))
			for j := range b {
				b[j] = alphabet[r.IntN(len(alphabet))]
			}
			s.Execute(string(b))
			words, _, _ := Words(string(b))
			c.Exec.Help(words, "", level)
			c.Exec.Complete(words, "g", level)
			if s.Exit {
				s.Exit = false
			}
		}
	}
	for i := 0; i < 2000; i++ {
		client, server := net.Pipe()
		tc := &telnetConn{c: server, r: bufio.NewReader(server), size: func(int, int) {}}
		b := make([]byte, r.IntN(64))
		for j := range b {
			b[j] = byte(r.IntN(256))
			if r.IntN(4) == 0 {
				b[j] = tIAC
			}
		}
		go func() { client.Write(b); client.Close() }()
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 16)
			for {
				if _, err := tc.Read(buf); err != nil {
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the Telnet reader hangs on %x", b)
		}
		server.Close()
	}
}
