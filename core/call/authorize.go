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
	// When refused: the status and Q.850 cause to answer with (0: 403,
	// 21 call rejected), and a text for the log.
	Status int
	Cause  int
	Reason string
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
