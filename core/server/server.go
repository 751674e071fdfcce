// Package server binds the SIP transports (sipgo) to the softswitch's
// request chain: validate -> registrar / call control / OPTIONS.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/call"
	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/gate"
	"github.com/softswitch/softswitch/core/inbound"
	"github.com/softswitch/softswitch/core/overload"
	"github.com/softswitch/softswitch/core/registrar"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/sipcheck"
	"github.com/softswitch/softswitch/core/sipcount"
	"github.com/softswitch/softswitch/core/sipudp"
	"github.com/softswitch/softswitch/core/udpsrc"
)

// Allow lists the methods we answer.
const Allow = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, PRACK, UPDATE, INFO, MESSAGE, NOTIFY, REFER"

// Server is the SIP front end.
type Server struct {
	UA     *sipgo.UserAgent
	SIP    *sipgo.Server
	Client *sipgo.Client
	Calls  *call.Manager
	Reg    *registrar.Registrar
	Log    *slog.Logger

	// Source is the UDP source address toward peers that have not sent
	// to us yet (the advertised address); zero: the kernel's choice.
	Source netip.Addr

	// Gate decides about each UDP datagram before it is parsed
	// (admission, overload, mending); its Reply is set by Serve.
	Gate *gate.Gate
	// Overload is told to clients that offer RFC 7339 overload control
	// (nil: not offered).
	Overload *overload.Controller

	// Parser reads the UDP datagrams (sipgo's, as core/sipparse sets it).
	Parser *sip.Parser
	// StackLog is the SIP stack's rate-limited log (sipgo's records and
	// ours for unparseable datagrams).
	StackLog *slog.Logger
	// SlowRegister, when set and true: REGISTER may wait on the network
	// (its digest is checked by a RADIUS server), so it runs on a
	// goroutine of its own, not on the worker. Asked at each REGISTER:
	// the AAA servers change at run time.
	SlowRegister func() bool
	// Yielding, when set and true, fails keepalived's health check of
	// this node (a switchover hands the address to the standby).
	Yielding func() bool
	// Count, when set, counts the SIP messages received (UDP after
	// admission, TCP, and the responses sipgo's side socket reads) and
	// sent on the call path's UDP socket (RFC 4780's statistics).
	Count *sipcount.Counters
	// Handled, when set, is told each UDP message's processing delay
	// (from its read to the end of its handling), on the SIP workers.
	Handled func(delay time.Duration, now time.Time)

	udp    net.PacketConn
	udpw   net.PacketConn // udp answering from the address each peer sent to
	side   net.PacketConn // sipgo's own UDP socket (its probes and registrations)
	tcp    net.Listener
	ep     *sipudp.Endpoint
	epOnce sync.Once
	h      map[sip.RequestMethod]sipgo.RequestHandler // set by Serve
}

// Listen binds UDP and TCP on addr before serving, so that start-up fails
// loudly on a taken port. It returns the bound UDP address.
func (s *Server) Listen(addr string) (string, error) {
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return "", fmt.Errorf("SIP UDP listen on %s: %w", addr, err)
	}
	growBuffers(udp, 8<<20)
	tcpAddr := udp.LocalAddr().String()
	tcp, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		udp.Close()
		return "", fmt.Errorf("SIP TCP listen on %s: %w", tcpAddr, err)
	}
	host, _, _ := net.SplitHostPort(tcpAddr)
	side, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		udp.Close()
		tcp.Close()
		return "", fmt.Errorf("SIP UDP side socket on %s: %w", host, err)
	}
	s.udp, s.tcp, s.side = udp, inbound.CountingListener(tcp, s.Count.In, s.Count.Out), side
	return tcpAddr, nil
}

// SidePort is the port of sipgo's own UDP socket: the Via port of the
// requests sipgo sends (gateway probes, trunk registrations), so that
// their responses come back to sipgo, not to the call path's socket.
func (s *Server) SidePort() int {
	if ua, ok := s.side.LocalAddr().(*net.UDPAddr); ok {
		return ua.Port
	}
	return 0
}

