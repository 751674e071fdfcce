package diameter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/fiorix/go-diameter/v4/diam/dict"

	"github.com/softswitch/softswitch/core/call"
)

// CC-Request-Type (RFC 4006 §8.3).
const (
	ccInitial     = 1
	ccUpdate      = 2
	ccTermination = 3
)

// Credit-Control-Failure-Handling (RFC 4006 §8.14).
const (
	ccfhTerminate         = 0
	ccfhContinue          = 1
	ccfhRetryAndTerminate = 2
)

// Result codes of RFC 4006 §9 the switch acts on.
const (
	resultEndUserServiceDenied = 4010
	resultCreditLimitReached   = 4012
	resultUserUnknown          = 5030
)

// CreditControl authorises subscribers' calls with an online charging
// server (RFC 4006, application 4, session based, time units): CCR-Initial
// before the callee is called, CCR-Update before the granted time runs
// out (with the time used), CCR-Termination at the end. It is core/call's
// Authorizer; each call's session its AuthzSession.
//
// Client.Timeout is Tx (RFC 4006 §13), the wait for one peer's answer.
// Which failure handling applies when none comes is the server's word
// (Credit-Control-Failure-Handling in its last answer); until it has
// said, or when it never does, FailOpen's: CONTINUE when true, else
// RETRY_AND_TERMINATE. TERMINATE asks one peer; the others fail over.
type CreditControl struct {
	Client         *Client
	ID             Identity
	ServiceContext string        // Service-Context-Id; "" = "voice@" + origin realm
	Request        time.Duration // CC-Time asked for in each request; default 300 s
	FailOpen       bool          // the local failure handling (the operator's authorization_failure = open)
	Log            *slog.Logger
	seq            atomic.Uint64
	start          int64
	once           sync.Once
	open           sync.WaitGroup // sessions not yet ended
}

// Wait waits up to max for every session to be ended (their
// CCR-Termination answered or given up): at a stop, before the peers
// are told goodbye.
func (c *CreditControl) Wait(max time.Duration) bool {
	done := make(chan struct{})
	go func() { c.open.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(max):
		return false
	}
}

type ccSession struct {
	cc     *CreditControl
	id     string
	r      call.AuthzRequest
	mu     sync.Mutex
	number uint32
	ccfh   int           // the failure handling in force
	used   time.Duration // the call's time so far
	told   uint32        // seconds of it a server acknowledged
	ended  bool
	// over ends with the session: an update still waiting (or about to
	// fail over) is given up, never sent after the Termination.
	over context.Context
	end  context.CancelFunc
}

// Authorize implements core/call's Authorizer: CCR-Initial.
func (c *CreditControl) Authorize(ctx context.Context, r call.AuthzRequest) (call.Grant, error) {
	c.once.Do(func() { c.start = time.Now().Unix() })
	s := &ccSession{cc: c, r: r, id: fmt.Sprintf("%s;%d;%d", c.ID.OriginHost, c.start, c.seq.Add(1)), ccfh: ccfhRetryAndTerminate}
	if c.FailOpen {
		s.ccfh = ccfhContinue
	}
	a, err := c.Client.Send(ctx, s.request(ccInitial, 0, 0))
	if err != nil {
		return call.Grant{}, err
	}
	g, err := s.grant(a)
	if err == nil && g.Allow {
		c.open.Add(1) // until End
		s.over, s.end = context.WithCancel(context.Background())
		g.Session = s
	}
	return g, err
}

// Extend implements core/call's AuthzSession: CCR-Update.
func (s *ccSession) Extend(ctx context.Context, used time.Duration) (call.Grant, error) {
	s.mu.Lock()
	s.number++
	n, ccfh := s.number, s.ccfh
	secs := s.use(used)
	s.mu.Unlock()
	send := s.cc.Client.Send
	if ccfh == ccfhTerminate {
		// "Granted only as long as there is a connection to the
		// credit-control server" (RFC 4006 §8.14): no failover.
		send = s.cc.Client.SendOne
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.over, cancel)()
	a, err := send(ctx, s.request(ccUpdate, n, secs))
	if err != nil {
		return call.Grant{}, err
	}
	s.reported(secs)
	return s.grant(a)
}

// use adds used to the session's time and returns the whole seconds to
// report: what has begun (50 ms of timer lateness aside), less what a
// server has already been told of. Reports add up to the call's time
// rounded up once, not once per report. Caller holds s.mu.
func (s *ccSession) use(used time.Duration) uint32 {
	s.used += used
	total := uint32(max(0, (s.used-50*time.Millisecond+time.Second-1)/time.Second))
	return total - min(total, s.told)
}

// reported counts secs as known to the server: it answered the report
// (unanswered, they go again with the next).
func (s *ccSession) reported(secs uint32) {
	s.mu.Lock()
	s.told += secs
	s.mu.Unlock()
}

// End implements core/call's AuthzSession: CCR-Termination.
func (s *ccSession) End(used time.Duration) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.end()
	s.number++
	n := s.number
	secs := s.use(used)
	s.mu.Unlock()
	defer s.cc.open.Done()
	// Every peer gets its Tx: the used time is worth the wait.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(s.cc.Client.Peers))*s.cc.Client.tx()+time.Second)
	defer cancel()
	a, err := s.cc.Client.Send(ctx, s.request(ccTermination, n, secs))
	if err == nil && ResultCode(a) != diam.Success {
		err = fmt.Errorf("Result-Code %d", ResultCode(a))
	}
	if err != nil && s.cc.Log != nil {
		s.cc.Log.Warn("credit control: the end of a session was not acknowledged", "session", s.id, "err", err)
	}
}

