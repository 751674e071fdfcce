// Package diameter is the switch's Diameter side (RFC 6733) over
// github.com/fiorix/go-diameter/v4: its messages, dictionaries and
// capabilities exchange (diam/sm); the rest is ours, because the library
// leaves it out: a peer that reconnects with backoff, requests matched to
// their answers by Hop-by-Hop Identifier with a timer each, DPR/DPA at
// shutdown and when the peer asks, and answers to requests we do not
// serve.
package diameter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/fiorix/go-diameter/v4/diam/dict"
	"github.com/fiorix/go-diameter/v4/diam/sm"

	"github.com/softswitch/softswitch/core/safe"
)

// Config is one peer.
type Config struct {
	Addr         string        // IP:port (no DNS at run time)
	OriginHost   string        // our Diameter identity, e.g. ss1.operator.net
	OriginRealm  string        // our realm
	AuthApps     []uint32      // advertised Auth-Application-Ids (4: credit control)
	AcctApps     []uint32      // advertised Acct-Application-Ids (3: base accounting)
	Watchdog     time.Duration // Tw (RFC 3539): a DWR after this long; default 30 s
	ReconnectMin time.Duration // first wait after a lost connection; default 1 s
	ReconnectMax time.Duration // the wait doubles up to this; default 30 s
	Log          *slog.Logger
	// OnState hears the peer open (after CER/CEA) and closed; it must
	// not block.
	OnState func(addr string, open bool)
}

// Peer is a connection to one Diameter server, kept open by Run.
type Peer struct {
	cfg Config

	mu      sync.Mutex
	conn    diam.Conn
	down    chan struct{} // closed when conn is lost
	pending map[uint32]chan *diam.Message
	hbh     atomic.Uint32
}

// ErrPeerDown: the peer has no open connection, or lost it while the
// request waited.
var ErrPeerDown = errors.New("diameter peer not connected")

// NewPeer is a peer of cfg; Run connects it.
func NewPeer(cfg Config) *Peer {
	if cfg.Watchdog <= 0 {
		cfg.Watchdog = 30 * time.Second
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = time.Second
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = max(30*time.Second, cfg.ReconnectMin)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &Peer{cfg: cfg, pending: map[uint32]chan *diam.Message{}}
	p.hbh.Store(rand.Uint32())
	return p
}

// Addr is the peer's address.
func (p *Peer) Addr() string { return p.cfg.Addr }

// Open reports whether the peer has an open connection.
func (p *Peer) Open() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn != nil
}

// Run keeps the peer connected until ctx ends, then says goodbye (DPR).
func (p *Peer) Run(ctx context.Context) {
	wait := p.cfg.ReconnectMin
	for ctx.Err() == nil {
		conn, err := p.connect(ctx)
		if err != nil {
			p.cfg.Log.Warn("Diameter peer: connection failed", "peer", p.cfg.Addr, "err", err, "retry_in", wait.String())
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
			wait = min(2*wait, p.cfg.ReconnectMax)
			continue
		}
		wait = p.cfg.ReconnectMin
		closed := conn.(diam.CloseNotifier).CloseNotify()
		p.opened(conn)
		select {
		case <-closed:
			p.cfg.Log.Warn("Diameter peer: connection lost", "peer", p.cfg.Addr)
		case <-ctx.Done():
			p.disconnect(conn)
		}
		p.lost(conn)
	}
}

// connect dials, exchanges capabilities and starts the watchdog.
func (p *Peer) connect(ctx context.Context) (diam.Conn, error) {
	machine := sm.New(&sm.Settings{
		OriginHost:    datatype.DiameterIdentity(p.cfg.OriginHost),
		OriginRealm:   datatype.DiameterIdentity(p.cfg.OriginRealm),
		VendorID:      0,
		ProductName:   "softswitch",
		OriginStateID: datatype.Unsigned32(time.Now().Unix()),
	})
	machine.HandleFunc("ALL", p.serve)
	machine.HandleFunc("DPR", p.serveDPR)
	// A DWR every Tw; the CEA, and each DWA, must come within 5 s, or
	// the connection is closed (and Run opens a new one): the library's
	// one timer serves both.
	cli := &sm.Client{Handler: machine, Dict: dict.Default, MaxRetransmits: 0,
		RetransmitInterval: 5 * time.Second, EnableWatchdog: true, WatchdogInterval: p.cfg.Watchdog}
	for _, id := range p.cfg.AuthApps {
		cli.AuthApplicationID = append(cli.AuthApplicationID, diam.NewAVP(avp.AuthApplicationID, avp.Mbit, 0, datatype.Unsigned32(id)))
	}
	for _, id := range p.cfg.AcctApps {
		cli.AcctApplicationID = append(cli.AcctApplicationID, diam.NewAVP(avp.AcctApplicationID, avp.Mbit, 0, datatype.Unsigned32(id)))
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return nil, err
	}
	fc := &filterConn{Conn: nc, dict: dict.Default, origin: [2]string{p.cfg.OriginHost, p.cfg.OriginRealm}}
	conn, err := cli.NewConn(fc, p.cfg.Addr)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("capabilities exchange: %w", err)
	}
	fc.dconn.Store(&conn)
	return conn, nil
}

