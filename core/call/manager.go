// Package call is the back-to-back user agent (R2, R5): every call is two
// dialogs, the caller's (A) and the callee's (B, one per fork), joined by
// a Call. Requests and responses are rebuilt on the other leg rather than
// forwarded, so neither side sees the other's Via, Contact, Record-Route
// or Call-ID.
package call

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/sipcheck"
)

// Target is one destination of a call.
type Target struct {
	URI       sip.Uri // the Request-URI to send
	Dest      string  // host:port the request goes to
	Transport string  // udp or tcp
	Gateway   string  // gateway name, for records; "" for subscribers
	Calling   string  // calling number to send (From, P-Asserted-Identity); "" = Decision.Calling
	Trusted   bool    // a gateway: it gets P-Asserted-Identity
	Release   func()  // called once when the call is done with this target (its channel); may be nil
	// Outcome, when set, is told once the target's final answer: a 2xx,
	// or the failure (made up by the switch when it gave the target up).
	// It runs under the call's lock: it must only count.
	Outcome func(status int)
	// OC, when set, offers the target RFC 7339 overload control (an oc
	// parameter on our Via) and hears what it asks for.
	OC Feedback
}

// Feedback hears a downstream server's RFC 7339 overload control: shed
// loss per cent of new requests to it for validity; seq orders values.
type Feedback func(loss int, validity time.Duration, seq int64, now time.Time)

// Caller describes who is calling, after authentication.
type Caller struct {
	Number  string
	Account string
	Trunk   string // trusted peer name, "" for subscribers
}

// Hunter offers gateways one after the other (R8): the next is tried
// when the current one fails with a status Failover accepts, or sends
// nothing at all within InviteTimeout.
type Hunter interface {
	Next() (Target, bool)
	Failover(status int) bool
	InviteTimeout() time.Duration
}

// Decision is a router's answer: targets to fork to in parallel, a hunt
// through gateways, a redirect, or a refusal.
type Decision struct {
	Targets  []Target
	Hunt     Hunter
	Redirect string // answer 302 with this Contact URI
	Status   int    // refusal
	Reason   string
	Cause    int    // Q.850 cause for the refusal's Reason header; 0: from Status (RFC 3398)
	Text     string // the Reason header's text; "" = the cause's name
	Called   string // the numbers after analysis, for records
	Calling  string
	Route    string // the route chosen, for records ("" for a subscriber)
}

// Router picks where a call goes (core/routing implements it).
type Router interface {
	Route(called string, caller Caller) Decision
}

// Config of the B2BUA.
type Config struct {
	Host            string // advertised host for Via/Contact
	Port            int    // advertised port
	UDPAddr         string // local UDP listen address requests leave from
	NoAnswerTimeout time.Duration
	// TimerC ends a fork that has sent no response for this long since
	// its last provisional (RFC 3261 §16.6 step 11, > 3 min there): the
	// fork is cancelled and counts as 408. 0: 180 s.
	TimerC         time.Duration
	SessionExpires int // seconds; 0 disables session timers we insert
	MinSE          int
	MaxForwards    int
}

// RFC 3261 §17 timers, from sipgo (sip.SetTimers sets them for the whole
// stack): a transaction the switch gives up is ended 64*T1 later.
func t1() time.Duration          { return sip.T1 }
func t2() time.Duration          { return sip.T2 }
func abandonWait() time.Duration { return 64 * sip.T1 }

// Manager owns every call.
type Manager struct {
	cfg    Config
	wire   Wire
	auth   *auth.Authenticator
	router Router
	bus    *events.Bus
	log    *slog.Logger
	tab    *table

	active  sync.WaitGroup
	closing atomic.Bool
	count   atomic.Int64

	invalidResponses atomic.Int64

	// Hold, when set and true, refuses new calls (503, Q.850 42): a
	// subscriber that must record every call cannot (billing's spool).
	Hold func() bool
	// authz, when set, authorises subscribers' calls (SetAuthz).
	authz atomic.Pointer[authzSetting]
	// repl, when set, hears answered calls for the pair's standby.
	repl atomic.Pointer[Replicator]
	// rescue, when set, takes on the call of a Call-ID (either leg) the
	// other node of the pair answered, and reports whether it did.
	rescue atomic.Pointer[func(callID string) bool]
	// releasedThere, when set, reports whether the other node of the
	// pair released the call of a Call-ID just before this node took
	// over (SetReleasedThere).
	releasedThere atomic.Pointer[func(callID string) bool]
}