// UDPConn is the bound UDP socket (after Listen).
func (s *Server) UDPConn() net.PacketConn { return s.udp }

// Filter is sipgo's read filter. sipgo reads UDP only on its side socket
// (the call path's socket is core/sipudp's, behind core/gate): there it
// passes responses and drops requests. A filter that errs would end the
// read loop: this one never does.
func (s *Server) Filter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if p.Transport != "UDP" {
		return data, nil // streams are framed, mended and counted by inbound.Listener
	}
	if len(data) < 4 || string(data[:4]) != "SIP/" {
		return nil, nil // the side socket takes responses only: requests come to the listen port
	}
	s.Count.In(data)
	return data, nil // responses need no admission and no mending
}

// Serve registers the handlers and serves until ctx ends: UDP on the
// switch's own stack (core/sipudp), TCP on sipgo's.
func (s *Server) Serve(ctx context.Context) error {
	srv := s.SIP
	s.h = s.handlers() // the UDP endpoint's too: read by its workers, which start below
	for m, h := range s.h {
		srv.OnRequest(m, h)
	}
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		defer safe.Recover("ACK handler")
		s.ack(req, tx)
	})
	srv.OnNoRoute(s.checked(s.notImplemented, false))
	errc := make(chan error, 3)
	ep := s.UDPEndpoint()
	safe.Go("SIP UDP endpoint", func() { errc <- ep.Serve(ctx) }, func() { errc <- errors.New("UDP endpoint failed") })
	safe.Go("SIP TCP listener", func() { errc <- srv.ServeTCP(s.tcp) }, func() { errc <- errors.New("TCP listener failed") })
	if s.side != nil {
		// sipgo's own UDP socket: the responses to the requests sipgo
		// sends itself (gateway probes, trunk registrations).
		safe.Go("SIP UDP side socket", func() { errc <- srv.ServeUDP(udpsrc.Wrap(s.side, s.Source)) }, func() { errc <- errors.New("UDP side socket failed") })
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}

// UDPEndpoint is the switch's UDP stack (made once; the call manager
// sends through it).
func (s *Server) UDPEndpoint() *sipudp.Endpoint {
	s.epOnce.Do(func() {
		// Answers leave from the address each peer sent to (a pair's
		// virtual address, on a node listening on all of them).
		s.udpw = udpsrc.Wrap(s.udp, s.Source)
		ack := func(req *sip.Request, tx sip.ServerTransaction) {
			defer safe.Recover("ACK handler")
			s.ack(req, tx)
		}
		other := s.checked(s.notImplemented, false)
		s.ep = &sipudp.Endpoint{
			Conn:   s.udpw,
			Parser: s.Parser,
			Filter: func(data []byte, src netip.AddrPort, now time.Time) []byte {
				if s.Gate == nil {
					data = inbound.Fix(data, src)
				} else {
					data = s.Gate.Filter(data, src, now)
				}
				if len(data) > 0 {
					s.Count.In(data)
				}
				return data
			},
			Sent: s.Count.Out,
			Handler: func(req *sip.Request, tx sip.ServerTransaction) {
				if req.Method == sip.ACK {
					ack(req, tx)
					return
				}
				if f, ok := s.h[req.Method]; ok {
					f(req, tx)
					return
				}
				other(req, tx)
			},
			Inline: func(req *sip.Request) bool {
				return inline(req) && !(req.Method == sip.REGISTER && s.SlowRegister != nil && s.SlowRegister())
			},
			Refuse: s.refuse,
			Shedding: func() bool {
				return s.Overload != nil && s.Overload.Offer()
			},
			Shed: s.shed,
			Stray: func(r *sip.Response) {
				if s.Calls != nil {
					s.Calls.HandleStrayResponse(r)
				}
			},
			Unparseable: func(data []byte, err error) {
				// The same record (and count) as sipgo's for TCP.
				s.stackLog().Error("failed to parse", "data", string(data), "error", err)
			},
			Log: s.Log,
		}
		if s.Overload != nil {
			s.ep.LateAfter = s.Overload.AgeTarget()
		}
		s.ep.Handled = s.Handled
		s.ep.Init()
	})
	return s.ep
}

