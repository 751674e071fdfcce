package call

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
)

// RFC 3261 timers for our own 2xx retransmission to the caller.
const (
	t1 = 500 * time.Millisecond
	t2 = 4 * time.Second
)

// retransmit2xx resends the caller's 2xx until its ACK arrives (RFC 3261
// §13.3.1.4: the TU, not the transaction, owns this). Over TCP nothing is
// resent but the 64*T1 limit still applies. Caller holds c.mu.
func (c *Call) retransmit2xx(res *sip.Response) {
	reliable := c.a.transport != "udp"
	interval := t1
	deadline := time.Now().Add(64 * t1)
	var tick func()
	tick = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ackedA || c.st != confirmed {
			return
		}
		if time.Now().After(deadline) {
			// No ACK: the caller is gone. Confirm and release the callee.
			c.byeBoth(c.a, switchReason("no ACK"))
			c.end("no ACK", events.SideCaller, 408)
			return
		}
		if !reliable {
			c.m.client.TransportLayer().WriteMsg(res)
		}
		interval *= 2
		if interval > t2 {
			interval = t2
		}
		if reliable {
			interval = time.Until(deadline) + time.Millisecond
		}
		c.retrans2x = time.AfterFunc(interval, tick)
	}
	first := interval
	if reliable {
		first = 64*t1 + time.Millisecond
	}
	c.retrans2x = time.AfterFunc(first, tick)
}

// parseSE reads "Session-Expires: 1800;refresher=uac".
func parseSE(v string) (int, string) {
	parts := strings.Split(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || n <= 0 {
		return 0, ""
	}
	ref := ""
	for _, p := range parts[1:] {
		kv := strings.SplitN(strings.TrimSpace(p), "=", 2)
		if len(kv) == 2 && strings.EqualFold(strings.TrimSpace(kv[0]), "refresher") {
			ref = strings.ToLower(strings.TrimSpace(kv[1]))
		}
	}
	return n, ref
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
func (c *Call) armWatchdog() {
	if c.seInterval <= 0 {
		return
	}
	d := time.Duration(c.seInterval) * time.Second
	margin := d / 3
	if margin > 32*time.Second {
		margin = 32 * time.Second
	}
	c.stopTimer(&c.seWatchdog)
	c.seWatchdog = time.AfterFunc(d-margin, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.st != confirmed {
			return
		}
		c.m.log.Info("session timer expired", "call", c.a.callID)
		c.byeBoth(nil, switchReason("session timer expired"))
		c.end("session timer expired", events.SideSwitch, 408)
	})
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
	c.mu.Lock()
	if c.st != confirmed {
		c.mu.Unlock()
		return
	}
	var reqs []*sip.Request
	for _, l := range c.refreshSides {
		req := l.newRequest(sip.UPDATE, c.m)
		req.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(c.seInterval)+";refresher=uac"))
		req.AppendHeader(sip.NewHeader("Supported", "timer"))
		req.SetBody(nil)
		reqs = append(reqs, req)
	}
	c.mu.Unlock()
	ok := true
	for _, req := range reqs {
		tx, err := c.m.send(req)
		if err != nil {
			ok = false
			continue
		}
		r := drain(tx)
		// 405/501: the peer does not do UPDATE but answered, so it lives.
		if r == nil || r.StatusCode == 408 || r.StatusCode == 481 {
			ok = false
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != confirmed {
		return
	}
	if !ok {
		c.byeBoth(nil, switchReason("session refresh failed"))
		c.end("session refresh failed", events.SideSwitch, 408)
		return
	}
	c.armWatchdog()
	c.seRefresh = time.AfterFunc(time.Duration(c.seInterval)*time.Second/2, c.refreshNow)
}
