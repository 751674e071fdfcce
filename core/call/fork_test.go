package call

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/safe"
)

func parallel(hosts ...string) func() Decision {
	return func() Decision {
		var d Decision
		for _, h := range hosts {
			d.Targets = append(d.Targets, target(h))
		}
		return d
	}
}

// The caller gets the best final answer of all forks (RFC 3261 §16.7).
func TestFinalResponseChoice(t *testing.T) {
	for _, c := range []struct {
		codes []int
		want  int
	}{
		{[]int{408, 486}, 486}, // a definite answer beats a timeout
		{[]int{503, 404}, 404}, // ...and overload
		{[]int{503, 503}, 500}, // a callee's overload is not ours
		{[]int{480, 408}, 480}, // two weak answers: the first
		{[]int{407, 408}, 403}, // the callee's challenge is not for the caller
		{[]int{302, 486}, 302}, // lower class
	} {
		b := newBed(t, Config{}, parallel("192.0.2.10", "192.0.2.11"))
		a, _, done := b.invite()
		f1, f2 := b.wire.next(t, sip.INVITE), b.wire.next(t, sip.INVITE)
		f1.reply(c.codes[0])
		time.Sleep(20 * time.Millisecond) // the forks' goroutines: keep the order
		f2.reply(c.codes[1])
		if got := a.final(t).StatusCode; got != c.want {
			t.Errorf("forks %v: caller got %d, want %d", c.codes, got, c.want)
		}
		waitDone(t, done)
		if e := b.release(); e.Cause != "rejected" || e.Q850 == 0 {
			t.Errorf("forks %v: release %+v", c.codes, e)
		}
	}
}

// A 6xx ends the call at once; the other fork, once it has rung, is
// cancelled with the 6xx's cause.
func TestGlobalFailureCancelsOtherForks(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10", "192.0.2.11"))
	a, _, done := b.invite()
	f1, f2 := b.wire.next(t, sip.INVITE), b.wire.next(t, sip.INVITE)
	f2.reply(180)
	a.provisional(t)
	f1.reply(603)
	if got := a.final(t).StatusCode; got != 603 {
		t.Fatalf("caller got %d", got)
	}
	cancel := b.wire.next(t, sip.CANCEL)
	if cancel.req.CallID().Value() != f2.req.CallID().Value() || !strings.Contains(headerValue(cancel.req, "Reason"), "cause=21") {
		t.Fatalf("CANCEL %s", cancel.req)
	}
	waitDone(t, done)
}

// The caller cancels while a fork has sent nothing: the CANCEL to it
// waits for its first provisional (RFC 3261 §9.1), and an answer it
// sends after that is ACKed and hung up, never joined to the caller.
func TestCancelBeforeProvisionalThenLateAnswer(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	a, _, done := b.invite()
	f := b.wire.next(t, sip.INVITE)
	time.Sleep(20 * time.Millisecond)
	a.cancel(`Q.850;cause=16;text="Normal call clearing"`)
	waitDone(t, done)
	e := b.release()
	if e.Cause != "cancelled" || e.Side != events.SideCaller || e.Status != 487 || e.Q850 != 16 {
		t.Fatalf("release %+v", e)
	}
	b.wire.none(t, sip.CANCEL, 50*time.Millisecond) // not before a provisional
	f.reply(180)
	cancel := b.wire.next(t, sip.CANCEL)
	if !strings.Contains(headerValue(cancel.req, "Reason"), "cause=16") {
		t.Fatalf("CANCEL Reason %q", headerValue(cancel.req, "Reason"))
	}
	f.reply(200) // crossed the CANCEL
	bye := b.wire.next(t, sip.BYE)
	if bye.req.CallID().Value() != f.req.CallID().Value() || tagOf(bye.req.To().Params) != "b-tag" {
		t.Fatalf("BYE %s", bye.req)
	}
	if acks := b.wire.writtenRequests(sip.ACK); len(acks) != 1 {
		t.Fatalf("%d ACKs for the late 2xx", len(acks))
	}
	if got := b.kinds(); !slices.Equal(got, []events.Kind{events.CallAttempt, events.CallRelease}) {
		t.Fatalf("events %v", got)
	}
}

