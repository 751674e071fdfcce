package cli

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// More connections one after the other than MaxSessions are all served:
// each gives its place back when it ends (found: they did only on a
// panic, and the 17th login of a switch's life was refused).
func TestAcceptGivesPlacesBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var conns atomic.Int32
	served := make(chan struct{}, 1)
	go accept(ctx, ln, nil, &conns, "test", func(c net.Conn) {
		c.Close()
		served <- struct{}{}
	})
	for i := 0; i < 3*MaxSessions; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Fatalf("connection %d was not served (%d counted)", i+1, conns.Load())
		}
		c.Close()
	}
}
