package sipudp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/udpbatch"
)

// route reads what a raw message's worker is chosen by, in one pass over
// its headers: the Call-ID (long or compact form; nil when there is none:
// the parser decides), and whether it is a new call (an INVITE whose To
// has no tag).
func route(data []byte) (callID []byte, fresh bool) {
	invite := len(data) >= 7 && string(data[:7]) == "INVITE "
	fresh = invite
	seenTo := false
	at := bytes.IndexByte(data, '\n') + 1
	for at > 0 && at < len(data) && (callID == nil || invite && !seenTo) {
		end := bytes.IndexByte(data[at:], '\n')
		if end < 0 {
			end = len(data) - at
		}
		line := data[at : at+end]
		if len(line) <= 1 {
			break // the empty line: end of headers
		}
		at += end + 1
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := bytes.TrimRight(line[:colon], " \t")
		switch {
		case callID == nil && (bytes.EqualFold(name, []byte("call-id")) || bytes.EqualFold(name, []byte("i"))):
			callID = bytes.TrimSpace(line[colon+1:])
		case invite && !seenTo && (bytes.EqualFold(name, []byte("to")) || bytes.EqualFold(name, []byte("t"))):
			seenTo = true
			fresh = !hasTag(bytes.TrimSpace(line[colon+1:]))
		}
	}
	return callID, fresh
}

// hasTag reports whether a To value has a tag parameter (after the
// <...> of its URI).
func hasTag(to []byte) bool {
	_, ok := tagValue(to)
	return ok
}

const shards = 64

// txTable is a sharded map of transactions by key.
type txTable[T any] struct {
	shard [shards]struct {
		mu sync.Mutex
		m  map[string]T
		_  [40]byte
	}
}

func (t *txTable[T]) init() {
	for i := range t.shard {
		t.shard[i].m = make(map[string]T)
	}
}

func shardOf(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return int(h % shards)
}

func (t *txTable[T]) get(key string) (T, bool) {
	s := &t.shard[shardOf(key)]
	s.mu.Lock()
	v, ok := s.m[key]
	s.mu.Unlock()
	return v, ok
}