// A CANCEL that arrives before the call could listen for it still ends
// the call, and the release never comes before the attempt.
func TestCancelBeforeListening(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	a, _, done := b.invite()
	a.cancel("")
	waitDone(t, done)
	b.release()
	if got := b.kinds(); !slices.Equal(got, []events.Kind{events.CallAttempt, events.CallRelease}) {
		t.Fatalf("events %v", got)
	}
}

// Timer C: a fork that rang and went silent is cancelled when Timer C
// runs out; the caller gets 408 with cause 102, and the fork's
// transaction is ended 64*T1 later although the callee never answers
// the CANCEL.
func TestTimerCGivesUpASilentFork(t *testing.T) {
	b := newBed(t, Config{TimerC: 150 * time.Millisecond}, parallel("192.0.2.10"))
	a, _, done := b.invite()
	f := b.wire.next(t, sip.INVITE)
	f.reply(180)
	a.provisional(t)
	time.Sleep(100 * time.Millisecond)
	f.reply(183) // restarts Timer C
	a.provisional(t)
	start := time.Now()
	res := a.final(t)
	if res.StatusCode != 408 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("caller got %d after %v", res.StatusCode, time.Since(start))
	}
	waitDone(t, done)
	cancel := b.wire.next(t, sip.CANCEL)
	if !strings.Contains(headerValue(cancel.req, "Reason"), "cause=102") {
		t.Fatalf("CANCEL %s", cancel.req)
	}
	if e := b.release(); e.Q850 != 102 || e.Status != 408 {
		t.Fatalf("release %+v", e)
	}
	waitFor(t, "the abandoned transaction to be ended", f.terminated)
	waitFor(t, "the leg to be forgotten", func() bool { return b.m.tab.get(f.req.CallID().Value()) == nil })
}

// No answer: the caller gets 480, the ringing fork a CANCEL; a callee that
// never answers that CANCEL does not keep the call's goroutine for ever.
func TestNoAnswerAbandonedForkIsReaped(t *testing.T) {
	b := newBed(t, Config{NoAnswerTimeout: 100 * time.Millisecond}, parallel("192.0.2.10"))
	a, _, done := b.invite()
	f := b.wire.next(t, sip.INVITE)
	f.reply(180)
	if got := a.final(t).StatusCode; got != 480 {
		t.Fatalf("caller got %d", got)
	}
	waitDone(t, done)
	b.wire.next(t, sip.CANCEL)
	if e := b.release(); e.Cause != "no answer" || e.Q850 != 19 {
		t.Fatalf("release %+v", e)
	}
	waitFor(t, "the abandoned transaction to be ended", f.terminated)
}

// A gateway that sends nothing within the hunt's invite timeout is left
// for the next one; if it answers later, it is ACKed and BYEd.
func TestHuntSilentGatewayLateAnswer(t *testing.T) {
	h := &fakeHunter{targets: []Target{target("192.0.2.10"), target("192.0.2.11")}, timeout: 50 * time.Millisecond}
	b := newBed(t, Config{}, func() Decision { return Decision{Hunt: h} })
	a, _, done := b.invite()
	silent := b.wire.next(t, sip.INVITE)
	next := b.wire.next(t, sip.INVITE)
	if next.req.Recipient.Host != "192.0.2.11" {
		t.Fatalf("second fork to %s", next.req.Recipient.Host)
	}
	next.reply(180)
	a.provisional(t)
	silent.reply(200) // the silent gateway answers after all
	bye := b.wire.next(t, sip.BYE)
	if bye.req.CallID().Value() != silent.req.CallID().Value() {
		t.Fatalf("BYE on the wrong leg: %s", bye.req)
	}
	next.reply(200) // the 2xx to the caller goes outside the transaction
	waitDone(t, done)
	waitFor(t, "the 2xx to the caller", func() bool { return len(b.wire.writtenResponses()) > 0 })
	if r := b.wire.writtenResponses()[0]; r.StatusCode != 200 {
		t.Fatalf("caller got %s", r.StartLine())
	}
}

