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
	Duration time.Duration // the call is released this long after its answer (or the extension's report); 0: no limit
	Class    string        // echoed in the call's accounting (RADIUS Class)
	// Session, when set, follows the call (Diameter credit control):
	// asked for more before Duration is used up, unless Final, and told
	// of the end. FailOpen: when it cannot answer an extension, the call
	// goes on without a limit (else it is released at once). Validity:
	// ask again this long after this answer even if granted time is left
	// (RFC 4006 Validity-Time); 0: not before it runs out.
	Session  AuthzSession
	Final    bool
	FailOpen bool
	Validity time.Duration
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

// AuthorizeWait bounds an authorisation, failover included (the
// authoriser's own waits are shorter: RADIUS's tries, Diameter's Tx).
const AuthorizeWait = 30 * time.Second

// authorize asks az about a subscriber's call. ok false: the call
// must not go on, and d says how to refuse it (d.Status 0: the caller
// cancelled meanwhile and the stack answered).
func (m *Manager) authorize(req *sip.Request, tx sip.ServerTransaction, caller Caller, called string, az *authzSetting) (grant Grant, d Decision, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), AuthorizeWait)
	defer cancel()
	safe.Go("INVITE authorisation wait", func() {
		select {
		case <-tx.Done():
			cancel()
		case <-ctx.Done():
		}
	})
	g, err := az.a.Authorize(ctx, AuthzRequest{CallID: req.CallID().Value(), Calling: caller.Number, Called: called,
		Account: caller.Account, Source: req.Source()})
	if tx.Err() != nil {
		return Grant{}, Decision{}, false
	}
	if err != nil {
		if az.failOpen {
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
	c.reported = c.answered
	if c.grant > 0 {
		c.deadline = c.answered.Add(c.grant)
	}
	c.armGrant()
}

// armGrant sets the timer of the current grant: the release at its end
// when it is the last (or there is no session to ask), else the
// extension a little before, or when the grant's validity ends (RFC 4006
// Validity-Time), whichever comes first. Caller holds c.mu.
func (c *Call) armGrant() {
	c.stopTimer(&c.limit)
	if c.authz == nil || c.grantFinal {
		if !c.deadline.IsZero() {
			c.limit = time.AfterFunc(time.Until(c.deadline), c.timeLimit)
		}
		return
	}
	next, ok := time.Duration(0), false
	if !c.deadline.IsZero() {
		// Ask early enough for the answer to come back in time.
		next, ok = time.Until(c.deadline)-min(5*time.Second, c.grant/4), true
	}
	if !c.validUntil.IsZero() && (!ok || time.Until(c.validUntil) < next) {
		next, ok = time.Until(c.validUntil), true
	}
	if ok {
		c.limit = time.AfterFunc(max(0, next), c.extendGrant)
	}
}

// extendGrant reports the time used and asks the session for more, off
// the lock. The new grant counts from the report: what was left of the
// old one is given back (the server has charged what was used).
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
	c.stopTimer(&c.limit)
	if !c.grantFailOpen && !c.deadline.IsZero() {
		// Unless failures are to be ignored (CONTINUE), what is granted
		// may run out while the server is asked.
		c.limit = time.AfterFunc(time.Until(c.deadline), c.timeLimit)
	}
	c.unlock()
	ctx, cancel := context.WithTimeout(context.Background(), AuthorizeWait)
	g, err := s.Extend(ctx, used)
	cancel()
	c.lock()
	defer c.unlock()
	if c.st != confirmed || c.authz != s {
		return
	}
	switch {
	case err != nil && c.grantFailOpen:
		c.m.log.Warn("call credit cannot be extended: the call goes on without a limit (CONTINUE)", "call", c.a.callID, "err", err)
		c.stopTimer(&c.limit)
		c.deadline, c.validUntil = time.Time{}, time.Time{}
	case err != nil:
		// TERMINATE, RETRY_AND_TERMINATE (RFC 4006 §5.7): no server
		// answered, so the service ends now.
		c.m.log.Warn("call credit cannot be extended: the call is released", "call", c.a.callID, "err", err)
		c.release("credit control failed", `Q.850;cause=16;text="credit control unavailable"`)
	case !g.Allow:
		// No more: what was left of the last grant runs out.
		c.m.log.Info("call credit refused: the call ends when its granted time runs out", "call", c.a.callID, "reply", g.Reason)
		if c.deadline.IsZero() {
			c.release("time limit", `Q.850;cause=16;text="credit refused"`)
			return
		}
		c.grantFinal = true
		c.armGrant()
	default:
		c.touch()
		c.grant, c.grantFinal, c.grantFailOpen = g.Duration, g.Final, g.FailOpen
		c.deadline, c.validUntil = time.Time{}, time.Time{}
		if g.Duration > 0 {
			c.deadline = now.Add(g.Duration)
		}
		if g.Validity > 0 {
			c.validUntil = time.Now().Add(g.Validity)
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
	c.release("time limit", `Q.850;cause=16;text="granted time used up"`)
}

// release ends an answered call for its authorisation: BYE to both legs
// with reason, the record's end why. Caller holds c.mu.
func (c *Call) release(why, reason string) {
	c.byeBoth(nil, reason)
	c.end(why, events.SideSwitch, 200, 16)
}