type authzSetting struct {
	a        Authorizer
	failOpen bool
}

// SetAuthz makes a authorise subscribers' calls from the next call on
// (nil: none); failOpen lets calls go on, without a limit, when it
// cannot answer (else they are refused: 503, cause 41). Calls already
// authorised keep their session with the authoriser that granted them.
func (m *Manager) SetAuthz(a Authorizer, failOpen bool) {
	m.authz.Store(&authzSetting{a: a, failOpen: failOpen})
}

// InvalidResponses is how many responses were dropped for lacking what
// the call code relies on (To, From, Call-ID, CSeq, Via, a status line).
func (m *Manager) InvalidResponses() int64 { return m.invalidResponses.Load() }

// validResponse reports whether r carries what the call code relies on.
// One that does not is dropped (RFC 3261 §18.1.2) and counted: a callee
// or gateway is as much outside input as a caller.
func (m *Manager) validResponse(r *sip.Response, from string) bool {
	p := sipcheck.Response(r)
	if p == nil {
		return true
	}
	m.invalidResponses.Add(1)
	m.log.Debug("invalid response dropped", "from", from, "reason", p.Reason, "status", r.StatusCode, "src", r.Source())
	m.bus.Publish(&events.Event{Kind: events.MessageInvalid, Cause: "response: " + p.Reason, Source: r.Source()})
	return false
}

// NewManager builds a manager that sends through client.
//
// udp, when not nil, carries everything sent over UDP (the switch's own
// transaction layer, core/sipudp); the rest goes through sipgo.
func NewManager(cfg Config, client *sipgo.Client, udp Wire, a *auth.Authenticator, r Router, bus *events.Bus, log *slog.Logger) *Manager {
	var w Wire = sipgoWire{client}
	if udp != nil {
		w = splitWire{udp: udp, other: w}
	}
	return newManager(cfg, w, a, r, bus, log)
}

func newManager(cfg Config, w Wire, a *auth.Authenticator, r Router, bus *events.Bus, log *slog.Logger) *Manager {
	if cfg.TimerC <= 0 {
		cfg.TimerC = 180 * time.Second
	}
	return &Manager{cfg: cfg, wire: w, auth: a, router: r, bus: bus, log: log, tab: newTable()}
}

// Known reports whether callID is one of our calls' (either leg): an
// INVITE with it is a copy or a loop, never a new call to refuse.
func (m *Manager) Known(callID string) bool { return m.tab.get(callID) != nil }

// Active returns the number of calls in progress.
func (m *Manager) Active() int { return int(m.count.Load()) }

// Shutdown refuses new calls and releases the ones in progress (BYE or
// CANCEL on both legs), waiting at most until ctx ends.
func (m *Manager) Shutdown(ctx context.Context) {
	m.closing.Store(true)
	for _, c := range m.tab.calls() {
		c.terminate("switch shutdown", events.SideSwitch, 503, 41)
	}
	done := make(chan struct{})
	go func() { m.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// track and untrack count calls without a lock shared between calls;
// untrack runs once per call (from Call.end).
func (m *Manager) track() {
	m.count.Add(1)
	m.active.Add(1)
}

func (m *Manager) untrack() {
	m.count.Add(-1)
	m.active.Done()
}

func (m *Manager) contact() *sip.ContactHeader {
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: m.cfg.Host, Port: m.cfg.Port}}
}

func (m *Manager) via(transport string) *sip.ViaHeader {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(transport),
		Host: m.cfg.Host, Port: m.cfg.Port, Params: sip.NewParams()}
	v.Params.Add("branch", sip.GenerateBranchN(16))
	return v
}

// prepare sets where req goes and that UDP leaves from our listening
// socket (so that NATs and peers see one address).
func (m *Manager) prepare(req *sip.Request, dest, transport string) {
	req.SetDestination(dest)
	req.SetTransport(strings.ToUpper(transport))
	if strings.EqualFold(transport, "udp") && m.cfg.UDPAddr != "" {
		host, port, err := net.SplitHostPort(m.cfg.UDPAddr)
		if err == nil {
			p, _ := strconv.Atoi(port)
			req.Laddr = sip.Addr{IP: net.ParseIP(host), Port: p, Hostname: host}
		}
	}
}

// send starts a client transaction for a fully built request. It may
// open a connection: never under a call's lock.
func (m *Manager) send(req *sip.Request) (sip.ClientTransaction, error) {
	return m.wire.Request(req)
}

func randomID() string { return sip.GenerateTagN(20) }