// The hunter may take seconds (DNS): meanwhile the call is not locked, so
// the caller's CANCEL ends it at once, and the gateway the hunter then
// returns gets its channel back.
func TestHuntOutsideTheLock(t *testing.T) {
	gate := make(chan struct{})
	h := &fakeHunter{targets: []Target{target("192.0.2.10"), target("192.0.2.11")}, gate: gate}
	b := newBed(t, Config{}, func() Decision { return Decision{Hunt: h} })
	a, _, done := b.invite()
	b.wire.next(t, sip.INVITE).reply(503) // the hunter is now asked again, and blocks
	time.Sleep(20 * time.Millisecond)
	a.cancel("")
	waitDone(t, done)
	if e := b.release(); e.Cause != "cancelled" {
		t.Fatalf("release %+v", e)
	}
	close(gate)
	waitFor(t, "both channels released", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.released == 2
	})
	b.wire.none(t, sip.INVITE, 50*time.Millisecond)
}

// A bug in the hunter (on a fork's goroutine) costs that call only: it is
// released with cause 41 and the caller gets 500.
func TestPanicReleasesTheCall(t *testing.T) {
	before := safe.Panics()
	h := &fakeHunter{targets: []Target{target("192.0.2.10")}, panicAt: 2}
	b := newBed(t, Config{}, func() Decision { return Decision{Hunt: h} })
	a, _, done := b.invite()
	b.wire.next(t, sip.INVITE).reply(503)
	if r := a.final(t); r.StatusCode != 500 || r.Reason != "Server Internal Error" {
		t.Fatalf("caller got %d %s", r.StatusCode, r.Reason)
	}
	waitDone(t, done)
	if e := b.release(); e.Cause != "internal error" || e.Q850 != 41 {
		t.Fatalf("release %+v", e)
	}
	if safe.Panics() != before+1 {
		t.Fatal("the panic was not counted")
	}
	if b.m.Active() != 0 {
		t.Fatalf("%d calls still active", b.m.Active())
	}
}

// Responses that lack what the call relies on are dropped and counted,
// and the call goes on.
func TestBadResponsesDropped(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	a, _, done := b.invite()
	f := b.wire.next(t, sip.INVITE)
	noTo := sip.NewResponseFromRequest(f.req, 180, "Ringing", nil)
	noTo.RemoveHeader("To")
	f.responses <- noTo
	noTag := sip.NewResponseFromRequest(f.req, 200, "OK", nil)
	setTag(noTag.To(), "")
	noTag.To().Params.Remove("tag")
	f.responses <- noTag
	noCSeq := sip.NewResponseFromRequest(f.req, 486, "Busy", nil)
	noCSeq.RemoveHeader("CSeq")
	f.responses <- noCSeq
	waitFor(t, "three dropped responses", func() bool { return b.m.InvalidResponses() == 3 })
	f.reply(180)
	if r := a.provisional(t); r.StatusCode != 180 {
		t.Fatalf("caller got %d", r.StatusCode)
	}
	f.reply(486)
	if got := a.final(t).StatusCode; got != 486 {
		t.Fatalf("caller got %d", got)
	}
	waitDone(t, done)
}

// The caller's PRACK reaches the fork that sent the reliable provisional,
// with RAck naming that leg's own INVITE CSeq (RFC 3262).
func TestPRACKMapping(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	a, req, done := b.invite("Supported: 100rel")
	f := b.wire.next(t, sip.INVITE)
	f.reply(183, "Require: 100rel", "RSeq: 7")
	p := a.provisional(t)
	if headerValue(p, "RSeq") != "7" || !hasOption(p, "Require", "100rel") {
		t.Fatalf("183 to the caller:\n%s", p)
	}
	prack := b.inDialog(sip.PRACK, req.CallID().Value(), tagOf(p.To().Params), 2, "RAck: 7 1 INVITE")
	ptx := newFakeServerTx(prack)
	go b.m.HandleInDialog(prack, ptx)
	out := b.wire.next(t, sip.PRACK)
	if want := "7 " + itoa(f.req.CSeq().SeqNo) + " INVITE"; headerValue(out.req, "RAck") != want {
		t.Fatalf("RAck %q, want %q", headerValue(out.req, "RAck"), want)
	}
	out.reply(200)
	if r := ptx.final(t); r.StatusCode != 200 {
		t.Fatalf("PRACK answered %d", r.StatusCode)
	}
	f.reply(486)
	a.final(t)
	waitDone(t, done)
}

