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
		// Another key's nonce (the pair's other node, a lost key): a
		// right password gets a stale challenge, a wrong one is a failure.
		other := NewAuthority("softswitch", []string{MD5, SHA256}, time.Minute)
		if r := a.Check(creds(a, alg, "1001", "password1", other.NewNonce(), "00000001"), "REGISTER", ha1); r != Stale {
			t.Fatalf("%s: foreign nonce, right password: %v", alg, r)
		}
		if r := a.Check(creds(a, alg, "1001", "wrong", other.NewNonce(), "00000001"), "REGISTER", ha1); r != Bad {
			t.Fatalf("%s: foreign nonce, wrong password: %v", alg, r)
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

// The key is kept (the store holds the Secret): after a clean restart the
// nonces in use stay valid with their replay protection; after a crash
// (no counts handed over) they get a stale challenge, never a failure,
// so that a response captured before the crash cannot be replayed.
func TestNoncesAcrossRestart(t *testing.T) {
	sec := NewSecret()
	ha1 := HA1(MD5, "1001", "softswitch", "password1")
	first := NewAuthorityWith("softswitch", []string{MD5}, time.Minute, sec)
	n := first.NewNonce()
	used := creds(first, MD5, "1001", "password1", n, "00000001")
	if r := first.Check(used, "REGISTER", ha1); r != OK {
		t.Fatal(r)
	}
	fresh := first.NewNonce() // issued, never used before the restart
	time.Sleep(2 * time.Millisecond)

	clean := NewAuthorityWith("softswitch", []string{MD5}, time.Minute, sec)
	clean.Restore(first.Snapshot(time.Now()))
	if r := clean.Check(used, "REGISTER", ha1); r != Replayed {
		t.Fatalf("clean restart: a replay of a response from before: %v", r)
	}
	if r := clean.Check(creds(first, MD5, "1001", "password1", n, "00000002"), "REGISTER", ha1); r != OK {
		t.Fatalf("clean restart: the nonce in use: %v", r)
	}
	if r := clean.Check(creds(first, MD5, "1001", "password1", fresh, "00000001"), "REGISTER", ha1); r != OK {
		t.Fatalf("clean restart: an unused nonce: %v", r)
	}

	crashed := NewAuthorityWith("softswitch", []string{MD5}, time.Minute, sec)
	if r := crashed.Check(used, "REGISTER", ha1); r != Stale {
		t.Fatalf("after a crash: a replay must be stale, not OK: %v", r)
	}
	if r := crashed.Check(creds(first, MD5, "1001", "wrong", n, "00000005"), "REGISTER", ha1); r != Bad {
		t.Fatalf("after a crash: a wrong password: %v", r)
	}
	if r := crashed.Check(creds(crashed, MD5, "1001", "password1", crashed.NewNonce(), "00000001"), "REGISTER", ha1); r != OK {
		t.Fatalf("after a crash: a new nonce: %v", r)
	}
}

// A standby that took its active node's key and counts (replication)
// takes the active's nonces, refuses their counts replayed, and tells the
// counts it accepts itself.
func TestStandbyTakesKeyAndCounts(t *testing.T) {
	ha1 := HA1(MD5, "1001", "softswitch", "password1")
	active := NewAuthority("softswitch", []string{MD5}, time.Minute)
	time.Sleep(2 * time.Millisecond)
	standby := NewAuthority("softswitch", []string{MD5}, time.Minute)
	type count struct {
		nonce string
		nc    uint64
	}
	var told []count
	active.OnCount = func(n string, nc uint64, exp int64) { told = append(told, count{n, nc}); standby.Count(n, nc, exp) }
	n := active.NewNonce()
	if r := active.Check(creds(active, MD5, "1001", "password1", n, "00000001"), "REGISTER", ha1); r != OK {
		t.Fatal(r)
	}
	if len(told) != 1 || told[0] != (count{n, 1}) {
		t.Fatalf("counts told: %v", told)
	}
	if r := standby.Check(creds(active, MD5, "1001", "password1", n, "00000002"), "REGISTER", ha1); r != Stale {
		t.Fatalf("another key's nonce before the key is taken: %v", r)
	}
	standby.SetSecret(active.Secret())
	if r := standby.Check(creds(active, MD5, "1001", "password1", n, "00000001"), "REGISTER", ha1); r != Replayed {
		t.Fatalf("a count the active node took, replayed at the standby: %v", r)
	}
	if r := standby.Check(creds(active, MD5, "1001", "password1", n, "00000002"), "REGISTER", ha1); r != OK {
		t.Fatalf("the next count at the standby: %v", r)
	}
}
