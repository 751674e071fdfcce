package diameter

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/dict"
)

// filterConn sits under go-diameter's connection and keeps from it every
// message whose command its dictionary does not know: go-diameter drops
// the whole connection on one (its reader fails), where RFC 6733 wants a
// request answered with 3001 DIAMETER_COMMAND_UNSUPPORTED and the
// connection kept. Such a request is answered here; such an answer is
// dropped.
type filterConn struct {
	net.Conn
	dict    *dict.Parser
	origin  [2]string // our Origin-Host and Origin-Realm, for the answers
	pending []byte
	dconn   atomic.Pointer[diam.Conn] // set once the handshake is done: answers go through it
	unknown atomic.Int64
	rmu     sync.Mutex
}

// maxMessage bounds what a peer may make us buffer.
const maxMessage = 1 << 20

var errTooLong = errors.New("diameter message longer than 1 MiB")

func (f *filterConn) Read(p []byte) (int, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	for len(f.pending) == 0 {
		var hdr [diam.HeaderLength]byte
		if _, err := io.ReadFull(f.Conn, hdr[:]); err != nil {
			return 0, err
		}
		n := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
		if n < diam.HeaderLength || n > maxMessage {
			return 0, errTooLong // the stream cannot be followed: the connection ends
		}
		msg := make([]byte, n)
		copy(msg, hdr[:])
		if _, err := io.ReadFull(f.Conn, msg[diam.HeaderLength:]); err != nil {
			return 0, err
		}
		code := uint32(msg[5])<<16 | uint32(msg[6])<<8 | uint32(msg[7])
		app := binary.BigEndian.Uint32(msg[8:12])
		if _, err := f.dict.FindCommand(app, code); err != nil {
			f.unknown.Add(1)
			if msg[4]&diam.RequestFlag != 0 {
				f.answerUnsupported(msg)
			}
			continue
		}
		f.pending = msg
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

// answerUnsupported answers an unknown request with 3001, through the
// library's connection so that it does not interleave with its writes.
func (f *filterConn) answerUnsupported(req []byte) {
	c := f.dconn.Load()
	if c == nil {
		return // before the capabilities exchange: nothing to answer on yet
	}
	h, err := diam.DecodeHeader(req[:diam.HeaderLength])
	if err != nil {
		return
	}
	// A message of a command the dictionary lacks cannot be built with
	// it; Answer on a stand-in of a known command, then the code put back.
	a := diam.NewMessage(diam.CapabilitiesExchange, h.CommandFlags&^diam.RequestFlag|diam.ErrorFlag, h.ApplicationID,
		h.HopByHopID, h.EndToEndID, f.dict)
	addResult(a, diam.CommandUnsupported, f.origin[0], f.origin[1])
	b, err := a.Serialize()
	if err != nil {
		return
	}
	b[5], b[6], b[7] = req[5], req[6], req[7]
	(*c).Write(b)
}
