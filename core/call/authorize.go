package call

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/safe"
)

// Authorizer decides whether a subscriber's call may go on, and for how
// long (aaa/: a RADIUS server for calling-card users, a Diameter OCS).
// It may wait on the network: it is asked on the INVITE's own goroutine,
// under no lock, and ctx ends when the caller cancels.
type Authorizer interface {
	Authorize(ctx context.Context, r AuthzRequest) (Grant, error)
}

// AuthzRequest is what the authoriser is told about a call.
type AuthzRequest struct {
	CallID  string
	Calling string // the subscriber's number
	Called  string // as received
	Account string
	Source  string // the request's source address
}

// Grant is an authoriser's answer.
type Grant struct {
	Allow    bool
	Duration time.Duration // the call is released this long after its answer; 0: no limit
	Class    string        // echoed in the call's accounting (RADIUS Class)
	// Session, when set, follows the call (Diameter credit control):
	// asked for more before Duration is used up, unless Final, and told
	// of the end. FailOpen: when it cannot answer an extension, the call
	// goes on without a limit (else it is released).
	Session  AuthzSession
	Final    bool
	FailOpen bool
	// When refused: the status and Q.850 cause to answer with (0: 403,
	// 21 call rejected), and a text for the log.
	Status int
	Cause  int
	Reason string
}

// AuthzSession follows a call whose time is granted piece by piece.
type AuthzSession interface {
	// Extend reports the time used since the last report and asks for
	// more; the call goes on meanwhile. It may wait on the network.
	Extend(ctx context.Context, used time.Duration) (Grant, error)
	// End reports the call's end and the time used since the last
	// report (0 for a call never answered). It may wait on the network;
	// it is called on a goroutine of its own.
	End(used time.Duration)
}

// authorizeWait bounds an authorisation (failover included).
const authorizeWait = 15 * time.Second

// authorize asks m.Authz about a subscriber's call. ok false: the call
// must not go on, and d says how to refuse it (d.Status 0: the caller
// cancelled meanwhile and the stack answered).
func (m *Manager) authorize(req *sip.Request, tx sip.ServerTransaction, caller Caller, called string) (grant Grant, d Decision, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), authorizeWait)
	defer cancel()
	safe.Go("INVITE authorisation wait", func() {
		select {
		case <-tx.Done():
			cancel()
		case <-ctx.Done():
		}
	})
	g, err := m.Authz.Authorize(ctx, AuthzRequest{CallID: req.CallID().Value(), Calling: caller.Number, Called: called,
		Account: caller.Account, Source: req.Source()})
	if tx.Err() != nil {
		return Grant{}, Decision{}, false
	}
	if err != nil {
		if m.AuthzFailOpen {
			m.log.Warn("call authorisation unavailable: the call goes on without a limit (fail open)",
				"call", req.CallID().Value(), "err", err)
			return Grant{Allow: true}, Decision{}, true
		}
		m.log.Warn("call authorisation unavailable: the call is refused (fail closed)", "call", req.CallID().Value(), "err", err)
		return Grant{}, Decision{Status: 503, Reason: "Service Unavailable", Cause: 41}, false
	}
	if !g.Allow {
		d := Decision{Status: g.Status, Reason: reasonPhrase(g.Status), Cause: g.Cause}
		if d.Status == 0 {
			d.Status, d.Reason = 403, "Forbidden"
		}
		if d.Cause == 0 {
			d.Cause = 21
		}
		m.log.Info("call refused by its authorisation", "call", req.CallID().Value(), "calling", caller.Number,
			"status", d.Status, "reply", g.Reason)
		return Grant{}, d, false
	}
	return g, Decision{}, true
}

// startGrant arms the granted time at the answer. Caller holds c.mu.
func (c *Call) startGrant() {
	if c.grant <= 0 {
		return
	}
	c.reported = c.answered
	c.deadline = c.answered.Add(c.grant)
	c.armGrant()
}

// armGrant sets the timer of the current grant: the release at its end
// when it is the last (or there is no session to ask), else the
// extension a little before. Caller holds c.mu.
func (c *Call) armGrant() {
	c.stopTimer(&c.limit)
	left := time.Until(c.deadline)
	if c.authz == nil || c.grantFinal {
		c.limit = time.AfterFunc(left, c.timeLimit)
		return
	}
	// Ask early enough for the answer to come back in time.
	early := min(5*time.Second, c.grant/4)
	c.limit = time.AfterFunc(max(0, left-early), c.extendGrant)
}

// extendGrant asks the session for more time, off the lock, and arms
// what it answered.
func (c *Call) extendGrant() {
	defer c.guard("call grant extension")
	c.lock()
	if c.st != confirmed || c.authz == nil {
		c.unlock()
		return
	}
	now := time.Now()
	used := now.Sub(c.reported)
	c.reported = now
	s := c.authz
	if !c.grantFailOpen {
		// Failure handling TERMINATE: without an answer by then, the
		// call ends when what is granted runs out (an answer re-arms).
		c.limit = time.AfterFunc(time.Until(c.deadline), c.timeLimit)
	}
	c.unlock()
	ctx, cancel := context.WithTimeout(context.Background(), authorizeWait)
	g, err := s.Extend(ctx, used)
	cancel()
	c.lock()
	defer c.unlock()
	if c.st != confirmed {
		return
	}
	switch {
	case err != nil && c.grantFailOpen:
		c.m.log.Warn("call credit cannot be extended: the call goes on without a limit (CONTINUE)", "call", c.a.callID, "err", err)
		c.stopTimer(&c.limit)
	case err != nil:
		c.m.log.Warn("call credit cannot be extended: the call ends at its granted time", "call", c.a.callID, "err", err)
		c.grantFinal = true
		c.armGrant()
	case !g.Allow:
		c.grantFinal = true // no more: what is granted runs out
		c.armGrant()
	default:
		c.grant, c.grantFinal, c.grantFailOpen = g.Duration, g.Final, g.FailOpen
		c.deadline = c.deadline.Add(g.Duration)
		if g.Duration <= 0 {
			c.stopTimer(&c.limit) // no limit from now on
			return
		}
		c.armGrant()
	}
}

// endGrant tells the session of the call's end. Caller holds c.mu.
func (c *Call) endGrant() {
	s := c.authz
	if s == nil {
		return
	}
	c.authz = nil
	var used time.Duration
	if !c.answered.IsZero() && !c.reported.IsZero() {
		used = time.Since(c.reported)
	}
	safe.Go("call credit end", func() { s.End(used) })
}

// timeLimit releases an answered call whose granted duration is used up:
// BYE to both legs with the reason, the record's end "time limit".
func (c *Call) timeLimit() {
	defer c.guard("call time limit")
	c.lock()
	defer c.unlock()
	if c.st != confirmed {
		return
	}
	c.m.log.Info("granted time used up: call released", "call", c.a.callID, "granted", c.grant.String())
	c.byeBoth(nil, `Q.850;cause=16;text="granted time used up"`)
	c.end("time limit", events.SideSwitch, 200, 16)
}
