package systest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestRegisterDigestMD5: REGISTER is challenged with one MD5 Digest
// challenge and accepted with the right credentials; the 200 lists the
// contact with its expiry.
func TestRegisterDigestMD5(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	phone := freePort(t) // only the binding is looked at: nothing listens here

	r := register(t, srv, "1002", "secret1002", contactFor("1002", phone), 3600)
	r.requireOK(t)

	finals := requireFinals(t, r, "REGISTER", 401, 200)
	checkChallenge(t, "401 to REGISTER", finals[0], "WWW-Authenticate", []string{"MD5"})
	t.Logf("sipp's credentials: %s", r.lastSentRequest(t, "REGISTER").Header("Authorization"))

	contacts := contactsWithExpires(finals[1])
	want := fmt.Sprintf("sip:1002@127.0.0.1:%d", phone)
	exp, ok := contacts[want]
	if !ok {
		t.Fatalf("200 to REGISTER lists contacts %v, want %s", contacts, want)
	}
	if exp <= 0 || exp > 3600 {
		t.Errorf("200 to REGISTER gives %s expires %d, want 1..3600", want, exp)
	}
	if len(contacts) != 1 {
		t.Errorf("200 to REGISTER lists %d contacts %v, want only %s", len(contacts), contacts, want)
	}
}

// TestRegisterBadCredentials: a wrong password and an unknown user get the
// same answer, a 401 with a fresh challenge, and register nothing.
func TestRegisterBadCredentials(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	phone := freePort(t)

	wrongPw := runSipp(t, sippOpts{
		Name: "register-wrong-password", Scenario: "register_rejected.xml", Remote: srv.Addr,
		Service: "1002", AuthUser: "1002", AuthPass: "not-the-password",
		Keys:    map[string]string{"contact": contactFor("1002", phone), "expires": "3600"},
		Timeout: 15 * time.Second,
	})
	unknown := runSipp(t, sippOpts{
		Name: "register-unknown-user", Scenario: "register_rejected.xml", Remote: srv.Addr,
		Service: "1999", AuthUser: "1999", AuthPass: "secret1999",
		Keys:    map[string]string{"contact": contactFor("1999", phone), "expires": "3600"},
		Timeout: 15 * time.Second,
	})
	wrongPw.requireOK(t)
	unknown.requireOK(t)

	wf := requireFinals(t, wrongPw, "REGISTER", 401, 401)
	uf := requireFinals(t, unknown, "REGISTER", 401, 401)
	for _, c := range []struct {
		name   string
		finals []sipMsg
	}{{"wrong password", wf}, {"unknown user", uf}} {
		n1 := checkChallenge(t, c.name+": first 401", c.finals[0], "WWW-Authenticate", []string{"MD5"})
		n2 := checkChallenge(t, c.name+": 401 to the credentials", c.finals[1], "WWW-Authenticate", []string{"MD5"})
		if len(n1) == 1 && len(n2) == 1 && n1[0] == n2[0] {
			t.Errorf("%s: the 401 to the credentials reuses the nonce %q, want a fresh challenge", c.name, n1[0])
		}
	}
	// The same answer: status, reason and header set, challenge parameters.
	if a, b := responseShape(wf[1]), responseShape(uf[1]); a != b {
		t.Errorf("wrong password and unknown user are answered differently:\nwrong password: %s\nunknown user:   %s", a, b)
	}

	// Nothing was registered: a call to 1002 finds no binding.
	call := runSipp(t, callOpts(srv, "call-unregistered", "uac_rejected.xml", "1002"))
	call.requireOK(t)
	requireFinals(t, call, "INVITE", 407, 480)
}

// responseShape is a response with every value that must differ between
// two answers (tags, nonces, Call-ID...) left out.
func responseShape(m sipMsg) string {
	names := m.HeaderNames()
	sort.Strings(names)
	var chal []string
	for _, l := range m.HeaderLines("WWW-Authenticate") {
		scheme, p := authParams(l)
		keys := make([]string, 0, len(p))
		for k, v := range p {
			switch k {
			case "nonce", "opaque":
				keys = append(keys, k)
			default:
				keys = append(keys, k+"="+v)
			}
		}
		sort.Strings(keys)
		chal = append(chal, scheme+" "+strings.Join(keys, ","))
	}
	return fmt.Sprintf("%d %s; headers %v; challenges %v", m.Status, m.Reason, names, chal)
}

// TestRegisterIntervalTooBrief: Expires below min_expires is refused with
// 423 and Min-Expires: 60.
func TestRegisterIntervalTooBrief(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	r := runSipp(t, sippOpts{
		Name: "register-brief", Scenario: "register_brief.xml", Remote: srv.Addr,
		Service: "1002", AuthUser: "1002", AuthPass: "secret1002",
		Keys:    map[string]string{"contact": contactFor("1002", freePort(t)), "expires": "30"},
		Timeout: 15 * time.Second,
	})
	r.requireOK(t)
	finals := r.ReceivedFinals("REGISTER")
	last := finals[len(finals)-1]
	if last.Status != 423 {
		t.Fatalf("final response %d, want 423", last.Status)
	}
	if got := strings.TrimSpace(last.Header("Min-Expires")); got != "60" {
		t.Errorf("423 Min-Expires %q, want 60", got)
	}
	t.Logf("REGISTER with Expires: 30 answered %v", r.finalStatuses("REGISTER"))
}

