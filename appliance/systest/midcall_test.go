package systest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReInviteHoldAndUpdate: re-INVITEs (hold, a=sendonly) from either side
// are relayed inside the dialog with the same body, their 200s relayed
// back, their ACKs relayed; an UPDATE from the caller likewise.
func TestReInviteHoldAndUpdate(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	callee := startUAS(t, "callee-1002", "uas_hold.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_hold.xml", "1002"))
	b := callee.wait()
	a.expectOK(t)
	b.expectOK(t)

	leg := checkBLegInvite(t, srv, a, b, "1001", "1002", calleeURI("1002", callee.Port))
	checkALeg(t, srv, a, b)

	// Hold from the caller: its second INVITE (CSeq 3) reaches the callee as
	// the callee's second INVITE.
	aReinv := a.lastSentRequest(t, "INVITE")
	bInvites := b.ReceivedRequests("INVITE")
	bReinv, ok := firstDistinctAfter(bInvites, leg.bInvite)
	if !ok {
		t.Fatalf("the callee received no re-INVITE (INVITEs received: %d)", len(bInvites))
	}
	checkInDialog(t, srv, "re-INVITE received by the callee", bReinv, leg.bInvite)
	checkSameBody(t, "re-INVITE received by the callee", aReinv, bReinv)
	if got, want := headerParam(bReinv.Header("To"), "tag"), headerParam(firstSentToTag(b), "tag"); got != want {
		t.Errorf("re-INVITE to the callee has To tag %q, want the callee's tag %q", got, want)
	}
	if bOK, ok := sentResponse(b, 200, "INVITE", 1); ok {
		if aOK, ok := receivedResponse(a, 200, "INVITE", 1); ok {
			checkSameBody(t, "200 to the hold re-INVITE received by the caller", bOK, aOK)
		} else {
			t.Errorf("the caller received no 200 for its re-INVITE")
		}
	}
	checkAckRelayed(t, b, bReinv)

	// Hold from the callee: the caller receives a re-INVITE in its dialog.
	bSent := b.SentRequests("INVITE")
	aGot := a.ReceivedRequests("INVITE")
	if len(bSent) == 0 || len(aGot) == 0 {
		t.Fatalf("callee's re-INVITE: sent %d, the caller received %d", len(bSent), len(aGot))
	}
	who := "re-INVITE from the callee received by the caller"
	checkSameBody(t, who, bSent[0], aGot[0])
	checkSingleVia(t, who, aGot[0], srv.Addr)
	if aGot[0].Header("Call-ID") != leg.aInvite.Header("Call-ID") {
		t.Errorf("%s: Call-ID %q, want the caller's %q", who, aGot[0].Header("Call-ID"), leg.aInvite.Header("Call-ID"))
	}
	if got, want := headerParam(aGot[0].Header("To"), "tag"), headerParam(leg.aInvite.Header("From"), "tag"); got != want {
		t.Errorf("%s: To tag %q, want the caller's From tag %q", who, got, want)
	}
	if aOK, ok := sentResponse(a, 200, "INVITE", 0); ok {
		if bOK, ok := receivedResponse(b, 200, "INVITE", 0); ok {
			checkSameBody(t, "200 to the callee's re-INVITE received by the callee", aOK, bOK)
		} else {
			t.Errorf("the callee received no 200 for its re-INVITE")
		}
	}
	if len(a.ReceivedRequests("ACK")) == 0 {
		t.Errorf("the caller received no ACK for its 200 to the callee's re-INVITE")
	}

	// UPDATE from the caller.
	aUpd := a.lastSentRequest(t, "UPDATE")
	bUpd := b.mustReceivedRequest(t, "UPDATE")
	checkInDialog(t, srv, "UPDATE received by the callee", bUpd, leg.bInvite)
	checkSameBody(t, "UPDATE received by the callee", aUpd, bUpd)
	if bOK, ok := sentResponse(b, 200, "UPDATE", 0); ok {
		if aOK, ok := receivedResponse(a, 200, "UPDATE", 0); ok {
			checkSameBody(t, "200 to UPDATE received by the caller", bOK, aOK)
		} else {
			t.Errorf("the caller received no 200 for its UPDATE")
		}
	}
	b.mustReceivedRequest(t, "BYE")
}

// firstDistinctAfter is the first message of msgs with a CSeq other than first's.
func firstDistinctAfter(msgs []sipMsg, first sipMsg) (sipMsg, bool) {
	n0, _ := first.CSeq()
	for _, m := range msgs {
		if n, _ := m.CSeq(); n != n0 {
			return m, true
		}
	}
	return sipMsg{}, false
}

// firstSentToTag is the To header of the first response r sent (it carries r's tag).
func firstSentToTag(r *sippResult) string {
	for _, m := range r.Sent() {
		if m.Status > 0 && hasHeaderParam(m.Header("To"), "tag") {
			return m.Header("To")
		}
	}
	return ""
}

