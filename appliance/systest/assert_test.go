package systest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// checkChallenge checks the header lines called header (WWW-Authenticate or
// Proxy-Authenticate) of a 401/407: one Digest challenge per algorithm, in
// order, each with realm="softswitch", a nonce, an opaque, the algorithm and
// qop="auth". It returns the nonces.
func checkChallenge(t *testing.T, who string, m sipMsg, header string, algorithms []string) []string {
	t.Helper()
	lines := m.HeaderLines(header)
	if len(lines) != len(algorithms) {
		t.Errorf("%s: %d %s header(s), want %d (one per algorithm %v): %q", who, len(lines), header, len(algorithms), algorithms, lines)
	}
	var nonces []string
	for i, l := range lines {
		scheme, p := authParams(l)
		if scheme != "Digest" {
			t.Errorf("%s: %s %d scheme %q, want Digest: %q", who, header, i+1, scheme, l)
		}
		if p["realm"] != "softswitch" {
			t.Errorf("%s: %s %d realm %q, want \"softswitch\": %q", who, header, i+1, p["realm"], l)
		}
		if p["nonce"] == "" {
			t.Errorf("%s: %s %d has no nonce: %q", who, header, i+1, l)
		}
		if p["opaque"] == "" {
			t.Errorf("%s: %s %d has no opaque: %q", who, header, i+1, l)
		}
		if i < len(algorithms) && !strings.EqualFold(p["algorithm"], algorithms[i]) {
			t.Errorf("%s: %s %d algorithm %q, want %q: %q", who, header, i+1, p["algorithm"], algorithms[i], l)
		}
		if p["qop"] != "auth" {
			t.Errorf("%s: %s %d qop %q, want \"auth\": %q", who, header, i+1, p["qop"], l)
		}
		nonces = append(nonces, p["nonce"])
	}
	return nonces
}

// requireFinals fails the test now unless the final responses r received to
// its requests of method are exactly want (retransmissions dropped).
func requireFinals(t *testing.T, r *sippResult, method string, want ...int) []sipMsg {
	t.Helper()
	finals := r.ReceivedFinals(method)
	got := r.finalStatuses(method)
	if !slices.Equal(got, want) {
		t.Fatalf("sipp %s: final responses to %s were %v, want %v; received: %s",
			r.Name, method, got, want, strings.Join(startLines(r.Received()), " | "))
	}
	return finals
}

// bLeg is what the far end of a call received, next to what the caller sent.
type bLeg struct {
	aInvite sipMsg // the last initial INVITE the caller sent (the authenticated one)
	bInvite sipMsg // the first INVITE the far end received
}

// checkBLegInvite checks the INVITE the softswitch sent to the far end b
// against the caller a's INVITE: a B2BUA with topology hiding. fromUser and
// toUser are the wanted users of From and To, ruri the wanted Request-URI
// (sip:user@host:port).
func checkBLegInvite(t *testing.T, srv *server, a, b *sippResult, fromUser, toUser, ruri string) bLeg {
	t.Helper()
	aInv := a.lastInitialInvite(t)
	bInv := b.mustReceivedRequest(t, "INVITE")
	who := fmt.Sprintf("INVITE received by %s", b.Name)

	want := parseURI(ruri)
	got := parseURI(bInv.RURI)
	if got.User != want.User || got.HostPort() != want.HostPort() {
		t.Errorf("%s: Request-URI %q, want %q", who, bInv.RURI, ruri)
	}
	if bInv.Header("Call-ID") == "" || bInv.Header("Call-ID") == aInv.Header("Call-ID") {
		t.Errorf("%s: Call-ID %q, want a new one (caller's is %q)", who, bInv.Header("Call-ID"), aInv.Header("Call-ID"))
	}
	aTag, bTag := headerParam(aInv.Header("From"), "tag"), headerParam(bInv.Header("From"), "tag")
	if bTag == "" || bTag == aTag {
		t.Errorf("%s: From tag %q, want a new one (caller's is %q)", who, bTag, aTag)
	}
	if hasHeaderParam(bInv.Header("To"), "tag") {
		t.Errorf("%s: To has a tag in an initial INVITE: %q", who, bInv.Header("To"))
	}
	checkSingleVia(t, who, bInv, srv.Addr)
	checkContactIs(t, who, bInv, srv.Addr)
	if bInv.Has("Record-Route") {
		t.Errorf("%s: has Record-Route %q, want none", who, bInv.HeaderLines("Record-Route"))
	}
	if u := uriOf(bInv.Header("From")).User; u != fromUser {
		t.Errorf("%s: From user %q, want %q (From: %s)", who, u, fromUser, bInv.Header("From"))
	}
	if u := uriOf(bInv.Header("To")).User; u != toUser {
		t.Errorf("%s: To user %q, want %q (To: %s)", who, u, toUser, bInv.Header("To"))
	}
	aMF, errA := strconv.Atoi(aInv.Header("Max-Forwards"))
	bMF, errB := strconv.Atoi(bInv.Header("Max-Forwards"))
	if errA != nil || errB != nil || bMF != aMF-1 {
		t.Errorf("%s: Max-Forwards %q, want %d (caller sent %q)", who, bInv.Header("Max-Forwards"), aMF-1, aInv.Header("Max-Forwards"))
	}
	checkSameBody(t, who, aInv, bInv)
	checkNoLeak(t, b.Name, b.Received(), callerSecrets(a)...)
	return bLeg{aInvite: aInv, bInvite: bInv}
}