// A caller that cannot PRACK gets the reliable provisional as an ordinary
// one, and the switch PRACKs the callee itself.
func TestPRACKBySwitch(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	a, _, done := b.invite()
	f := b.wire.next(t, sip.INVITE)
	f.reply(180, "Require: 100rel", "RSeq: 3")
	p := a.provisional(t)
	if p.GetHeader("RSeq") != nil || hasOption(p, "Require", "100rel") {
		t.Fatalf("180 to the caller kept 100rel:\n%s", p)
	}
	prack := b.wire.next(t, sip.PRACK)
	if want := "3 " + itoa(f.req.CSeq().SeqNo) + " INVITE"; headerValue(prack.req, "RAck") != want {
		t.Fatalf("RAck %q", headerValue(prack.req, "RAck"))
	}
	f.reply(486)
	a.final(t)
	waitDone(t, done)
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// answered sets up an answered call and returns its parts.
func answered(t *testing.T, b *bed, hdrs []string, answer ...string) (*fakeServerTx, *sip.Request, *fakeClientTx, *sip.Response) {
	t.Helper()
	a, req, done := b.invite(hdrs...)
	f := b.wire.next(t, sip.INVITE)
	f.reply(200, answer...)
	waitDone(t, done)
	var ok *sip.Response
	waitFor(t, "the 2xx to the caller", func() bool {
		for _, r := range b.wire.writtenResponses() {
			if r.StatusCode == 200 {
				ok = r
				return true
			}
		}
		return false
	})
	return a, req, f, ok
}

// Who refreshes the session (RFC 4028), as the switch decides from the
// callee's 2xx and the caller's Supported.
func TestSessionTimerDecisions(t *testing.T) {
	cases := []struct {
		name     string
		caller   []string
		callee   []string
		toCaller string // Session-Expires the caller sees ("" = none)
		switchUp bool   // the switch refreshes both legs itself
	}{
		{"callee refreshes", []string{"Supported: timer"}, []string{"Session-Expires: 600;refresher=uas", "Require: timer"}, "600;refresher=uas", false},
		{"caller refreshes", []string{"Supported: timer"}, nil, "1800;refresher=uac", false},
		{"nobody can: the switch", nil, nil, "", true},
		{"callee asks for uac, caller cannot", nil, []string{"Session-Expires: 300;refresher=uac"}, "", true},
		{"too short: raised to Min-SE", []string{"Supported: timer"}, []string{"Session-Expires: 30;refresher=uas"}, "90;refresher=uas", false},
		{"huge: clamped", []string{"Supported: timer"}, []string{"Session-Expires: 99999999999999999999;refresher=uas"}, "86400;refresher=uas", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBed(t, Config{SessionExpires: 1800, MinSE: 90}, parallel("192.0.2.10"))
			_, req, _, ok := answered(t, b, c.caller, c.callee...)
			if got := headerValue(ok, "Session-Expires"); got != c.toCaller {
				t.Errorf("caller sees Session-Expires %q, want %q", got, c.toCaller)
			}
			l := b.m.tab.get(req.CallID().Value())
			l.call.lock()
			sw := len(l.call.refreshSides) == 2
			watchdog := l.call.seWatchdog != nil
			l.call.unlock()
			// The watchdog waits for the refreshes of others; the switch
			// refreshing both legs knows from its own refresh.
			if sw != c.switchUp || watchdog == sw {
				t.Errorf("switch refreshes %v (want %v), watchdog %v (want %v)", sw, c.switchUp, watchdog, !sw)
			}
		})
	}
}

