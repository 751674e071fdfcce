package systest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// calleeURI is the Request-URI a call to user registered on port must use.
func calleeURI(user string, port int) string {
	return fmt.Sprintf("sip:%s@127.0.0.1:%d", user, port)
}

// TestCallCallerHangsUp: 1001 calls 1002, 1002 answers, the 2xx ACK
// reaches 1002, 1001 hangs up; the far end sees a B2BUA with topology hiding.
func TestCallCallerHangsUp(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	callee := startUAS(t, "callee-1002", "uas_answer.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_call_bye.xml", "1002"))
	b := callee.wait()
	a.expectOK(t)
	b.requireOK(t)

	requireFinals(t, a, "INVITE", 407, 200)
	leg := checkBLegInvite(t, srv, a, b, "1001", "1002", calleeURI("1002", callee.Port))
	checkALeg(t, srv, a, b)
	checkAnswerRelayed(t, a, b)
	checkAckRelayed(t, b, leg.bInvite)
	bye := b.mustReceivedRequest(t, "BYE")
	checkInDialog(t, srv, "BYE received by the callee", bye, leg.bInvite)
	requireFinals(t, a, "BYE", 200)
}

// TestCallCalleeHangsUp: as above but 1002 sends the BYE: it gets 200 and
// the caller gets a BYE, which it answers.
func TestCallCalleeHangsUp(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	callee := startUAS(t, "callee-1002", "uas_answer_bye.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_call_recv_bye.xml", "1002"))
	b := callee.wait()
	a.expectOK(t)
	b.requireOK(t)

	leg := checkBLegInvite(t, srv, a, b, "1001", "1002", calleeURI("1002", callee.Port))
	checkALeg(t, srv, a, b)
	checkAnswerRelayed(t, a, b)
	checkAckRelayed(t, b, leg.bInvite)
	requireFinals(t, b, "BYE", 200)
	bye := a.mustReceivedRequest(t, "BYE")
	if bye.Header("Call-ID") != leg.aInvite.Header("Call-ID") {
		t.Errorf("BYE to the caller has Call-ID %q, want the caller's %q", bye.Header("Call-ID"), leg.aInvite.Header("Call-ID"))
	}
	if got, want := headerParam(bye.Header("To"), "tag"), headerParam(leg.aInvite.Header("From"), "tag"); got != want {
		t.Errorf("BYE to the caller has To tag %q, want the caller's From tag %q", got, want)
	}
	if r := bye.Header("Reason"); r != `Q.850;cause=16;text="callee hung up"` {
		t.Errorf("BYE to the caller has Reason %q, want the callee's (RFC 3326)", r)
	}
}

// TestCallBusy: the callee answers 486; the caller gets 486 and ACKs; the
// callee gets the ACK for its 486.
func TestCallBusy(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	callee := startUAS(t, "callee-1002", "uas_busy.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_rejected.xml", "1002"))
	b := callee.wait()
	a.expectOK(t)
	b.requireOK(t)

	requireFinals(t, a, "INVITE", 407, 486)
	leg := checkBLegInvite(t, srv, a, b, "1001", "1002", calleeURI("1002", callee.Port))
	checkALeg(t, srv, a, b)
	checkNonInviteACK(t, b, leg.bInvite)
}

// checkNonInviteACK checks the ACK b got for its error response to inv: same
// Call-ID, CSeq number and Via branch as the INVITE.
func checkNonInviteACK(t *testing.T, b *sippResult, inv sipMsg) {
	t.Helper()
	ack := b.mustReceivedRequest(t, "ACK")
	n, _ := inv.CSeq()
	an, am := ack.CSeq()
	if an != n || am != "ACK" {
		t.Errorf("ACK for the error response has CSeq %d %s, want %d ACK", an, am, n)
	}
	if ack.Header("Call-ID") != inv.Header("Call-ID") {
		t.Errorf("ACK for the error response has Call-ID %q, want %q", ack.Header("Call-ID"), inv.Header("Call-ID"))
	}
	if got, want := headerParam(ack.Header("Via"), "branch"), headerParam(inv.Header("Via"), "branch"); got != want {
		t.Errorf("ACK for the error response has Via branch %q, want the INVITE's %q", got, want)
	}
}