// refuse answers 503 to a new call the overload control sheds (R22), or
// one that waited too long in its queue (late): Retry-After drawn at
// random, Reason Q.850 42 (switching equipment congestion), and RFC
// 7339's oc for a client that offered it. A copy of an INVITE whose call
// exists is never refused.
func (s *Server) refuse(req *sip.Request, late bool) *sip.Response {
	if s.Overload == nil || !late && !s.Overload.Shedding() {
		return nil // the common case: no lookup on the way of every new call
	}
	if req.CallID() == nil || s.Calls != nil && s.Calls.Known(req.CallID().Value()) {
		return nil
	}
	if late {
		s.Overload.CountRefused()
	} else if !s.Overload.RefuseNew() {
		return nil
	}
	offerOC(req, s.Overload)
	res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(s.Overload.RetryAfter())))
	res.AppendHeader(sip.NewHeader("Reason", congestionReason))
	return res
}

// shed decides, from the bytes, for a new call read while the overload
// control sheds or its worker's queue of new calls is full (core/sipudp's
// fast path): nil admits it; a refusal carries the same Retry-After,
// Reason and oc as refuse's 503.
func (s *Server) shed(callID []byte, full bool) *sipudp.Refusal {
	if s.Calls != nil && s.Calls.Known(string(callID)) {
		return nil // a copy of the INVITE of a call in progress
	}
	if full {
		// Counted as it is decided: a request the fast path then
		// cannot copy (a folded line) takes the parsed path and may be
		// admitted there, counted as refused all the same (rare).
		s.Overload.CountRefused()
	} else if !s.Overload.RefuseAtCap() {
		return nil // in an episode the queue admitted it (core/sipudp)
	}
	c := s.Overload
	return &sipudp.Refusal{
		Headers: "Retry-After: " + strconv.Itoa(c.RetryAfter()) + "\r\n" +
			"Reason: " + congestionReason + "\r\n",
		OC: ";oc=" + strconv.Itoa(c.Loss()) + `;oc-algo="loss";oc-validity=` +
			strconv.FormatInt(c.Validity().Milliseconds(), 10) + ";oc-seq=" + strconv.FormatInt(c.Seq(), 10),
	}
}

// congestionReason is the refusals' Reason: Q.850 42, switching
// equipment congestion.
const congestionReason = `Q.850;cause=42;text="Switching equipment congestion"`

// inline says which requests are served on the worker that read them:
// those whose handlers never wait (on a response from the other leg, a
// timer). An initial INVITE's handler waits for its final response, an
// in-dialog request's for the other leg: they get a goroutine.
func inline(req *sip.Request) bool {
	switch req.Method {
	case sip.ACK, sip.BYE, sip.CANCEL, sip.REGISTER:
		return true
	case sip.OPTIONS:
		return tagOf(req.To()) == ""
	}
	return false
}

func (s *Server) stackLog() *slog.Logger {
	if s.StackLog != nil {
		return s.StackLog
	}
	return sip.DefaultLogger()
}

// handlers is the request handler of each method we serve.
func (s *Server) handlers() map[sip.RequestMethod]sipgo.RequestHandler {
	h := map[sip.RequestMethod]sipgo.RequestHandler{
		sip.REGISTER: s.checked(s.Reg.Handle, false),
		sip.INVITE:   s.checked(s.invite, true),
		sip.BYE:      s.checked(s.Calls.HandleBye, false),
		sip.CANCEL: s.checked(func(req *sip.Request, tx sip.ServerTransaction) {
			// A CANCEL that matched an INVITE was answered by the stack.
			tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}, false),
		sip.OPTIONS: s.checked(s.options, false),
	}
	for _, m := range []sip.RequestMethod{sip.PRACK, sip.UPDATE, sip.INFO, sip.MESSAGE, sip.NOTIFY, sip.REFER} {
		h[m] = s.checked(s.inDialogOnly, true)
	}
	return h
}

// notImplemented: a method nobody here knows gets 501 with what we do
// know (RFC 3261 §8.2.1; 405 would claim we know it and refuse it here).
func (s *Server) notImplemented(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 501, "Not Implemented", nil)
	res.AppendHeader(sip.NewHeader("Allow", Allow))
	tx.Respond(res)
}

