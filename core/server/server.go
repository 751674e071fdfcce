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
	"syscall"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/call"
	"github.com/softswitch/softswitch/core/gate"
	"github.com/softswitch/softswitch/core/inbound"
	"github.com/softswitch/softswitch/core/overload"
	"github.com/softswitch/softswitch/core/registrar"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/core/sipcheck"
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

	udp  net.PacketConn
	udpw net.PacketConn // udp answering from the address each peer sent to
	tcp  net.Listener
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
	s.udp, s.tcp = udp, inbound.Listener(tcp)
	return tcpAddr, nil
}

// UDPConn is the bound UDP socket (after Listen).
func (s *Server) UDPConn() net.PacketConn { return s.udp }

// Filter is the stack's read filter: each UDP datagram passes core/gate
// before sipgo parses it (nil: dropped). A filter that errs would end
// the read loop: this one never does.
func (s *Server) Filter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if p.Transport != "UDP" {
		return data, nil // streams are framed and mended by inbound.Listener
	}
	var src netip.AddrPort
	if ua, ok := p.RemoteAddr.(*net.UDPAddr); ok {
		src = ua.AddrPort()
	}
	if s.Gate == nil {
		return inbound.Fix(data, src), nil
	}
	return s.Gate.Filter(data, src), nil
}

// reply sends a stateless answer from the gate.
func (s *Server) reply(b []byte, to netip.AddrPort) {
	if s.udpw != nil {
		s.udpw.WriteTo(b, net.UDPAddrFromAddrPort(to))
	}
}

// Serve registers the handlers and serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	srv := s.SIP
	srv.OnRegister(s.checked(s.Reg.Handle, false))
	srv.OnInvite(s.checked(s.invite, true))
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		defer safe.Recover("ACK handler")
		s.ack(req, tx)
	})
	srv.OnBye(s.checked(s.Calls.HandleBye, false))
	srv.OnCancel(s.checked(func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL that matched an INVITE was answered by the stack.
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	}, false))
	srv.OnOptions(s.checked(s.options, false))
	for _, m := range []sip.RequestMethod{sip.PRACK, sip.UPDATE, sip.INFO, sip.MESSAGE, sip.NOTIFY, sip.REFER} {
		srv.OnRequest(m, s.checked(s.inDialogOnly, true))
	}
	// A method nobody here knows: 501 with what we do know (RFC 3261
	// §8.2.1; 405 would claim we know it and refuse it here).
	srv.OnNoRoute(s.checked(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 501, "Not Implemented", nil)
		res.AppendHeader(sip.NewHeader("Allow", Allow))
		tx.Respond(res)
	}, false))
	errc := make(chan error, 2)
	// Answers leave from the address each peer sent to (a pair's virtual
	// address, on a node listening on all of them).
	s.udpw = udpsrc.Wrap(s.udp, s.Source)
	if s.Gate != nil {
		s.Gate.Reply = s.reply
	}
	safe.Go("SIP UDP listener", func() { errc <- srv.ServeUDP(s.udpw) }, func() { errc <- errors.New("UDP listener failed") })
	safe.Go("SIP TCP listener", func() { errc <- srv.ServeTCP(s.tcp) }, func() { errc <- errors.New("TCP listener failed") })
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

// Close stops the listeners and the stack.
func (s *Server) Close() {
	if s.udp != nil {
		s.udp.Close()
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