// TestCallNoAnswerTimeout: the callee only rings past no_answer_timeout
// (3s): it gets a CANCEL (answers 200, then 487, gets ACK); the caller gets 480.
func TestCallNoAnswerTimeout(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.NoAnswerTimeout = "3s"
	srv := startServer(t, cfg)
	callee := startUAS(t, "callee-1002", "uas_ring.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_rejected.xml", "1002"))
	b := callee.wait()
	a.expectOK(t)
	b.requireOK(t)

	requireFinals(t, a, "INVITE", 407, 480)
	leg := checkBLegInvite(t, srv, a, b, "1001", "1002", calleeURI("1002", callee.Port))
	checkALeg(t, srv, a, b)
	checkCancel(t, b, leg.bInvite, "Q.850;cause=19")
	checkNonInviteACK(t, b, leg.bInvite)
}

// checkCancel checks the CANCEL b got for inv: same Request-URI, Call-ID,
// CSeq number and Via branch as the INVITE.
func checkCancel(t *testing.T, b *sippResult, inv sipMsg, reason string) {
	t.Helper()
	c := b.mustReceivedRequest(t, "CANCEL")
	// RFC 3326: why the call was cancelled (no answer 19, caller gone 16,
	// answered on another fork SIP 200).
	if r := strings.ReplaceAll(c.Header("Reason"), " ", ""); !strings.HasPrefix(r, reason) {
		t.Errorf("CANCEL Reason %q, want %s...", c.Header("Reason"), reason)
	}
	n, _ := inv.CSeq()
	if cn, cm := c.CSeq(); cn != n || cm != "CANCEL" {
		t.Errorf("CANCEL has CSeq %d %s, want %d CANCEL", cn, cm, n)
	}
	if c.RURI != inv.RURI {
		t.Errorf("CANCEL Request-URI %q, want the INVITE's %q", c.RURI, inv.RURI)
	}
	if c.Header("Call-ID") != inv.Header("Call-ID") {
		t.Errorf("CANCEL Call-ID %q, want the INVITE's %q", c.Header("Call-ID"), inv.Header("Call-ID"))
	}
	if got, want := headerParam(c.Header("Via"), "branch"), headerParam(inv.Header("Via"), "branch"); got != want {
		t.Errorf("CANCEL Via branch %q, want the INVITE's %q", got, want)
	}
}

// TestCallCancelBeforeAnswer: the caller CANCELs after 180: it gets 200 for
// the CANCEL and 487 for the INVITE; the callee gets the CANCEL.
func TestCallCancelBeforeAnswer(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	callee := startUAS(t, "callee-1002", "uas_ring.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_cancel.xml", "1002"))
	b := callee.wait()
	a.expectOK(t)
	b.requireOK(t)

	requireFinals(t, a, "INVITE", 407, 487)
	requireFinals(t, a, "CANCEL", 200)
	leg := checkBLegInvite(t, srv, a, b, "1001", "1002", calleeURI("1002", callee.Port))
	checkALeg(t, srv, a, b)
	checkCancel(t, b, leg.bInvite, "Q.850;cause=16")
	checkNonInviteACK(t, b, leg.bInvite)
}

// TestCallForkTwoContacts: 1002 is registered from two contacts; the call
// forks to both; the one that answers gets the call, the other the CANCEL.
func TestCallForkTwoContacts(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	// The answering phone waits a second before its 200 (-d) so that the
	// other phone has rung by then.
	answerer := startUAS(t, "callee-1002-answers", "uas_answer.xml", sippOpts{Keys: map[string]string{"user": "1002"}, Pause: time.Second})
	ringer := startUAS(t, "callee-1002-rings", "uas_ring.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", answerer.Port)
	registerContact(t, srv, "1002", "secret1002", ringer.Port)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_call_bye.xml", "1002"))
	b1 := answerer.wait()
	b2 := ringer.wait()
	a.expectOK(t)
	b1.expectOK(t)
	b2.expectOK(t)

	requireFinals(t, a, "INVITE", 407, 200)
	leg1 := checkBLegInvite(t, srv, a, b1, "1001", "1002", calleeURI("1002", answerer.Port))
	leg2 := checkBLegInvite(t, srv, a, b2, "1001", "1002", calleeURI("1002", ringer.Port))
	checkALeg(t, srv, a, b1, b2)
	checkAnswerRelayed(t, a, b1)
	checkAckRelayed(t, b1, leg1.bInvite)
	b1.mustReceivedRequest(t, "BYE")
	checkCancel(t, b2, leg2.bInvite, "SIP;cause=200")
	if n := len(b2.ReceivedRequests("BYE")); n != 0 {
		t.Errorf("the phone that did not answer received %d BYE", n)
	}
}