func (p *Peer) opened(conn diam.Conn) {
	p.mu.Lock()
	p.conn, p.down = conn, make(chan struct{})
	p.mu.Unlock()
	p.cfg.Log.Info("Diameter peer open", "peer", p.cfg.Addr)
	if p.cfg.OnState != nil {
		p.cfg.OnState(p.cfg.Addr, true)
	}
}

// lost forgets conn; the requests waiting on it end with ErrPeerDown.
func (p *Peer) lost(conn diam.Conn) {
	conn.Close()
	p.mu.Lock()
	if p.conn == conn {
		p.conn = nil
		close(p.down)
	}
	p.mu.Unlock()
	if p.cfg.OnState != nil {
		p.cfg.OnState(p.cfg.Addr, false)
	}
}

// disconnect says goodbye (DPR, cause REBOOTING) and waits up to 2 s
// for the DPA.
func (p *Peer) disconnect(conn diam.Conn) {
	m := diam.NewRequest(diam.DisconnectPeer, 0, dict.Default)
	m.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity(p.cfg.OriginHost))
	m.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity(p.cfg.OriginRealm))
	m.NewAVP(avp.DisconnectCause, avp.Mbit, 0, datatype.Enumerated(0)) // REBOOTING
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := p.Send(ctx, m); err != nil {
		p.cfg.Log.Warn("Diameter peer: no DPA", "peer", p.cfg.Addr, "err", err)
	}
}

// Send writes request m and returns its answer (matched by Hop-by-Hop
// Identifier), or an error when ctx ends or the connection is lost.
func (p *Peer) Send(ctx context.Context, m *diam.Message) (*diam.Message, error) {
	p.mu.Lock()
	conn, down := p.conn, p.down
	if conn == nil {
		p.mu.Unlock()
		return nil, ErrPeerDown
	}
	id := p.hbh.Add(1)
	m.Header.HopByHopID = id
	ch := make(chan *diam.Message, 1)
	p.pending[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
	}()
	if _, err := m.WriteTo(conn); err != nil { // outside the lock
		return nil, fmt.Errorf("%w: %v", ErrPeerDown, err)
	}
	select {
	case a := <-ch:
		return a, nil
	case <-down:
		return nil, ErrPeerDown
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// serve takes what the state machine does not: answers go to their
// requests (one nobody waits for is dropped); a request we do not serve
// gets 3001 DIAMETER_COMMAND_UNSUPPORTED, never a dropped connection.
func (p *Peer) serve(c diam.Conn, m *diam.Message) {
	if m.Header.CommandFlags&diam.RequestFlag == 0 {
		p.mu.Lock()
		ch := p.pending[m.Header.HopByHopID]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default: // a duplicate
			}
		}
		return
	}
	a := m.Answer(0)
	a.Header.CommandFlags |= diam.ErrorFlag
	addResult(a, diam.CommandUnsupported, p.cfg.OriginHost, p.cfg.OriginRealm)
	safe.Go("Diameter answer", func() { a.WriteTo(c) })
}

// serveDPR answers the peer's goodbye and closes; Run reconnects after
// the backoff.
func (p *Peer) serveDPR(c diam.Conn, m *diam.Message) {
	a := m.Answer(0)
	addResult(a, diam.Success, p.cfg.OriginHost, p.cfg.OriginRealm)
	p.cfg.Log.Info("Diameter peer said goodbye (DPR)", "peer", p.cfg.Addr)
	safe.Go("Diameter DPA", func() {
		a.WriteTo(c)
		time.Sleep(100 * time.Millisecond) // let the DPA leave
		c.Close()
	})
}

// addResult adds Result-Code, Origin-Host and Origin-Realm to answer a.
func addResult(a *diam.Message, code uint32, host, realm string) {
	a.NewAVP(avp.ResultCode, avp.Mbit, 0, datatype.Unsigned32(code))
	a.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity(host))
	a.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity(realm))
}
