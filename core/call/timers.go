package call

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/q850"
)

// retransmit2xx resends the 2xx res on leg l until the ACK with CSeq seq
// arrives (RFC 3261 §13.3.1.4: the TU, not the transaction, owns this):
// T1 doubling up to T2 over UDP, nothing over TCP. With no ACK after
// 64*T1 the leg's peer is gone: both legs get BYE and the call is
// released ("no ACK"). Caller holds c.mu.
func (c *Call) retransmit2xx(l *leg, res *sip.Response, seq uint32) {
	c.stopTimer(&l.retrans)
	l.retransSeq = seq
	reliable := l.transport != "udp"
	interval := t1()
	deadline := time.Now().Add(abandonWait())
	var tick func()
	tick = func() {
		defer c.guard("call 2xx retransmission")
		c.lock()
		defer c.unlock()
		if l.retrans == nil || c.st != confirmed {
			return
		}
		if !time.Now().Before(deadline) {
			l.retrans = nil
			c.m.log.Info("no ACK for our 2xx: releasing the call", "call", c.a.callID, "caller_side", l.isA)
			c.byeBoth(nil, q850.Reason(102, "no ACK"))
			side := events.SideCallee
			if l.isA {
				side = events.SideCaller
			}
			c.end("no ACK", side, 408, 102)
			return
		}
		if !reliable {
			c.write(res)
		}
		interval = min(2*interval, t2())
		next := interval
		if reliable || time.Now().Add(next).After(deadline) {
			next = time.Until(deadline)
		}
		l.retrans = time.AfterFunc(next, tick)
	}
	first := interval
	if reliable {
		first = abandonWait()
	}
	l.retrans = time.AfterFunc(first, tick)
}

// acked stops the 2xx retransmission of leg l when seq is its ACK's CSeq.
// Caller holds c.mu.
func (c *Call) acked(l *leg, seq uint32) bool {
	if l.retrans == nil || seq != l.retransSeq {
		return false
	}
	c.stopTimer(&l.retrans)
	return true
}

// maxSessionExpires bounds a peer's Session-Expires: a day. Beyond it a
// dead call would be billed too long, and a huge value would overflow a
// time.Duration (and end the call at once).
const maxSessionExpires = 86400

// parseSE reads "Session-Expires: 1800;refresher=uac". The interval is
// clamped to maxSessionExpires.
func parseSE(v string) (int, string) {
	parts := strings.Split(v, ";")
	n, err := strconv.ParseUint(strings.TrimSpace(parts[0]), 10, 64)
	if err != nil && !isRangeErr(err) || n == 0 {
		return 0, ""
	}
	if n > maxSessionExpires || err != nil {
		n = maxSessionExpires
	}
	ref := ""
	for _, p := range parts[1:] {
		kv := strings.SplitN(strings.TrimSpace(p), "=", 2)
		if len(kv) == 2 && strings.EqualFold(strings.TrimSpace(kv[0]), "refresher") {
			ref = strings.ToLower(strings.TrimSpace(kv[1]))
		}
	}
	return int(n), ref
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// negotiateTimer settles session timers (RFC 4028) from the callee's 2xx
// r and writes the caller's view into res. Caller holds c.mu.
func (c *Call) negotiateTimer(r *sip.Response, res *sip.Response) {
	interval, ref := parseSE(headerValue(r, "Session-Expires"))
	calleeRefreshes := interval > 0 && ref == "uas"
	if interval == 0 {
		if v := headerValue(c.aInvite, "Session-Expires"); v != "" {
			interval, _ = parseSE(v)
		} else {
			interval = c.m.cfg.SessionExpires
		}
	}
	if interval <= 0 {
		return
	}
	if interval < c.m.cfg.MinSE {
		interval = c.m.cfg.MinSE
	}
	c.seInterval = interval
	for res.RemoveHeader("Session-Expires") {
	}
	callerRefreshes := false
	if c.aTimer {
		role := "uas" // toward the caller, uas means the callee side refreshes
		if !calleeRefreshes {
			role = "uac"
			callerRefreshes = true
		}
		res.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(interval)+";refresher="+role))
		if !hasOption(res, "Require", "timer") {
			res.AppendHeader(sip.NewHeader("Require", "timer"))
		}
	} else {
		stripOption(res, "Require", "timer")
	}
	if !calleeRefreshes && !callerRefreshes {
		// Nobody else will: the switch refreshes both legs itself.
		c.refreshSides = []*leg{c.a, c.b}
		c.seRefresh = time.AfterFunc(time.Duration(interval)*time.Second/2, c.refreshNow)
	}
	c.armWatchdog()
}

// armWatchdog (re)starts the expiry timer: if no refresh is seen within
// the interval less min(32 s, interval/3), the call is released (RFC 4028 §10).
// Not when the switch refreshes both legs itself: it expects no refresh,
// and its own refresh's failure ends the call (refreshNow); a held call
// keeps one runtime timer less.
func (c *Call) armWatchdog() {
	if c.seInterval <= 0 || len(c.refreshSides) > 0 {
		return
	}
	d := time.Duration(c.seInterval) * time.Second
	margin := d / 3
	if margin > 32*time.Second {
		margin = 32 * time.Second
	}
	c.stopTimer(&c.seWatchdog)
	c.seWatchdog = time.AfterFunc(d-margin, c.sessionExpired)
}

// sessionExpired releases a call whose session was not refreshed in time.
func (c *Call) sessionExpired() {
	defer c.guard("call session timer")
	c.lock()
	defer c.unlock()
	if c.st != confirmed {
		return
	}
	c.m.log.Info("session timer expired", "call", c.a.callID)
	c.byeBoth(nil, q850.Reason(102, "session timer expired"))
	c.end("session timer expired", events.SideSwitch, 408, 102)
}

// refreshed notes a successful refresh seen on the path. Caller holds c.mu.
func (c *Call) refreshed(r *sip.Response) {
	if v := headerValue(r, "Session-Expires"); v != "" {
		if n, _ := parseSE(v); n > 0 {
			c.seInterval = n
		}
	}
	if c.st == confirmed {
		c.armWatchdog()
	}
}

// refreshNow sends our own session refresh (UPDATE without a body) to the
// legs nobody else refreshes; a failure ends the call.
func (c *Call) refreshNow() {
	defer c.guard("call session refresh")
	reqs := func() []*sip.Request {
		c.lock()
		defer c.unlock()
		if c.st != confirmed {
			return nil
		}
		var reqs []*sip.Request
		for _, l := range c.refreshSides {
			req := l.newRequest(sip.UPDATE, c.m)
			req.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(c.seInterval)+";refresher=uac"))
			req.AppendHeader(sip.NewHeader("Supported", "timer"))
			req.SetBody(nil)
			reqs = append(reqs, req)
		}
		return reqs
	}()
	if reqs == nil {
		return
	}
	ok := true
	for _, req := range reqs {
		tx, err := c.m.send(req)
		if err != nil {
			ok = false
			continue
		}
		r := c.m.drain(tx)
		// 405/501: the peer does not do UPDATE but answered, so it lives.
		if r == nil || r.StatusCode == 408 || r.StatusCode == 481 {
			ok = false
		}
	}
	c.lock()
	defer c.unlock()
	if c.st != confirmed {
		return
	}
	if !ok {
		c.byeBoth(nil, q850.Reason(102, "session refresh failed"))
		c.end("session refresh failed", events.SideSwitch, 408, 102)
		return
	}
	c.armWatchdog()
	c.seRefresh = time.AfterFunc(time.Duration(c.seInterval)*time.Second/2, c.refreshNow)
}