// A huge Session-Expires must not end the call at once.
func TestHugeSessionExpiresKeepsCall(t *testing.T) {
	b := newBed(t, Config{SessionExpires: 1800, MinSE: 90}, parallel("192.0.2.10"))
	answered(t, b, nil, "Session-Expires: 9223372036854775807;refresher=uas")
	select {
	case e := <-b.rel:
		t.Fatalf("call released at once: %+v", e)
	case <-time.After(100 * time.Millisecond):
	}
}

// The callee's P-Asserted-Identity never reaches the caller.
func TestCalleeIdentityNotRelayed(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	a, _, done := b.invite()
	f := b.wire.next(t, sip.INVITE)
	f.reply(180, "P-Asserted-Identity: <sip:+15551234@carrier.example>")
	if p := a.provisional(t); p.GetHeader("P-Asserted-Identity") != nil {
		t.Fatalf("PAI relayed:\n%s", p)
	}
	f.reply(486)
	a.final(t)
	waitDone(t, done)
}

// A re-INVITE the callee answers with 100 only: after 64*T1 its sender
// gets 408, its state is cleared, and the call is released with a cause.
func TestReInviteSilentPeer(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	_, req, _, ok := answered(t, b, nil)
	ack := b.inDialog(sip.ACK, req.CallID().Value(), tagOf(ok.To().Params), 1)
	b.m.HandleAck(ack)
	re := b.inDialog(sip.INVITE, req.CallID().Value(), tagOf(ok.To().Params), 2)
	rtx := newFakeServerTx(re)
	go b.m.HandleInDialog(re, rtx)
	out := b.wire.next(t, sip.INVITE)
	out.reply(100)
	if r := rtx.final(t); r.StatusCode != 408 {
		t.Fatalf("re-INVITE sender got %d", r.StatusCode)
	}
	e := b.release()
	if e.Cause != "re-INVITE not answered" || e.Q850 != 102 {
		t.Fatalf("release %+v", e)
	}
	if !out.terminated() {
		t.Fatal("the silent re-INVITE's transaction was left running")
	}
}

// A re-INVITE answered 2xx whose sender never ACKs: the 2xx is
// retransmitted, then the call released ("no ACK") instead of answering
// 491 to every later re-INVITE.
func TestReInviteNoACK(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	_, req, _, ok := answered(t, b, nil)
	b.m.HandleAck(b.inDialog(sip.ACK, req.CallID().Value(), tagOf(ok.To().Params), 1))
	re := b.inDialog(sip.INVITE, req.CallID().Value(), tagOf(ok.To().Params), 2)
	rtx := newFakeServerTx(re)
	go b.m.HandleInDialog(re, rtx)
	b.wire.next(t, sip.INVITE).reply(200)
	if r := rtx.final(t); r.StatusCode != 200 {
		t.Fatalf("re-INVITE sender got %d", r.StatusCode)
	}
	e := b.release()
	if e.Cause != "no ACK" || e.Side != events.SideCaller {
		t.Fatalf("release %+v", e)
	}
	n := 0
	for _, r := range b.wire.writtenResponses() {
		if r.StatusCode == 200 && r.CSeq().SeqNo == 2 {
			n++
		}
	}
	if n < 2 {
		t.Fatalf("re-INVITE 2xx retransmitted %d times", n)
	}
}

// The caller's 2xx is retransmitted until its ACK; without one the call
// is released with BYE on both legs.
func TestNoACKForInitial2xx(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	answered(t, b, nil)
	e := b.release()
	if e.Cause != "no ACK" || !e.Answered {
		t.Fatalf("release %+v", e)
	}
	b.wire.next(t, sip.BYE)
	b.wire.next(t, sip.BYE)
}

// A BYE from the caller ends the call; the cause travels to the callee.
func TestByeCarriesCause(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	_, req, _, ok := answered(t, b, nil)
	b.m.HandleAck(b.inDialog(sip.ACK, req.CallID().Value(), tagOf(ok.To().Params), 1))
	bye := b.inDialog(sip.BYE, req.CallID().Value(), tagOf(ok.To().Params), 2, `Reason: Q.850;cause=17`)
	btx := newFakeServerTx(bye)
	b.m.HandleBye(bye, btx)
	if r := btx.final(t); r.StatusCode != 200 {
		t.Fatalf("BYE answered %d", r.StatusCode)
	}
	out := b.wire.next(t, sip.BYE)
	if headerValue(out.req, "Reason") != "Q.850;cause=17" {
		t.Fatalf("BYE to callee: %s", out.req)
	}
	if e := b.release(); e.Cause != "BYE" || e.Q850 != 17 || e.Side != events.SideCaller {
		t.Fatalf("release %+v", e)
	}
}