// checkSingleVia checks that m has exactly one Via value, sent by sentBy.
func checkSingleVia(t *testing.T, who string, m sipMsg, sentBy string) {
	t.Helper()
	vias := m.Values("Via")
	if len(vias) != 1 {
		t.Errorf("%s: %d Via values, want exactly 1: %q", who, len(vias), vias)
		return
	}
	if sb := viaSentBy(vias[0]); sb != sentBy {
		t.Errorf("%s: Via sent-by %q, want %q: %q", who, sb, sentBy, vias[0])
	}
}

// checkContactIs checks that m has one Contact pointing at hostPort.
func checkContactIs(t *testing.T, who string, m sipMsg, hostPort string) {
	t.Helper()
	cs := m.Values("Contact")
	if len(cs) != 1 {
		t.Errorf("%s: %d Contact values, want 1: %q", who, len(cs), cs)
		return
	}
	if hp := uriOf(cs[0]).HostPort(); hp != hostPort {
		t.Errorf("%s: Contact %q points at %s, want the softswitch %s", who, cs[0], hp, hostPort)
	}
}

// checkSameBody checks that to carries from's body byte for byte.
func checkSameBody(t *testing.T, who string, from, to sipMsg) {
	t.Helper()
	if from.Body != to.Body {
		t.Errorf("%s: body changed in transit\n--- sent:\n%s\n--- received:\n%s", who, from.Body, to.Body)
	}
	if from.Body != "" && !strings.EqualFold(strings.TrimSpace(to.Header("Content-Type")), "application/sdp") {
		t.Errorf("%s: Content-Type %q, want application/sdp", who, to.Header("Content-Type"))
	}
}

// callerSecrets is what the far end must never see of the caller: its
// Call-ID, From tag and address.
func callerSecrets(a *sippResult) []string {
	var s []string
	for _, m := range a.SentRequests("INVITE") {
		s = append(s, m.Header("Call-ID"), headerParam(m.Header("From"), "tag"))
	}
	return append(s, a.Addr)
}

// calleeSecrets is what the caller must never see of the far end.
func calleeSecrets(b *sippResult) []string {
	s := []string{b.Addr}
	for _, m := range b.ReceivedRequests("INVITE") {
		s = append(s, m.Header("Call-ID"))
	}
	for _, m := range b.Sent() {
		if m.Status > 0 {
			if tag := headerParam(m.Header("To"), "tag"); tag != "" {
				s = append(s, tag)
			}
		}
	}
	return s
}

// checkNoLeak checks that no header of msgs contains any of secrets.
func checkNoLeak(t *testing.T, who string, msgs []sipMsg, secrets ...string) {
	t.Helper()
	secrets = slices.Compact(slices.Sorted(slices.Values(secrets)))
	for _, m := range msgs {
		h := m.headerPart()
		for _, s := range secrets {
			if s != "" && strings.Contains(h, s) {
				t.Errorf("%s received %q, which contains %q of the other leg (topology hiding):\n%s", who, m.First, s, h)
			}
		}
	}
}