// add stores v unless key is taken; it returns what is stored.
func (t *txTable[T]) add(key string, v T) (T, bool) {
	s := &t.shard[shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[key]; ok {
		return old, false
	}
	s.m[key] = v
	return v, true
}

func (t *txTable[T]) del(key string) {
	s := &t.shard[shardOf(key)]
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (t *txTable[T]) len() int {
	n := 0
	for i := range t.shard {
		s := &t.shard[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// serverKey is RFC 3261 §17.2.3's match: branch, sent-by, method (ACK
// matches the INVITE).
func serverKey(req *sip.Request, method sip.RequestMethod) (string, bool) {
	v := req.Via()
	if v == nil {
		return "", false
	}
	branch, _ := v.Params.Get("branch")
	if branch == "" {
		return "", false // core/inbound gives RFC 2543 requests one
	}
	if method == "" {
		method = req.Method
		if method == sip.ACK {
			method = sip.INVITE
		}
	}
	return branch + "|" + v.Host + ":" + strconv.Itoa(v.Port) + "|" + string(method), true
}

// clientKey matches a response to its request: our branch and the CSeq
// method (RFC 3261 §17.1.3).
func clientKey(branch string, method sip.RequestMethod) string {
	return branch + "|" + string(method)
}

// responseDest is where a response to a request with top Via v goes: the
// received address (or the sent-by host when it is an address, or the
// source) and the rport (or sent-by port, or 5060): RFC 3261 §18.2.2,
// RFC 3581.
func responseDest(v *sip.ViaHeader, src netip.AddrPort) (netip.AddrPort, bool) {
	if v == nil {
		return src, src.IsValid()
	}
	ip := src.Addr()
	if r, ok := v.Params.Get("received"); ok {
		if a, err := netip.ParseAddr(r); err == nil {
			ip = a
		}
	} else if a, err := netip.ParseAddr(v.Host); err == nil {
		ip = a
	}
	port := v.Port
	if p, ok := v.Params.Get("rport"); ok && p != "" {
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
			port = n
		}
	}
	if port <= 0 {
		port = 5060
	}
	if !ip.IsValid() || port > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), true
}

// requestDest is where a request goes: its destination (an address and
// port: routing resolved names already).
func requestDest(req *sip.Request) (netip.AddrPort, error) {
	d := req.Destination()
	ap, err := netip.ParseAddrPort(d)
	if err != nil {
		return netip.AddrPort{}, errors.New("sipudp: destination is not an address:port: " + d)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encode renders msg; the caller owns the bytes.
func encode(msg sip.Message) []byte {
	b := bufs.Get().(*bytes.Buffer)
	b.Reset()
	msg.StringWrite(b)
	out := make([]byte, b.Len())
	copy(out, b.Bytes())
	if b.Cap() <= 64<<10 {
		bufs.Put(b)
	}
	return out
}

// writeTo queues a datagram for the writer. Every goroutine of the
// switch sends on the one socket: writing there directly, they would
// queue on the socket's lock (and with one processor, behind a writer
// that lost it in the system call) while their own work waits. One
// writer goroutine does the system calls; a full queue drops the
// datagram, as a full network would.
func (e *Endpoint) writeTo(data []byte, to netip.AddrPort) error {
	if e.closed.Load() {
		return ErrClosed
	}
	select {
	case e.out <- udpbatch.Datagram{Data: data, Addr: to}:
		if e.Sent != nil {
			e.Sent(data)
		}
		return nil
	default:
		e.sendDrops.Add(1)
		return errSendQueueFull
	}
}

var errSendQueueFull = errors.New("sipudp: send queue full")

// write sends what writeTo queued until stop is closed: what is waiting
// goes in batches of one system call (sendmmsg, core/udpbatch) on a
// plain socket; a socket that picks each datagram's source address
// (core/udpsrc) gets one call per datagram.
func (e *Endpoint) write(stop <-chan struct{}) {
	var batch *udpbatch.Conn
	if uc, ok := e.Conn.(*net.UDPConn); ok {
		batch, _ = udpbatch.New(uc, 64) // nil where not supported
	}
	msgs := make([]udpbatch.Datagram, 0, 64)
	for {
		var o udpbatch.Datagram
		select {
		case <-stop:
			return
		case o = <-e.out:
		}
		if batch == nil {
			e.send(o)
			continue
		}
		msgs = append(msgs[:0], o)
	more:
		for len(msgs) < cap(msgs) {
			select {
			case o = <-e.out:
				msgs = append(msgs, o)
			default:
				break more
			}
		}
		e.sendNow(batch, msgs)
		clear(msgs) // the datagrams are garbage once sent
	}
}

// sendNow sends msgs on b at once, in as few system calls as it takes.
func (e *Endpoint) sendNow(b *udpbatch.Conn, msgs []udpbatch.Datagram) {
	for sent := 0; sent < len(msgs); {
		n, err := b.Write(msgs[sent:])
		sent += n
		if err != nil || n == 0 {
			if err != nil && e.Log != nil && !e.closed.Load() {
				e.Log.Debug("UDP send failed", "to", msgs[sent].Addr.String(), "err", err)
			}
			sent++ // skip the datagram that failed
		}
	}
}

func (e *Endpoint) send(o udpbatch.Datagram) {
	if _, err := e.Conn.WriteTo(o.Data, net.UDPAddrFromAddrPort(o.Addr)); err != nil && e.Log != nil && !e.closed.Load() {
		e.Log.Debug("UDP send failed", "to", o.Addr.String(), "err", err)
	}
}

// Write sends msg outside any transaction: a request to its destination,
// a response where its top Via says.
func (e *Endpoint) Write(msg sip.Message) error {
	to, err := destOf(msg)
	if err != nil {
		return err
	}
	return e.writeTo(encode(msg), to)
}

// Pack encodes msg once and returns what sends those bytes where Write
// would send msg, as often as it is called (the bytes are never changed
// nor reused: one datagram may be queued twice).
func (e *Endpoint) Pack(msg sip.Message) (func() error, error) {
	to, err := destOf(msg)
	if err != nil {
		return nil, err
	}
	data := encode(msg)
	return func() error { return e.writeTo(data, to) }, nil
}

// destOf is where msg goes outside any transaction.
func destOf(msg sip.Message) (netip.AddrPort, error) {
	switch m := msg.(type) {
	case *sip.Request:
		return requestDest(m)
	case *sip.Response:
		// Where its request came from (NewResponseFromRequest says), else
		// where its top Via says.
		to, err := netip.ParseAddrPort(m.Destination())
		if err != nil {
			var ok bool
			if to, ok = responseDest(m.Via(), netip.AddrPort{}); !ok {
				return netip.AddrPort{}, errors.New("sipudp: no address to send the response to")
			}
		}
		return netip.AddrPortFrom(to.Addr().Unmap(), to.Port()), nil
	}
	return netip.AddrPort{}, errors.New("sipudp: not a SIP message")
}

// countSet counts keys (the Call-IDs of INVITE server transactions
// alive: one Call-ID may have more than one).
type countSet struct{ t txTable[int] }

func (c *countSet) init() { c.t.init() }

func (c *countSet) add(key string, d int) {
	s := &c.t.shard[shardOf(key)]
	s.mu.Lock()
	if n := s.m[key] + d; n > 0 {
		s.m[key] = n
	} else {
		delete(s.m, key)
	}
	s.mu.Unlock()
}

func (c *countSet) has(key string) bool {
	_, ok := c.t.get(key)
	return ok
}
