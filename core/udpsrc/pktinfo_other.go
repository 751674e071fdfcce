//go:build !linux

package udpsrc

import (
	"errors"
	"net"
	"net/netip"
)

// Elsewhere the socket is left as it is (the appliance runs Linux).
func enable(*net.UDPConn, bool) error       { return errors.New("udpsrc: Linux only") }
func destination([]byte) (netip.Addr, bool) { return netip.Addr{}, false }
func pktinfo(b []byte, _ netip.Addr) []byte { return b }