// checkALeg checks what the caller a received: responses carry only its own
// Via, requests only the softswitch's; every Contact is the softswitch's; no
// Record-Route; nothing of the callee b.
func checkALeg(t *testing.T, srv *server, a *sippResult, callees ...*sippResult) {
	t.Helper()
	for _, m := range a.Received() {
		who := fmt.Sprintf("%s received %q", a.Name, m.First)
		if m.Status > 0 {
			checkSingleVia(t, who, m, a.Addr)
		} else {
			checkSingleVia(t, who, m, srv.Addr)
		}
		if m.Has("Contact") {
			checkContactIs(t, who, m, srv.Addr)
		}
		if m.Has("Record-Route") {
			t.Errorf("%s: has Record-Route %q", who, m.HeaderLines("Record-Route"))
		}
	}
	for _, b := range callees {
		checkNoLeak(t, a.Name, a.Received(), calleeSecrets(b)...)
	}
}

// checkAnswerRelayed checks that the caller got exactly one 200 for its
// INVITE and that it carries the callee's SDP unchanged.
func checkAnswerRelayed(t *testing.T, a, b *sippResult) {
	t.Helper()
	var oks []sipMsg
	for _, m := range a.ReceivedFinals("INVITE") {
		if m.Status == 200 {
			oks = append(oks, m)
		}
	}
	if len(oks) != 1 {
		t.Errorf("%s: %d distinct 200 responses to INVITE, want 1", a.Name, len(oks))
		return
	}
	var bOK *sipMsg
	for _, m := range b.Sent() {
		if _, meth := m.CSeq(); m.Status == 200 && meth == "INVITE" {
			bOK = &m
			break
		}
	}
	if bOK == nil {
		t.Errorf("%s sent no 200 for the INVITE", b.Name)
		return
	}
	checkSameBody(t, fmt.Sprintf("200 received by %s", a.Name), *bOK, oks[0])
}

// checkAckRelayed checks that b received the ACK for its answer to the
// INVITE inv: same Call-ID, CSeq number of the INVITE, method ACK.
func checkAckRelayed(t *testing.T, b *sippResult, inv sipMsg) {
	t.Helper()
	n, _ := inv.CSeq()
	for _, m := range b.ReceivedRequests("ACK") {
		an, am := m.CSeq()
		if an == n && am == "ACK" && m.Header("Call-ID") == inv.Header("Call-ID") {
			return
		}
	}
	t.Errorf("%s received no ACK for its answer to the INVITE with CSeq %d (received: %s)",
		b.Name, n, strings.Join(startLines(b.Received()), " | "))
}

// checkInDialog checks that a request b received belongs to the dialog of
// the INVITE bInv: same Call-ID, single Via of the softswitch.
func checkInDialog(t *testing.T, srv *server, who string, m, bInv sipMsg) {
	t.Helper()
	if m.Header("Call-ID") != bInv.Header("Call-ID") {
		t.Errorf("%s: Call-ID %q, want the dialog's %q", who, m.Header("Call-ID"), bInv.Header("Call-ID"))
	}
	checkSingleVia(t, who, m, srv.Addr)
	if m.Has("Record-Route") {
		t.Errorf("%s: has Record-Route", who)
	}
}

// sentResponse is the first response b sent with status to a request of method.
func sentResponse(r *sippResult, status int, method string, nth int) (sipMsg, bool) {
	i := 0
	for _, m := range r.Sent() {
		if _, meth := m.CSeq(); m.Status == status && meth == method {
			if i == nth {
				return m, true
			}
			i++
		}
	}
	return sipMsg{}, false
}

// receivedResponse is the nth distinct response r received with status to
// a request of method.
func receivedResponse(r *sippResult, status int, method string, nth int) (sipMsg, bool) {
	i := 0
	seen := map[string]bool{}
	for _, m := range r.ReceivedResponses(method) {
		if m.Status != status {
			continue
		}
		n, _ := m.CSeq()
		k := fmt.Sprintf("%d/%d", m.Status, n)
		if seen[k] {
			continue
		}
		seen[k] = true
		if i == nth {
			return m, true
		}
		i++
	}
	return sipMsg{}, false
}