// request builds a CCR with used seconds (the Initial: none).
func (s *ccSession) request(kind int, number uint32, used uint32) *diam.Message {
	c := s.cc
	m := diam.NewRequest(diam.CreditControl, 4, dict.Default)
	m.NewAVP(avp.SessionID, avp.Mbit, 0, datatype.UTF8String(s.id))
	m.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity(c.ID.OriginHost))
	m.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity(c.ID.OriginRealm))
	m.NewAVP(avp.DestinationRealm, avp.Mbit, 0, datatype.DiameterIdentity(c.ID.DestinationRealm))
	m.NewAVP(avp.AuthApplicationID, avp.Mbit, 0, datatype.Unsigned32(4))
	ctxID := c.ServiceContext
	if ctxID == "" {
		ctxID = "voice@" + c.ID.OriginRealm
	}
	m.NewAVP(avp.ServiceContextID, avp.Mbit, 0, datatype.UTF8String(ctxID))
	m.NewAVP(avp.CCRequestType, avp.Mbit, 0, datatype.Enumerated(kind))
	m.NewAVP(avp.CCRequestNumber, avp.Mbit, 0, datatype.Unsigned32(number))
	m.NewAVP(avp.EventTimestamp, avp.Mbit, 0, datatype.Time(time.Now()))
	user := s.r.Calling
	m.NewAVP(avp.SubscriptionID, avp.Mbit, 0, &diam.GroupedAVP{AVP: []*diam.AVP{
		diam.NewAVP(avp.SubscriptionIDType, avp.Mbit, 0, datatype.Enumerated(0)), // END_USER_E164
		diam.NewAVP(avp.SubscriptionIDData, avp.Mbit, 0, datatype.UTF8String(user)),
	}})
	if s.r.Account != "" {
		m.NewAVP(avp.UserName, avp.Mbit, 0, datatype.UTF8String(s.r.Account))
	}
	// Not an RFC 4006 AVP: no M bit, so that a server may ignore it.
	m.NewAVP(avp.CalledStationID, 0, 0, datatype.UTF8String(s.r.Called))
	if kind != ccTermination {
		ask := c.Request
		if ask <= 0 {
			ask = 300 * time.Second
		}
		m.NewAVP(avp.RequestedServiceUnit, avp.Mbit, 0, &diam.GroupedAVP{AVP: []*diam.AVP{
			diam.NewAVP(avp.CCTime, avp.Mbit, 0, datatype.Unsigned32(ask/time.Second)),
		}})
	}
	if kind != ccInitial {
		m.NewAVP(avp.UsedServiceUnit, avp.Mbit, 0, &diam.GroupedAVP{AVP: []*diam.AVP{
			diam.NewAVP(avp.CCTime, avp.Mbit, 0, datatype.Unsigned32(used)),
		}})
	}
	return m
}

// grant reads a CCA: 2001 with Granted-Service-Unit CC-Time (none: no
// limit), Validity-Time, Final-Unit-Indication (no more after this), and
// Credit-Control-Failure-Handling (what a later request without an
// answer does); 4010/4012/5030 refuse; anything else is an error (the
// operator's authorization_failure applies).
func (s *ccSession) grant(a *diam.Message) (call.Grant, error) {
	switch rc := ResultCode(a); rc {
	case diam.Success:
	case resultCreditLimitReached, resultEndUserServiceDenied:
		return call.Grant{Status: 403, Cause: 21, Reason: fmt.Sprintf("credit control %d", rc)}, nil
	case resultUserUnknown:
		return call.Grant{Status: 403, Cause: 21, Reason: "credit control: user unknown"}, nil
	default:
		return call.Grant{}, fmt.Errorf("credit control answered Result-Code %d", rc)
	}
	g := call.Grant{Allow: true}
	if gsu := findGrouped(a, avp.GrantedServiceUnit); gsu != nil {
		for _, x := range gsu.AVP {
			if x.Code == avp.CCTime {
				if v, ok := x.Data.(datatype.Unsigned32); ok {
					g.Duration = time.Duration(v) * time.Second
				}
			}
		}
	}
	g.Final = findAVP(a, avp.FinalUnitIndication) != nil
	if v := findAVP(a, avp.ValidityTime); v != nil {
		if d, ok := v.Data.(datatype.Unsigned32); ok {
			g.Validity = time.Duration(d) * time.Second
		}
	}
	s.mu.Lock()
	if v, err := a.FindAVP(avp.CreditControlFailureHandling, 0); err == nil {
		if e, ok := v.Data.(datatype.Enumerated); ok && e >= ccfhTerminate && e <= ccfhRetryAndTerminate {
			s.ccfh = int(e) // in force until an answer says otherwise
		}
	}
	g.FailOpen = s.ccfh == ccfhContinue
	s.mu.Unlock()
	return g, nil
}

// findGrouped finds a grouped AVP at the top of a or in its
// Multiple-Services-Credit-Control.
func findGrouped(a *diam.Message, code uint32) *diam.GroupedAVP {
	if v := findAVP(a, code); v != nil {
		if g, ok := v.Data.(*diam.GroupedAVP); ok {
			return g
		}
	}
	return nil
}

// findAVP finds an AVP at the top of a or in its
// Multiple-Services-Credit-Control (where servers of 3GPP's Gy put
// Granted-Service-Unit and Validity-Time).
func findAVP(a *diam.Message, code uint32) *diam.AVP {
	if v, err := a.FindAVP(code, 0); err == nil && v != nil {
		return v
	}
	if v, err := a.FindAVP(avp.MultipleServicesCreditControl, 0); err == nil {
		if mscc, ok := v.Data.(*diam.GroupedAVP); ok {
			for _, x := range mscc.AVP {
				if x.Code == code {
					return x
				}
			}
		}
	}
	return nil
}
