package cli

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
)

// What a Telnet client sends: option answers and a NAWS subnegotiation
// are taken out (the size is told), CR NUL and CR LF become CR, IAC IAC
// is a 255; what we send has its 255s doubled.
func TestTelnetConn(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	var w, h int
	tc := &telnetConn{c: server, r: bufio.NewReader(server), size: func(x, y int) { w, h = x, y }}
	go func() {
		client.Write([]byte{tIAC, tDO, optEcho, tIAC, tWILL, optNAWS, tIAC, tSB, optNAWS, 0, 132, 0, 40, tIAC, tSE})
		client.Write([]byte("ab\r\x00cd\r\nx"))
		client.Write([]byte{tIAC, tIAC, '\r'})
	}()
	var got []byte
	buf := make([]byte, 64)
	for len(got) < 9 {
		n, err := tc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if want := []byte("ab\rcd\rx\xff\r"); !bytes.Equal(got, want) || w != 132 || h != 40 {
		t.Fatalf("read %q (size %dx%d), want %q and 132x40", got, w, h, want)
	}
	go tc.Write([]byte{'o', 255, 'k'})
	out := make([]byte, 4)
	if _, err := io.ReadFull(client, out); err != nil || !bytes.Equal(out, []byte{'o', 255, 255, 'k'}) {
		t.Fatalf("wrote %q %v", out, err)
	}
}
