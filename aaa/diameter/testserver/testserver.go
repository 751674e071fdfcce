// Package testserver is a Diameter server for tests, on go-diameter's
// server side (freeDiameter, the tests' real peer, answers neither
// accounting nor credit control): it exchanges capabilities, answers
// watchdogs and DPR, and hands ACR and CCR to the test's functions,
// recording every request it got. Imported by tests only.
package testserver

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/fiorix/go-diameter/v4/diam/dict"
	"github.com/fiorix/go-diameter/v4/diam/sm"
)

// Server is a running test server.
type Server struct {
	Addr string
	// Answer makes the answer to a request (nil: none is sent). Set it
	// before clients connect.
	Answer func(m *diam.Message) *diam.Message
	srv    *diam.Server
	ln     net.Listener
	mu     sync.Mutex
	got    []*diam.Message
	dpr    bool
}

// DPR tells whether a peer said goodbye.
func (s *Server) DPR() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dpr
}

// Start serves on a free loopback port until the test ends. answer
// makes each ACR's and CCR's answer.
func Start(t *testing.T, host string, answer func(m *diam.Message) *diam.Message) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), Answer: answer, ln: ln}
	machine := sm.New(&sm.Settings{OriginHost: datatype.DiameterIdentity(host), OriginRealm: "test",
		VendorID: 0, ProductName: "testserver"})
	h := func(c diam.Conn, m *diam.Message) {
		s.mu.Lock()
		s.got = append(s.got, m)
		s.mu.Unlock()
		if a := s.Answer(m); a != nil {
			a.WriteTo(c)
		}
	}
	machine.HandleFunc("ACR", h)
	machine.HandleFunc("CCR", h)
	machine.HandleFunc("DPR", func(c diam.Conn, m *diam.Message) {
		s.mu.Lock()
		s.dpr = true
		s.mu.Unlock()
		a := m.Answer(diam.Success)
		a.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity(host))
		a.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity("test"))
		a.WriteTo(c)
	})
	s.srv = &diam.Server{Handler: machine, Dict: dict.Default}
	go s.srv.Serve(ln)
	t.Cleanup(s.Close)
	return s
}

// Close stops serving and drops the connections.
func (s *Server) Close() { s.srv.Close(); s.ln.Close() }

// Got is every ACR and CCR received so far.
func (s *Server) Got() []*diam.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*diam.Message(nil), s.got...)
}

// Success answers m with 2001 from host.
func Success(m *diam.Message, host string) *diam.Message {
	a := m.Answer(diam.Success)
	a.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity(host))
	a.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity("test"))
	for _, code := range []uint32{avp.SessionID, avp.AccountingRecordType, avp.AccountingRecordNumber} {
		if v, err := m.FindAVP(code, 0); err == nil {
			a.AddAVP(v)
		}
	}
	return a
}

// OCS is an online charging server for the tests: a balance per
// subscriber (seconds), granted `unit` at a time, the last piece with a
// Final-Unit-Indication; it records every request.
type OCS struct {
	// SilentUpdates: CCR-Update gets no answer (an OCS gone silent).
	// FailureHandling: the Credit-Control-Failure-Handling answers carry
	// (-1, NewOCS's: none). Validity: their Validity-Time in seconds (0:
	// none). Set them before the first request.
	SilentUpdates   bool
	FailureHandling int
	Validity        int

	mu      sync.Mutex
	balance map[string]int
	unit    int
	log     []string // "type number used user"
}

func grouped(m *diam.Message, code uint32) *diam.GroupedAVP {
	v, err := m.FindAVP(code, 0)
	if err != nil {
		return nil
	}
	g, _ := v.Data.(*diam.GroupedAVP)
	return g
}

func ccTime(g *diam.GroupedAVP) int {
	if g == nil {
		return -1
	}
	for _, x := range g.AVP {
		if x.Code == avp.CCTime {
			return int(x.Data.(datatype.Unsigned32))
		}
	}
	return -1
}

func (o *OCS) Answer(m *diam.Message) *diam.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	rt, _ := m.FindAVP(avp.CCRequestType, 0)
	rn, _ := m.FindAVP(avp.CCRequestNumber, 0)
	kind := int(rt.Data.(datatype.Enumerated))
	used := ccTime(grouped(m, avp.UsedServiceUnit))
	sub := grouped(m, avp.SubscriptionID)
	user := string(sub.AVP[1].Data.(datatype.UTF8String))
	o.log = append(o.log, fmt.Sprintf("%d %d %d %s", kind, int(rn.Data.(datatype.Unsigned32)), used, user))
	if used > 0 {
		o.balance[user] -= used
	}
	a := Success(m, "ocs.test")
	for _, code := range []uint32{avp.CCRequestType, avp.CCRequestNumber} {
		if v, err := m.FindAVP(code, 0); err == nil {
			a.AddAVP(v)
		}
	}
	if kind == 3 {
		return a
	}
	if kind == 2 && o.SilentUpdates {
		return nil
	}
	if o.FailureHandling >= 0 {
		a.NewAVP(avp.CreditControlFailureHandling, avp.Mbit, 0, datatype.Enumerated(o.FailureHandling))
	}
	if o.Validity > 0 {
		a.NewAVP(avp.ValidityTime, avp.Mbit, 0, datatype.Unsigned32(o.Validity))
	}
	left := o.balance[user]
	if left <= 0 {
		a = m.Answer(4012) // DIAMETER_CREDIT_LIMIT_REACHED
		a.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity("ocs.test"))
		a.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity("test"))
		return a
	}
	g := min(left, o.unit)
	a.NewAVP(avp.GrantedServiceUnit, avp.Mbit, 0, &diam.GroupedAVP{AVP: []*diam.AVP{
		diam.NewAVP(avp.CCTime, avp.Mbit, 0, datatype.Unsigned32(g))}})
	if g == left {
		a.NewAVP(avp.FinalUnitIndication, avp.Mbit, 0, &diam.GroupedAVP{AVP: []*diam.AVP{
			diam.NewAVP(avp.FinalUnitAction, avp.Mbit, 0, datatype.Enumerated(0))}}) // TERMINATE
	}
	return a
}

// NewOCS is an OCS with these balances (seconds) granting unit at a time.
func NewOCS(balance map[string]int, unit int) *OCS {
	return &OCS{balance: balance, unit: unit, FailureHandling: -1}
}

// IsUpdate tells whether m is a CCR-Update.
func IsUpdate(m *diam.Message) bool {
	rt, err := m.FindAVP(avp.CCRequestType, 0)
	return err == nil && rt.Data.(datatype.Enumerated) == 2
}

// Log is every request seen: "CC-Request-Type CC-Request-Number used user".
func (o *OCS) Log() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.log...)
}

// Balance is what is left of a subscriber's balance.
func (o *OCS) Balance(user string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.balance[user]
}