// TestRegisterContactsAndRemoval: two contacts per user; Expires: 0 removes
// one binding; Contact: * with Expires: 0 removes all, after which calls to
// the user get 480.
func TestRegisterContactsAndRemoval(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	p1, p2 := freePort(t), freePort(t)
	c1 := fmt.Sprintf("sip:1002@127.0.0.1:%d", p1)
	c2 := fmt.Sprintf("sip:1002@127.0.0.1:%d", p2)

	registerContact(t, srv, "1002", "secret1002", p1)
	r := registerContact(t, srv, "1002", "secret1002", p2)
	got := contactsWithExpires(r.ReceivedFinals("REGISTER")[1])
	if _, ok := got[c1]; !ok {
		t.Errorf("after two REGISTERs the 200 lists %v, want %s too", keys(got), c1)
	}
	if _, ok := got[c2]; !ok {
		t.Errorf("after two REGISTERs the 200 lists %v, want %s too", keys(got), c2)
	}

	// Expires: 0 for the first contact.
	r = register(t, srv, "1002", "secret1002", contactFor("1002", p1), 0)
	r.requireOK(t)
	got = contactsWithExpires(requireFinals(t, r, "REGISTER", 401, 200)[1])
	if _, ok := got[c1]; ok {
		t.Errorf("after Expires: 0 for %s the 200 still lists it: %v", c1, got)
	}
	if _, ok := got[c2]; !ok {
		t.Errorf("after Expires: 0 for %s the 200 lists %v, want %s kept", c1, keys(got), c2)
	}

	// Contact: * with Expires: 0.
	r = register(t, srv, "1002", "secret1002", "*", 0)
	r.requireOK(t)
	got = contactsWithExpires(requireFinals(t, r, "REGISTER", 401, 200)[1])
	if len(got) != 0 {
		t.Errorf("after Contact: * the 200 lists %v, want no contact", got)
	}

	call := runSipp(t, callOpts(srv, "call-after-unregister", "uac_rejected.xml", "1002"))
	call.requireOK(t)
	requireFinals(t, call, "INVITE", 407, 480)
}

// TestRegistrationSurvivesRestart: bindings are kept in the data dir across
// SIGTERM and a new start; a call then still reaches the contact.
func TestRegistrationSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	callee := startUAS(t, "callee-1002", "uas_answer.xml", sippOpts{Keys: map[string]string{"user": "1002"}, Timeout: 40 * time.Second})
	registerContact(t, srv, "1002", "secret1002", callee.Port)

	srv.restart()

	caller := runSipp(t, callOpts(srv, "caller-1001", "uac_call_bye.xml", "1002"))
	b := callee.wait()
	caller.expectOK(t)
	b.requireOK(t)
	checkBLegInvite(t, srv, caller, b, "1001", "1002", fmt.Sprintf("sip:1002@127.0.0.1:%d", callee.Port))
}

// TestOptions: OPTIONS is answered 200 with Allow, Accept and Supported.
func TestOptions(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultConfig())
	r := runSipp(t, sippOpts{Name: "options", Scenario: "options.xml", Remote: srv.Addr, Timeout: 10 * time.Second})
	r.requireOK(t)
	ok := requireFinals(t, r, "OPTIONS", 200)[0]
	allow := ok.Values("Allow")
	for _, m := range []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE"} {
		if !slices.Contains(allow, m) {
			t.Errorf("Allow %q lacks %s", ok.Header("Allow"), m)
		}
	}
	if !slices.Contains(ok.Values("Accept"), "application/sdp") {
		t.Errorf("Accept %q lacks application/sdp", ok.Header("Accept"))
	}
	sup := ok.Values("Supported")
	for _, o := range []string{"100rel", "timer"} {
		if !slices.Contains(sup, o) {
			t.Errorf("Supported %q lacks %s", ok.Header("Supported"), o)
		}
	}
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDefaultsChallengeRegister: the README's first command runs with no
// config file; a REGISTER is challenged with digest, qop="auth", one
// challenge per default algorithm (MD5 first, then SHA-256). With no
// subscribers provisioned, the credentials are refused with the same 401.
func TestDefaultsChallengeRegister(t *testing.T) {
	t.Parallel()
	srv := startServerDefaults(t)
	r := runSipp(t, sippOpts{
		Name: "register-defaults", Scenario: "register_rejected.xml", Remote: srv.Addr,
		Service: "1001", AuthUser: "1001", AuthPass: "anything-at-all",
		Keys:    map[string]string{"contact": contactFor("1001", freePort(t)), "expires": "3600"},
		Timeout: 15 * time.Second,
	})
	r.requireOK(t)
	finals := requireFinals(t, r, "REGISTER", 401, 401)
	checkChallenge(t, "401 with embedded defaults", finals[0], "WWW-Authenticate", []string{"MD5", "SHA-256"})
}