// TestPRACK: reliable provisional responses (RFC 3262) across the B2BUA.
func TestPRACK(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	callee := startUAS(t, "callee-1002", "uas_prack.xml", sippOpts{Keys: map[string]string{"user": "1002"}})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	a := runSipp(t, callOpts(srv, "caller-1001", "uac_prack.xml", "1002"))
	b := callee.wait()
	a.expectOK(t)
	b.expectOK(t)

	leg := checkBLegInvite(t, srv, a, b, "1001", "1002", calleeURI("1002", callee.Port))
	checkALeg(t, srv, a, b)
	if sup := leg.bInvite.Values("Supported"); !slices.Contains(sup, "100rel") {
		t.Errorf("INVITE to the callee has Supported %q without 100rel, so the callee may not send reliable provisionals", leg.bInvite.HeaderLines("Supported"))
	}

	// The caller's 183.
	var a183 *sipMsg
	for _, m := range a.ReceivedResponses("INVITE") {
		if m.Status == 183 {
			a183 = &m
			break
		}
	}
	if a183 == nil {
		t.Fatalf("the caller received no 183")
	}
	if !slices.Contains(a183.Values("Require"), "100rel") || a183.Header("RSeq") == "" {
		t.Errorf("183 to the caller: Require %q RSeq %q, want Require: 100rel and an RSeq", a183.Header("Require"), a183.Header("RSeq"))
	}
	if b183, ok := sentResponse(b, 183, "INVITE", 0); ok {
		checkSameBody(t, "183 received by the caller", b183, *a183)
	}

	// The PRACK at the callee: RAck with the callee-side RSeq (1) and the
	// callee-side INVITE CSeq.
	prack := b.mustReceivedRequest(t, "PRACK")
	checkInDialog(t, srv, "PRACK received by the callee", prack, leg.bInvite)
	n, _ := leg.bInvite.CSeq()
	if got, want := strings.Join(strings.Fields(prack.Header("RAck")), " "), fmt.Sprintf("1 %d INVITE", n); got != want {
		t.Errorf("PRACK to the callee has RAck %q, want %q", got, want)
	}
	if aRAck := strings.Fields(a.lastSentRequest(t, "PRACK").Header("RAck")); len(aRAck) > 0 && aRAck[0] != strings.TrimSpace(a183.Header("RSeq")) {
		t.Errorf("caller's RAck %v does not match the RSeq %q it got", aRAck, a183.Header("RSeq"))
	}
	requireFinals(t, a, "PRACK", 200)
	requireFinals(t, a, "INVITE", 407, 200)
	checkAckRelayed(t, b, leg.bInvite)
	b.mustReceivedRequest(t, "BYE")
}

// TestSessionTimerExpiry: with session_expires = 10 and min_se = 5, a call in
// which nobody refreshes is released by the softswitch: both legs get a BYE.
func TestSessionTimerExpiry(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.SessionExpires = 10
	cfg.MinSE = 5
	srv := startServer(t, cfg)
	callee := startUAS(t, "callee-1002", "uas_session_timer.xml", sippOpts{Keys: map[string]string{"user": "1002"}, Timeout: 60 * time.Second})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	o := callOpts(srv, "caller-1001", "uac_session_timer.xml", "1002")
	o.Timeout = 60 * time.Second
	a := runSipp(t, o)
	b := callee.wait()
	a.expectOK(t)
	b.expectOK(t)

	leg := checkBLegInvite(t, srv, a, b, "1001", "1002", calleeURI("1002", callee.Port))
	t.Logf("INVITE to the callee: Supported %q, Session-Expires %q, Min-SE %q",
		leg.bInvite.HeaderLines("Supported"), leg.bInvite.Header("Session-Expires"), leg.bInvite.Header("Min-SE"))
	if ok, found := receivedResponse(a, 200, "INVITE", 0); found {
		t.Logf("200 to the caller: Session-Expires %q, Require %q", ok.Header("Session-Expires"), ok.HeaderLines("Require"))
	}
	for _, r := range []*sippResult{a, b} {
		if len(r.ReceivedRequests("BYE")) == 0 {
			t.Errorf("%s received no BYE", r.Name)
		}
		if n := len(r.SentRequests("BYE")); n != 0 {
			t.Errorf("%s sent %d BYE itself", r.Name, n)
		}
	}
	// Refreshes are allowed (the softswitch may refresh a leg it is the
	// refresher of); they are only reported.
	if n := len(a.ReceivedRequests("UPDATE")) + len(a.ReceivedRequests("INVITE")); n > 0 {
		t.Logf("the caller received %d session refresh(es) before the BYE", n)
	}
	if n := len(b.ReceivedRequests("UPDATE")) + len(bInvitesAfterFirst(b)); n > 0 {
		t.Logf("the callee received %d session refresh(es) before the BYE", n)
	}
	checkInDialog(t, srv, "BYE received by the callee", b.mustReceivedRequest(t, "BYE"), leg.bInvite)
}

func bInvitesAfterFirst(b *sippResult) []sipMsg {
	invs := b.ReceivedRequests("INVITE")
	if len(invs) == 0 {
		return nil
	}
	n0, _ := invs[0].CSeq()
	return filterMsgs(invs, func(m sipMsg) bool { n, _ := m.CSeq(); return n != n0 })
}
