package radius_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	ourradius "github.com/softswitch/softswitch/aaa/radius"
	"github.com/softswitch/softswitch/aaa/radius/freeradius"
)

const users = `1001	Cleartext-Password := "pw1001"
1002	Cleartext-Password := "pw1002"
	Session-Timeout = 120,
	Reply-Message = "calling card",
	Class = "card-42"
`

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// sipDigest is what a phone answering a challenge computes (RFC 2617,
// qop=auth).
func sipDigest(user, password, nonce, cnonce string) ourradius.Digest {
	d := ourradius.Digest{Username: user, Realm: "switch.test", Nonce: nonce, Method: "INVITE",
		URI: "sip:0302000@switch.test", QOP: "auth", CNonce: cnonce, NonceCount: "00000001"}
	ha1 := md5hex(user + ":" + d.Realm + ":" + password)
	ha2 := md5hex(d.Method + ":" + d.URI)
	d.Response = md5hex(ha1 + ":" + nonce + ":" + d.NonceCount + ":" + cnonce + ":" + d.QOP + ":" + ha2)
	return d
}

func access(t *testing.T, c *ourradius.Client, d ourradius.Digest) (*radius.Packet, error) {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, nil)
	if err := d.AddTo(p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Exchange(ctx, p)
}

// FreeRADIUS checks SIP digest responses it is given in the
// draft-sterman attributes (the switch never sees a password), answers
// with a signed Access-Accept or Access-Reject, and hands a calling-card
// user's Session-Timeout, Reply-Message and Class back.
func TestFreeRADIUSDigest(t *testing.T) {
	srv := freeradius.Start(t, freeradius.Options{Secret: "rad-s3cret", Users: users})
	c := ourradius.New([]ourradius.Server{{Addr: srv.Auth, Secret: []byte("rad-s3cret")}})
	defer c.Close()

	resp, err := access(t, c, sipDigest("1001", "pw1001", "n0nce1", "c0ffee"))
	if err != nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("right password: %v %v\n%s", resp, err, srv.Log())
	}
	resp, err = access(t, c, sipDigest("1002", "pw1002", "n0nce2", "beef"))
	if err != nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("calling card user: %v %v", resp, err)
	}
	if st := rfc2865.SessionTimeout_Get(resp); st != 120 || rfc2865.ReplyMessage_GetString(resp) != "calling card" ||
		string(rfc2865.Class_Get(resp)) != "card-42" {
		t.Fatalf("Session-Timeout %d, Reply-Message %q, Class %q", st, rfc2865.ReplyMessage_GetString(resp), rfc2865.Class_Get(resp))
	}
	for what, d := range map[string]ourradius.Digest{
		"wrong password": sipDigest("1001", "guess", "n0nce3", "c0ffee"),
		"unknown user":   sipDigest("9999", "pw1001", "n0nce4", "c0ffee"),
	} {
		resp, err := access(t, c, d)
		if err != nil || resp.Code != radius.CodeAccessReject {
			t.Fatalf("%s: %v %v", what, resp, err)
		}
	}
	if c.Stats.Dropped.Load() != 0 {
		t.Fatalf("%d answers dropped", c.Stats.Dropped.Load())
	}
}

// FreeRADIUS 3.2.1 as Debian ships it signs no Access-Accept: the client
// drops such answers (Blast-RADIUS) and the exchange fails, however right
// the password.
func TestFreeRADIUSUnsignedAnswersDropped(t *testing.T) {
	srv := freeradius.Start(t, freeradius.Options{Secret: "rad-s3cret", Users: users, Unsigned: true})
	c := ourradius.New([]ourradius.Server{{Addr: srv.Auth, Secret: []byte("rad-s3cret")}})
	c.Timeout, c.Tries = 200*time.Millisecond, 2
	defer c.Close()
	if resp, err := access(t, c, sipDigest("1001", "pw1001", "n0nce1", "c0ffee")); err == nil {
		t.Fatalf("an unsigned answer was taken: %v", resp)
	}
	if c.Stats.Dropped.Load() != 2 {
		t.Fatalf("%d answers dropped, want 2 (one per try)", c.Stats.Dropped.Load())
	}
}

// Accounting-Request Start and Stop are acknowledged and land in the
// detail file with their session id.
func TestFreeRADIUSAccounting(t *testing.T) {
	srv := freeradius.Start(t, freeradius.Options{Secret: "rad-s3cret", Users: users})
	c := ourradius.New([]ourradius.Server{{Addr: srv.Acct, Secret: []byte("rad-s3cret")}})
	defer c.Close()
	for _, st := range []rfc2866.AcctStatusType{rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_Stop} {
		p := radius.New(radius.CodeAccountingRequest, nil)
		rfc2865.UserName_SetString(p, "1001")
		rfc2866.AcctStatusType_Set(p, st)
		rfc2866.AcctSessionID_SetString(p, "sys1-42")
		resp, err := c.Exchange(context.Background(), p)
		if err != nil || resp.Code != radius.CodeAccountingResponse {
			t.Fatalf("%v: %v %v\n%s", st, resp, err, srv.Log())
		}
	}
	detail, err := os.ReadFile(srv.Detail)
	if err != nil || strings.Count(string(detail), `Acct-Session-Id = "sys1-42"`) != 2 ||
		!strings.Contains(string(detail), "Acct-Status-Type = Start") || !strings.Contains(string(detail), "Acct-Status-Type = Stop") {
		t.Fatalf("detail file: %v\n%s", err, detail)
	}
}

// A stopped primary: the secondary answers, the primary is reported
// down; started again and past its dead time, it answers again and is
// reported up.
func TestFreeRADIUSFailoverAndBack(t *testing.T) {
	primary := freeradius.Start(t, freeradius.Options{Secret: "one", Users: users})
	secondary := freeradius.Start(t, freeradius.Options{Secret: "two", Users: users})
	c := ourradius.New([]ourradius.Server{{Addr: primary.Auth, Secret: []byte("one")}, {Addr: secondary.Auth, Secret: []byte("two")}})
	c.Timeout, c.Tries, c.DeadTime = 200*time.Millisecond, 2, time.Second
	var mu sync.Mutex
	var states []string
	c.OnState = func(a netip.AddrPort, up bool) {
		mu.Lock()
		defer mu.Unlock()
		states = append(states, map[bool]string{true: "up", false: "down"}[up])
	}
	defer c.Close()
	if resp, err := access(t, c, sipDigest("1001", "pw1001", "a1", "b1")); err != nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("both up: %v %v", resp, err)
	}
	primary.Stop()
	if resp, err := access(t, c, sipDigest("1001", "pw1001", "a2", "b2")); err != nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("primary stopped: %v %v", resp, err)
	}
	primary.Restart()
	time.Sleep(1100 * time.Millisecond) // its dead time
	before := c.Stats.Timeouts.Load()
	if resp, err := access(t, c, sipDigest("1001", "pw1001", "a3", "b3")); err != nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("primary back: %v %v", resp, err)
	}
	if c.Stats.Timeouts.Load() != before {
		t.Fatal("the primary did not answer after its return")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(states, ",") != "down,up" {
		t.Fatalf("states %v, want down, up", states)
	}
}