// Close stops the listeners and the stack.
func (s *Server) Close() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.side != nil {
		s.side.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	s.SIP.Close()
	s.UA.Close()
}

type handler = func(*sip.Request, sip.ServerTransaction)

// checked validates a request before h sees it; forwarded requests with
// Max-Forwards 0 get 483.
func (s *Server) checked(h handler, forwarded bool) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				// A bug must cost one request, never the server.
				safe.Report("request handler", r)
				tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
			}
		}()
		if p := sipcheck.Request(req); p != nil {
			s.Log.Debug("invalid request", "method", req.Method, "status", p.Status, "reason", p.Reason, "src", req.Source())
			tx.Respond(p.Response(req))
			return
		}
		if s.Overload != nil {
			offerOC(req, s.Overload)
		}
		if forwarded {
			if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
				tx.Respond(sip.NewResponseFromRequest(req, 483, "Too Many Hops", nil))
				return
			}
		}
		h(req, tx)
	}
}

func (s *Server) invite(req *sip.Request, tx sip.ServerTransaction) {
	if tagOf(req.To()) != "" {
		s.Calls.HandleInDialog(req, tx)
		return
	}
	s.Calls.HandleInvite(req, tx)
}

func (s *Server) ack(req *sip.Request, _ sip.ServerTransaction) {
	if sipcheck.Request(req) != nil {
		return // no response to an ACK: drop it
	}
	s.Calls.HandleAck(req)
}

func (s *Server) inDialogOnly(req *sip.Request, tx sip.ServerTransaction) {
	if tagOf(req.To()) == "" {
		if req.Method == sip.PRACK || req.Method == sip.UPDATE {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
		res.AppendHeader(sip.NewHeader("Allow", Allow))
		tx.Respond(res)
		return
	}
	s.Calls.HandleInDialog(req, tx)
}

func (s *Server) options(req *sip.Request, tx sip.ServerTransaction) {
	if tagOf(req.To()) != "" {
		s.Calls.HandleInDialog(req, tx)
		return
	}
	if s.Yielding != nil && strings.HasPrefix(req.CallID().Value(), config.HACheckCallIDPrefix) && s.Yielding() {
		// A switchover: keepalived's check fails here, so it hands the
		// address to the other node; every other OPTIONS is answered.
		tx.Respond(sip.NewResponseFromRequest(req, 503, "Yielding to the standby (switchover)", nil))
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", Allow))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Supported", strings.Join(sipcheck.Supported, ", ")))
	if s.UA != nil {
		res.AppendHeader(sip.NewHeader("Server", s.UA.Name())) // sip.user_agent: tells the nodes of a pair apart
	}
	tx.Respond(res)
}

// offerOC answers a client that offers RFC 7339 overload control (an oc
// parameter on its top Via): every response to the request carries the
// share of requests to shed, for how long, and its sequence.
func offerOC(req *sip.Request, c *overload.Controller) {
	v := req.Via()
	if v == nil || !v.Params.Has("oc") {
		return
	}
	v.Params.Add("oc", strconv.Itoa(c.Loss()))
	v.Params.Add("oc-algo", `"loss"`)
	v.Params.Add("oc-validity", strconv.FormatInt(c.Validity().Milliseconds(), 10))
	v.Params.Add("oc-seq", strconv.FormatInt(c.Seq(), 10))
}

func tagOf(to *sip.ToHeader) string {
	if to == nil {
		return ""
	}
	t, _ := to.Params.Get("tag")
	return t
}

// growBuffers enlarges the UDP socket buffers: bursts of thousands of
// datagrams a second must wait in the kernel, not be dropped, while a
// garbage collection runs. SO_RCVBUFFORCE (root) goes past rmem_max;
// otherwise the plain setting is capped by the kernel.
func growBuffers(c net.PacketConn, size int) {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return
	}
	uc.SetReadBuffer(size)
	uc.SetWriteBuffer(size)
	if rc, err := uc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size)
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, size)
		})
	}
}
