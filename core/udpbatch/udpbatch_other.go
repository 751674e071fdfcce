//go:build !linux

package udpbatch

import "net"

type sys struct{}

func (*sys) init(*net.UDPConn, int) error  { return ErrUnsupported }
func (*sys) read([]Datagram) (int, error)  { return 0, ErrUnsupported }
func (*sys) write([]Datagram) (int, error) { return 0, ErrUnsupported }
