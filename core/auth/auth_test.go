package auth

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/authlimit"
	"github.com/softswitch/softswitch/core/digest"
)

// fakeRemote stands in for a RADIUS server in this package's test: it
// knows one password, or answers nothing.
type fakeRemote struct {
	password string
	down     bool
	asked    int
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func (f *fakeRemote) CheckDigest(_ context.Context, c *digest.Credentials, alg, method string) (bool, error) {
	f.asked++
	if f.down {
		return false, errors.New("no answer")
	}
	ha1 := md5hex(c.Username + ":" + c.Realm + ":" + f.password)
	want := md5hex(ha1 + ":" + c.Nonce + ":" + c.NC + ":" + c.CNonce + ":" + c.QOP + ":" + md5hex(method+":"+c.URI))
	return want == c.Response, nil
}

func invite(a *digest.Authority, user, password, nonce, nc string) *sip.Request {
	uri := "sip:1002@sw.test"
	ha1 := md5hex(user + ":sw.test:" + password)
	resp := md5hex(ha1 + ":" + nonce + ":" + nc + ":c0ffee:auth:" + md5hex("INVITE:"+uri))
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "1002", Host: "sw.test"})
	req.SetSource("192.0.2.7:5060")
	req.AppendHeader(sip.NewHeader("Proxy-Authorization", fmt.Sprintf(
		`Digest username="%s", realm="sw.test", nonce="%s", uri="%s", response="%s", algorithm=MD5, cnonce="c0ffee", qop=auth, nc=%s`,
		user, nonce, uri, resp, nc)))
	return req
}

func newAuth(remote Remote) *Authenticator {
	a := &Authenticator{Digest: digest.NewAuthority("sw.test", []string{"MD5"}, time.Minute), Subs: &Subscribers{},
		Limiter: authlimit.New(authlimit.Config{SourceFailures: 100, SourceWindow: time.Minute, PairFailures: 100,
			PairWindow: time.Minute, UserFailures: 100, UserWindow: time.Minute, Bans: []time.Duration{time.Minute},
			Forgive: time.Hour, MaxEntries: 100})}
	a.SetRemote(nil, remote)
	return a
}

// A remote checker decides the password; the nonce stays the switch's
// (a replayed count is refused after the server said yes); no answer is
// a 503, not a failure.
func TestRemoteDigest(t *testing.T) {
	r := &fakeRemote{password: "pw"}
	a := newAuth(r)
	nonce := a.Digest.NewNonce()
	if o := a.Authenticate(invite(a.Digest, "3003", "pw", nonce, "00000001"), true); !o.OK || o.Sub.Number != "3003" {
		t.Fatalf("right password: %+v", o)
	}
	if o := a.Authenticate(invite(a.Digest, "3003", "wrong", nonce, "00000002"), true); o.OK || o.Status != 407 {
		t.Fatalf("wrong password: %+v", o)
	}
	if o := a.Authenticate(invite(a.Digest, "3003", "pw", nonce, "00000001"), true); o.OK || o.Status != 407 {
		t.Fatalf("a replayed nonce count: %+v", o)
	}
	if o := a.Authenticate(invite(a.Digest, "3003", "pw", "not-ours", "00000001"), true); o.OK || !o.Stale {
		t.Fatalf("a nonce not ours, right password: %+v", o)
	}
	r.down = true
	asked := r.asked
	if o := a.Authenticate(invite(a.Digest, "3003", "pw", nonce, "00000005"), true); o.OK || o.Status != 503 || r.asked != asked+1 {
		t.Fatalf("server down: %+v", o)
	}
	res := sip.NewResponseFromRequest(invite(a.Digest, "3003", "pw", nonce, "00000006"), 503, "Service Unavailable", nil)
	a.Challenge(res, Outcome{Status: 503})
	if h := res.GetHeader("Retry-After"); h == nil || res.GetHeader("Proxy-Authenticate") != nil {
		t.Fatalf("503 headers: %v", res)
	}
	// Registrations are the local table's unless SetRemote gives a checker.
	if a.Remote(false) || !a.Remote(true) {
		t.Fatal("Remote() wrong")
	}
}
