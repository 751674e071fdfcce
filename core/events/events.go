// Package events is the in-process bus on which call control publishes
// what happens to calls and registrations. Billing, accounting,
// statistics and replication subscribe; core knows none of them.
package events

import (
	"sync/atomic"
	"time"
)

// Kind names an event type.
type Kind uint8

// Event kinds.
const (
	CallAttempt       Kind = iota + 1 // an INVITE was accepted for routing
	CallRinging                       // first 18x (ringing or early media) toward the caller
	CallAnswer                        // 2xx relayed to the caller
	CallRelease                       // the call ended, with cause and side
	Registered                        // a binding was added or refreshed
	Unregistered                      // a binding was removed or expired
	GatewayState                      // a gateway went up, down or was locked (Gateway, State)
	TrunkRegistration                 // a registration to an upstream carrier changed state (Gateway, State)
	MessageInvalid                    // a message from the network was refused or dropped as malformed (Cause: why, Source)
	AuthBan                           // authentication failures banned a source or user (Source, AOR, State: banned/unbanned, Until, Level)
	SourceBlock                       // a source went over its request rate and is blocked, or its block ended (Source, State: blocked/unblocked, Until)
	Overload                          // the switch started or stopped refusing new calls for load (State: start/end/level, Level: percent refused, Cause: what measured it)
	CDRSpool                          // the CDR spool cannot be written, or can again (State: failing/ok, Cause: the error)
	CDRDelivery                       // closed CDR files cannot be pushed to the billing centre, or can again (State: failing/ok, Cause)
	CDRDisk                           // the CDR directory's file system passed its use threshold, or fell back (State: high/ok, Level: percent used)
	CallRecord                        // a call's detail record is durable (hot billing): CallID, Detail holds the record
	AAAServer                         // an AAA server stopped answering or answers again (Source: address, State: down/up, Cause: radius/diameter)
	AAADropped                        // an AAA answer failed verification and was dropped (Source: address, Cause: why)
	AAADelivery                       // accounting cannot be delivered, or can again (State: failing/ok, Cause: the error)
	HARole                            // the node's role in its pair changed (State: MASTER, BACKUP, FAULT, STOP)
	CallAdopt                         // this node took over an answered call from its pair's other node (CallID, Record: billing's open record, or none)
	CallHandover                      // this node let an answered call go to the node that took over (CallID): no record here
)

func (k Kind) String() string {
	switch k {
	case CallAttempt:
		return "attempt"
	case CallRinging:
		return "ringing"
	case CallAnswer:
		return "answer"
	case CallRelease:
		return "release"
	case Registered:
		return "registered"
	case Unregistered:
		return "unregistered"
	case GatewayState:
		return "gateway-state"
	case TrunkRegistration:
		return "trunk-registration"
	case MessageInvalid:
		return "message-invalid"
	case AuthBan:
		return "auth-ban"
	case SourceBlock:
		return "source-block"
	case Overload:
		return "overload"
	case CDRSpool:
		return "cdr-spool"
	case CDRDelivery:
		return "cdr-delivery"
	case CDRDisk:
		return "cdr-disk"
	case CallRecord:
		return "call-record"
	case AAAServer:
		return "aaa-server"
	case AAADropped:
		return "aaa-dropped"
	case AAADelivery:
		return "aaa-delivery"
	case HARole:
		return "ha-role"
	case CallAdopt:
		return "call-adopt"
	case CallHandover:
		return "call-handover"
	}
	return "unknown"
}

// Side says which end caused a release.
type Side uint8

// Sides.
const (
	SideNone   Side = iota
	SideCaller      // the A party
	SideCallee      // the B party or gateway
	SideSwitch      // the softswitch itself (timer, error, shutdown)
)

func (s Side) String() string {
	switch s {
	case SideCaller:
		return "caller"
	case SideCallee:
		return "callee"
	case SideSwitch:
		return "switch"
	}
	return "none"
}

// Event is one happening. Fields not meaningful for a kind are zero.
type Event struct {
	Kind     Kind
	Time     time.Time
	CallID   string // the caller-side Call-ID
	Calling  string // calling number as received
	Called   string // called number as received
	Account  string
	Status   int    // final SIP status of a release (200 for a normal end of an answered call)
	Q850     int    // Q.850 cause of a release (16 normal clearing, 102 timer expiry, ...)
	Cause    string // release cause text, e.g. "BYE", "no answer", "session timer expired"
	Side     Side
	Answered bool      // for releases: whether the call had been answered
	Setup    time.Time // seizure time, for releases
	Answer   time.Time // answer time, for releases of answered calls
	AOR      string    // registrations: the number
	Delta    int       // registrations: change in the number of bindings
	Gateway  string    // gateway or trunk registration name; for calls, the gateway that took it
	State    string    // gateway: up, down, locked; trunk registration: registered, failed
	// Numbers as sent on the callee side, after manipulation (calls).
	CalledSent, CallingSent string
	Source                  string    // invalid messages, bans: the peer's address (a ban: address or prefix)
	Until                   time.Time // bans: when it ends
	Level                   int       // bans: how many bans in a row (the duration escalates with it)
	Detail                  any       // a kind's own payload (CallRecord: billing's record), for subscribers that know it

	// Calls, for records (billing): who the caller is, where the call
	// went, and what it carried.
	Trunk        string    // the trusted peer the call came from ("" for a subscriber)
	Route        string    // the route used ("" for a subscriber)
	Attempts     int       // gateway (fork) attempts made
	Ringing      time.Time // first ringing (18x), for releases
	Offer        []byte    // the caller's SDP offer (answers, and releases while the call still holds it), for subscribers to read off the call path
	AnswerSDP    []byte    // the answer's SDP (answers), likewise
	AAAClass     string    // attempts: the Class the call's authorisation gave (RADIUS), for accounting
	CalleeCallID string    // the Call-ID of the callee leg (the answering or last fork)
	Record       []byte    // adoptions: billing's open record of the call as the other node kept it (binary)
}

// Handler receives events. It runs on the publisher's goroutine, on the
// SIP message path: it must not block (hand work to a queue of your own).
type Handler func(*Event)

// Bus fans events out to subscribers. Subscribing is done at start-up;
// publishing is lock-free.
type Bus struct {
	subs atomic.Pointer[[]Handler]
}

// New returns an empty bus.
func New() *Bus {
	b := &Bus{}
	b.subs.Store(&[]Handler{})
	return b
}

// Subscribe adds h; safe at any time, cheap to publish after.
func (b *Bus) Subscribe(h Handler) {
	for {
		old := b.subs.Load()
		n := make([]Handler, len(*old), len(*old)+1)
		copy(n, *old)
		n = append(n, h)
		if b.subs.CompareAndSwap(old, &n) {
			return
		}
	}
}

// Publish delivers e to every subscriber in order.
func (b *Bus) Publish(e *Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for _, h := range *b.subs.Load() {
		h(e)
	}
}
