package digest

import (
	"strings"
	"testing"
	"time"
)

// respond computes a client's response, independently of Check.
func respond(alg, user, realm, pass, method, uri, nonce, nc, cnonce string) string {
	ha1 := HA1(alg, user, realm, pass)
	ha2 := hexHash(alg, method, uri)
	return hexHash(alg, ha1, nonce, nc, cnonce, "auth", ha2)
}

func creds(a *Authority, alg, user, pass, nonce, nc string) *Credentials {
	uri := "sip:example.com"
	return &Credentials{Username: user, Realm: a.Realm, Nonce: nonce, URI: uri, Algorithm: alg,
		CNonce: "c0ffee", QOP: "auth", NC: nc,
		Response: respond(alg, user, a.Realm, pass, "REGISTER", uri, nonce, nc, "c0ffee")}
}

func TestHA1KnownValue(t *testing.T) {
	// echo -n 'alice:atlanta.com:secret' | md5sum
	if got := HA1(MD5, "alice", "atlanta.com", "secret"); got != "4c00389f118405a62dc666c595d7e0d8" {
		t.Fatalf("HA1 %s", got)
	}
	if got := HA1(SHA256, "alice", "atlanta.com", "secret"); got != "a389bbc55b6a1287514f11b798e088a13d5d248f861791e6af89a51164feac0d" {
		t.Fatalf("SHA-256 HA1 %s", got)
	}
}

func TestCheck(t *testing.T) {
	a := NewAuthority("softswitch", []string{MD5, SHA256}, time.Minute)
	for _, alg := range []string{MD5, SHA256} {
		ha1 := HA1(alg, "1001", "softswitch", "password1")
		n := a.NewNonce()
		if r := a.Check(creds(a, alg, "1001", "password1", n, "00000001"), "REGISTER", ha1); r != OK {
			t.Fatalf("%s: good credentials: %v", alg, r)
		}
		if r := a.Check(creds(a, alg, "1001", "password1", n, "00000001"), "REGISTER", ha1); r != Replayed {
			t.Fatalf("%s: replayed nc accepted: %v", alg, r)
		}
		if r := a.Check(creds(a, alg, "1001", "password1", n, "00000002"), "REGISTER", ha1); r != OK {
			t.Fatalf("%s: next nc refused: %v", alg, r)
		}
		if r := a.Check(creds(a, alg, "1001", "wrong", a.NewNonce(), "00000001"), "REGISTER", ha1); r != Bad {
			t.Fatalf("%s: wrong password: %v", alg, r)
		}
		if r := a.Check(creds(a, alg, "1001", "password1", a.NewNonce(), "00000001"), "REGISTER", ""); r != Bad {
			t.Fatalf("%s: unknown user: %v", alg, r)
		}
		other := NewAuthority("softswitch", []string{MD5, SHA256}, time.Minute)
		if r := a.Check(creds(a, alg, "1001", "password1", other.NewNonce(), "00000001"), "REGISTER", ha1); r != Bad {
			t.Fatalf("%s: foreign nonce: %v", alg, r)
		}
	}
}

func TestStale(t *testing.T) {
	a := NewAuthority("softswitch", []string{MD5}, 10*time.Millisecond)
	ha1 := HA1(MD5, "1001", "softswitch", "password1")
	n := a.NewNonce()
	time.Sleep(20 * time.Millisecond)
	if r := a.Check(creds(a, MD5, "1001", "password1", n, "00000001"), "REGISTER", ha1); r != Stale {
		t.Fatalf("expired nonce: %v", r)
	}
	a.Purge(time.Now())
}

func TestChallenges(t *testing.T) {
	a := NewAuthority("softswitch", []string{SHA256, MD5}, time.Minute)
	cs := a.Challenges(true)
	if len(cs) != 2 || !strings.Contains(cs[0], "algorithm=SHA-256") || !strings.Contains(cs[1], "algorithm=MD5") {
		t.Fatalf("challenges %q", cs)
	}
	for _, c := range cs {
		if !strings.Contains(c, `qop="auth"`) || !strings.Contains(c, "stale=true") {
			t.Fatalf("challenge %q", c)
		}
	}
}

func TestParseCredentials(t *testing.T) {
	c, err := ParseCredentials(`Digest username="1001",realm="softswitch",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:5060",nonce="abc",response="f00",algorithm=MD5,opaque="x"`)
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{Username: "1001", Realm: "softswitch", CNonce: "6b8b4567", NC: "00000001", QOP: "auth",
		URI: "sip:127.0.0.1:5060", Nonce: "abc", Response: "f00", Algorithm: "MD5", Opaque: "x"}
	if *c != want {
		t.Fatalf("got %+v", *c)
	}
	for _, bad := range []string{"", "Basic abc", `Digest username="a`, `Digest realm="r"`, "Digest =x"} {
		if _, err := ParseCredentials(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add(`Digest username="1001",realm="r",nonce="n",uri="sip:a",response="x",qop=auth,nc=00000001,cnonce="c"`)
	f.Add(`Digest username="a\"b", nonce=x, uri=y, response=z`)
	a := NewAuthority("r", []string{MD5, SHA256}, time.Minute)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredentials(s)
		if err != nil {
			return
		}
		if c.Username == "" || c.Nonce == "" {
			t.Fatal("accepted credentials without username or nonce")
		}
		if a.Check(c, "REGISTER", HA1(MD5, c.Username, "r", "pw")) == OK {
			t.Fatalf("random credentials passed: %+v", c)
		}
	})
}

func TestLimiter(t *testing.T) {
	l := &Limiter{Max: 3}
	now := time.Unix(600, 0)
	for i := 0; i < 3; i++ {
		if l.Blocked("192.0.2.1", now) {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("192.0.2.1", now)
	}
	if !l.Blocked("192.0.2.1", now) || l.Blocked("192.0.2.2", now) {
		t.Fatal("limit not per source")
	}
	if l.Blocked("192.0.2.1", now.Add(time.Minute)) {
		t.Fatal("window did not roll")
	}
}