// Shutdown releases calls with cause 41 and a proper reason phrase.
func TestShutdownReleases(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	a, _, done := b.invite()
	b.wire.next(t, sip.INVITE).reply(180)
	a.provisional(t)
	go b.m.Shutdown(t.Context())
	r := a.final(t)
	if r.StatusCode != 503 || r.Reason != "Service Unavailable" {
		t.Fatalf("caller got %d %s", r.StatusCode, r.Reason)
	}
	waitDone(t, done)
	if e := b.release(); e.Cause != "switch shutdown" || e.Q850 != 41 {
		t.Fatalf("release %+v", e)
	}
}

func TestParseRAck(t *testing.T) {
	for in, ok := range map[string]bool{"7 1 INVITE": true, " 7  1 INVITE ": true, "0 1 INVITE": false, "7 INVITE": false,
		"x 1 INVITE": false, "7 4294967296 INVITE": false, "2147483648 1 INVITE": false} {
		if _, _, _, got := parseRAck(in); got != ok {
			t.Errorf("%q: %v", in, got)
		}
	}
}

// In-dialog requests arriving while a hunt adds forks: the lookup reads
// the call's forks and tags under the call's lock (the race detector
// caught it reading them bare while a failover appended a fork).
func TestFindWhileForksChange(t *testing.T) {
	h := &fakeHunter{}
	for i := range 20 {
		h.targets = append(h.targets, target("192.0.2."+strconv.Itoa(10+i)))
	}
	b := newBed(t, Config{}, func() Decision { return Decision{Hunt: h} })
	a, req, done := b.invite()
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 2; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			info := b.inDialog(sip.INFO, req.CallID().Value(), "no-such-tag-"+strconv.Itoa(i), i)
			b.m.HandleInDialog(info, newFakeServerTx(info))
			b.m.HandleAck(b.inDialog(sip.ACK, req.CallID().Value(), "x", 1))
		}
	}()
	for range 19 {
		b.wire.next(t, sip.INVITE).reply(503)
	}
	b.wire.next(t, sip.INVITE).reply(486)
	if got := a.final(t).StatusCode; got != 486 {
		t.Fatalf("caller got %d", got)
	}
	close(stop)
	<-finished
	waitDone(t, done)
}

// Once the caller has acknowledged the 2xx the call keeps only its
// dialogs' state (compact); everything a held call still meets works
// from that state: a copy of the initial INVITE is absorbed, a callee's
// 2xx retransmission gets the ACK again, a BYE from the callee ends it.
func TestConfirmedCallIsCompacted(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	_, req, f, ok := answered(t, b, nil)
	b.m.HandleAck(b.inDialog(sip.ACK, req.CallID().Value(), tagOf(ok.To().Params), 1))
	l := b.m.tab.get(req.CallID().Value())
	if l == nil {
		t.Fatal("call not found")
	}
	c := l.call
	c.lock()
	compact := c.aInvite == nil && c.aTx == nil && c.b != nil && c.b.invite == nil && c.b.inviteTx == nil
	noAck := c.b != nil && c.b.ackSent && c.b.ack == nil
	callee := c.b.callID
	var parsedURIs []string
	for _, l := range []*leg{c.a, c.b} {
		for _, u := range []dialogURI{l.localURI, l.remote, l.target} {
			if u.p != nil || u.s == "" {
				parsedURIs = append(parsedURIs, u.String())
			}
		}
	}
	c.unlock()
	if len(parsedURIs) > 0 {
		t.Fatalf("the held call keeps parsed URIs: %v", parsedURIs)
	}
	if !compact {
		t.Fatal("the confirmed, acknowledged call still holds its INVITEs")
	}
	if !noAck {
		t.Fatal("the held call keeps the callee's ACK (without a body, it is built again if its 2xx comes again)")
	}

	// A late copy of the initial INVITE: absorbed, no 482.
	copyTx := newFakeServerTx(req)
	b.m.HandleInvite(req, copyTx)
	if len(copyTx.res) != 0 {
		t.Fatalf("INVITE copy answered %d", copyTx.res[0].StatusCode)
	}

	// The callee did not get our ACK: its 2xx again gets the ACK again.
	// (A call's queue may be flushed by another of its goroutines: wait.)
	waitFor(t, "the callee's ACK", func() bool { return len(b.wire.writtenRequests(sip.ACK)) == 1 })
	acks := 1
	f.mu.Lock()
	hook := f.retrans
	f.mu.Unlock()
	if hook == nil {
		t.Fatal("no retransmission hook on the callee's INVITE")
	}
	res := sip.NewResponseFromRequest(f.req, 200, "OK", nil)
	hook(res)
	waitFor(t, "the ACK again", func() bool { return len(b.wire.writtenRequests(sip.ACK)) >= acks+1 })
	if n := len(b.wire.writtenRequests(sip.ACK)); n != acks+1 {
		t.Fatalf("ACKs written %d, want %d", n, acks+1)
	}

	m, err := sip.ParseMessage([]byte("BYE sip:1001@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKbye1\r\n" +
		"From: <sip:1002@192.0.2.10>;tag=b-tag\r\nTo: <sip:1001@192.0.2.1>;tag=" + tagOf(f.req.From().Params) + "\r\n" +
		"Call-ID: " + callee + "\r\nCSeq: 7 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	bye := m.(*sip.Request)
	bye.SetSource("192.0.2.10:5060")
	bye.SetTransport("UDP")
	btx := newFakeServerTx(bye)
	b.m.HandleBye(bye, btx)
	if r := btx.final(t); r.StatusCode != 200 {
		t.Fatalf("callee's BYE answered %d", r.StatusCode)
	}
	// toward the caller, its dialog from the packed URIs
	out := b.wire.next(t, sip.BYE).req
	if out.Recipient.String() != "sip:1001@127.0.0.1:5070" || out.From().Address.String() != "sip:1002@192.0.2.1" ||
		out.To().Address.String() != "sip:1001@127.0.0.1" {
		t.Fatalf("BYE to the caller: %s, From %s, To %s", out.Recipient.String(), out.From().Address.String(), out.To().Address.String())
	}
	if e := b.release(); e.Cause != "BYE" || e.Side != events.SideCallee || !e.Answered || e.CalledSent == "" || e.CalledSent != f.req.To().Address.User {
		t.Fatalf("release %+v", e)
	}
}

// An ACK with a body (the caller's answer to a late offer) is kept and
// goes again as it was when the callee's 2xx comes again; one without is
// built again (TestConfirmedCallIsCompacted).
func TestAckWithBodyGoesAgainAsItWas(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	_, req, f, ok := answered(t, b, nil)
	ack := b.inDialog(sip.ACK, req.CallID().Value(), tagOf(ok.To().Params), 1, "Content-Type: application/sdp")
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	ack.SetBody([]byte(sdp))
	b.m.HandleAck(ack)
	var sent []*sip.Request
	waitFor(t, "the callee's ACK", func() bool { sent = b.wire.writtenRequests(sip.ACK); return len(sent) == 1 })
	if string(sent[0].Body()) != sdp {
		t.Fatalf("ACK to the callee carries %q", sent[0].Body())
	}
	f.mu.Lock()
	hook := f.retrans
	f.mu.Unlock()
	hook(sip.NewResponseFromRequest(f.req, 200, "OK", nil))
	waitFor(t, "the ACK again", func() bool { sent = b.wire.writtenRequests(sip.ACK); return len(sent) == 2 })
	if string(sent[1].Body()) != sdp || sent[1].CSeq().SeqNo != f.req.CSeq().SeqNo {
		t.Fatalf("ACK again: CSeq %d, body %q", sent[1].CSeq().SeqNo, sent[1].Body())
	}
}
