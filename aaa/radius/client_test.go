package radius

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"maps"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// fake is a RADIUS server for the client's unit tests: answer decides
// what goes back for each request (nil: nothing).
type fake struct {
	pc       net.PacketConn
	secret   []byte
	answer   func(req *radius.Packet, from string) []byte
	received atomic.Int64
}

// answerFunc answers one request (nil: no answer); it runs on its own
// goroutine and may take its time.
type answerFunc func(f *fake, req *radius.Packet) []byte

func startFake(t *testing.T, secret string, answer answerFunc) *fake {
	return startFakeFrom(t, secret, func(f *fake, req *radius.Packet, _ string) []byte { return answer(f, req) })
}

func startFakeFrom(t *testing.T, secret string, answer func(f *fake, req *radius.Packet, from string) []byte) *fake {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{pc: pc, secret: []byte(secret)}
	f.answer = func(req *radius.Packet, from string) []byte { return answer(f, req, from) }
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			f.received.Add(1)
			raw := append([]byte(nil), buf[:n]...)
			req, err := radius.Parse(raw, f.secret)
			if err != nil || !signedRequest(raw, f.secret) {
				continue // what a server that checks Message-Authenticator does
			}
			go func() {
				if b := f.answer(req, from.String()); b != nil {
					pc.WriteTo(b, from)
				}
			}()
		}
	}()
	return f
}

func (f *fake) addr() netip.AddrPort { return f.pc.LocalAddr().(*net.UDPAddr).AddrPort() }

// signedRequest checks an Access-Request's Message-Authenticator the way
// RFC 3579 says, independently of the client's code.
func signedRequest(raw, secret []byte) bool {
	if radius.Code(raw[0]) != radius.CodeAccessRequest {
		return true
	}
	if raw[20] != 80 || raw[21] != 18 {
		return false
	}
	c := append([]byte(nil), raw...)
	clear(c[22:38])
	m := hmac.New(md5.New, secret)
	m.Write(c)
	return hmac.Equal(m.Sum(nil), raw[22:38])
}

// reply is an answer to req: signed with a Message-Authenticator unless
// unsigned, with secret for both authenticators.
func reply(req *radius.Packet, code radius.Code, secret []byte, unsigned bool) []byte {
	p := &radius.Packet{Code: code, Identifier: req.Identifier, Authenticator: req.Authenticator, Secret: secret}
	rfc2865.ReplyMessage_SetString(p, "hello")
	if !unsigned {
		p.Attributes = append(radius.Attributes{{Type: 80, Attribute: make([]byte, 16)}}, p.Attributes...)
		b, _ := p.MarshalBinary() // the request's authenticator in place, as RFC 3579 wants
		m := hmac.New(md5.New, secret)
		m.Write(b)
		copy(p.Attributes[0].Attribute, m.Sum(nil))
	}
	b, _ := p.Encode()
	return b
}

func accessRequest() *radius.Packet {
	p := radius.New(radius.CodeAccessRequest, nil)
	rfc2865.UserName_SetString(p, "1001")
	return p
}

func TestSignedAnswerAccepted(t *testing.T) {
	f := startFake(t, "s3cret", func(f *fake, req *radius.Packet) []byte {
		if req.Code == radius.CodeAccountingRequest {
			return reply(req, radius.CodeAccountingResponse, f.secret, true)
		}
		return reply(req, radius.CodeAccessAccept, f.secret, false)
	})
	c := New([]Server{{Addr: f.addr(), Secret: []byte("s3cret")}})
	defer c.Close()
	resp, err := c.Exchange(context.Background(), accessRequest())
	if err != nil || resp.Code != radius.CodeAccessAccept || rfc2865.ReplyMessage_GetString(resp) != "hello" {
		t.Fatalf("%v %v", resp, err)
	}
	// Accounting: no Message-Authenticator needed either way.
	acct := radius.New(radius.CodeAccountingRequest, nil)
	if resp, err := c.Exchange(context.Background(), acct); err != nil || resp.Code != radius.CodeAccountingResponse {
		t.Fatalf("accounting: %v %v", resp, err)
	}
}

// Blast-RADIUS: an Access-Accept without a valid Message-Authenticator,
// or with a Response Authenticator made without the secret, is dropped
// and counted; the exchange goes on waiting and times out.
func TestForgedOrUnsignedAnswersDropped(t *testing.T) {
	for name, answer := range map[string]answerFunc{
		"unsigned": func(f *fake, req *radius.Packet) []byte {
			return reply(req, radius.CodeAccessAccept, f.secret, true)
		},
		"signed with another secret": func(f *fake, req *radius.Packet) []byte {
			return reply(req, radius.CodeAccessAccept, []byte("guess"), false)
		},
		"message authenticator tampered": func(f *fake, req *radius.Packet) []byte {
			b := reply(req, radius.CodeAccessAccept, f.secret, false)
			b[22] ^= 1
			// The Response Authenticator still matches: only the MAC tells.
			p, _ := radius.Parse(b, f.secret)
			p.Authenticator = req.Authenticator
			b2, _ := p.Encode()
			return b2
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := startFake(t, "s3cret", answer)
			c := New([]Server{{Addr: f.addr(), Secret: []byte("s3cret")}})
			c.Timeout, c.Tries = 100*time.Millisecond, 1
			var drops atomic.Int64
			c.OnDrop = func(netip.AddrPort, string) { drops.Add(1) }
			defer c.Close()
			if resp, err := c.Exchange(context.Background(), accessRequest()); err == nil {
				t.Fatalf("accepted %v", resp)
			}
			if c.Stats.Dropped.Load() != 1 || drops.Load() != 1 {
				t.Fatalf("dropped %d, heard %d", c.Stats.Dropped.Load(), drops.Load())
			}
		})
	}
}

// A silent primary is passed over for DeadTime (the secondary answers at
// once meanwhile) and tried again after it; its return is reported.
func TestFailoverAndReturn(t *testing.T) {
	var primaryUp atomic.Bool
	primary := startFake(t, "one", func(f *fake, req *radius.Packet) []byte {
		if !primaryUp.Load() {
			return nil
		}
		return reply(req, radius.CodeAccessReject, f.secret, false)
	})
	secondary := startFake(t, "two", func(f *fake, req *radius.Packet) []byte {
		return reply(req, radius.CodeAccessAccept, f.secret, false)
	})
	c := New([]Server{{Addr: primary.addr(), Secret: []byte("one")}, {Addr: secondary.addr(), Secret: []byte("two")}})
	c.Timeout, c.Tries, c.DeadTime = 50*time.Millisecond, 2, 300*time.Millisecond
	var mu sync.Mutex
	var states []string
	c.OnState = func(a netip.AddrPort, up bool) {
		mu.Lock()
		defer mu.Unlock()
		states = append(states, a.String()+map[bool]string{true: " up", false: " down"}[up])
	}
	defer c.Close()
	resp, err := c.Exchange(context.Background(), accessRequest())
	if err != nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("first: %v %v", resp, err)
	}
	if n := primary.received.Load(); n != 2 {
		t.Fatalf("primary got %d tries, want 2", n)
	}
	start := time.Now()
	if resp, err := c.Exchange(context.Background(), accessRequest()); err != nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("second: %v %v", resp, err)
	}
	if primary.received.Load() != 2 || time.Since(start) > 40*time.Millisecond && primary.received.Load() != 2 {
		t.Fatal("the dead primary was tried again within its dead time")
	}
	primaryUp.Store(true)
	time.Sleep(350 * time.Millisecond)
	if resp, err := c.Exchange(context.Background(), accessRequest()); err != nil || resp.Code != radius.CodeAccessReject {
		t.Fatalf("after the dead time the primary answers: %v %v", resp, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{primary.addr().String() + " down", primary.addr().String() + " up"}
	if len(states) != 2 || states[0] != want[0] || states[1] != want[1] {
		t.Fatalf("states %v, want %v", states, want)
	}
}

// 600 exchanges at once: more than one socket's 256 identifiers, none
// reused while pending (the server checks), every answer to its own
// request.
func TestIdentifiersNeverReusedWhilePending(t *testing.T) {
	var mu sync.Mutex
	pendingNow := map[string]bool{}
	sources := map[string]bool{}
	arrived, all := 0, make(chan struct{})
	var clash atomic.Bool
	f := startFakeFrom(t, "s3cret", func(f *fake, req *radius.Packet, from string) []byte {
		key := from + "/" + strconv.Itoa(int(req.Identifier))
		mu.Lock()
		if pendingNow[key] {
			clash.Store(true)
		}
		pendingNow[key], sources[from] = true, true
		if arrived++; arrived == 600 {
			close(all)
		}
		mu.Unlock()
		// Held until all 600 are pending (however slowly a loaded machine
		// sends them), or 1.5 s: under the client's 2 s timeout.
		select {
		case <-all:
		case <-time.After(1500 * time.Millisecond):
		}
		mu.Lock()
		delete(pendingNow, key)
		mu.Unlock()
		return reply(req, radius.CodeAccessAccept, f.secret, false)
	})
	c := New([]Server{{Addr: f.addr(), Secret: []byte("s3cret")}})
	c.Timeout = 2 * time.Second
	defer c.Close()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < 600; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := accessRequest()
			rfc2865.UserName_SetString(p, string(rune('a'+i%26)))
			resp, err := c.Exchange(context.Background(), p)
			if err != nil || resp.Code != radius.CodeAccessAccept {
				failed.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if failed.Load() != 0 || clash.Load() {
		t.Fatalf("%d failed; identifier reused while pending: %v", failed.Load(), clash.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sources) < 3 {
		t.Fatalf("%d sockets for 600 requests pending at once", len(sources))
	}
}

// An answer that comes after the exchange gave up is counted as late and
// answers nothing else.
func TestLateAnswerIgnored(t *testing.T) {
	var n atomic.Int64
	f := startFake(t, "s3cret", func(f *fake, req *radius.Packet) []byte {
		if n.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond)
			return reply(req, radius.CodeAccessAccept, f.secret, false)
		}
		return reply(req, radius.CodeAccessReject, f.secret, false)
	})
	c := New([]Server{{Addr: f.addr(), Secret: []byte("s3cret")}})
	c.Timeout, c.Tries, c.DeadTime = 100*time.Millisecond, 1, time.Millisecond
	defer c.Close()
	if _, err := c.Exchange(context.Background(), accessRequest()); err == nil {
		t.Fatal("the first exchange did not time out")
	}
	time.Sleep(5 * time.Millisecond) // the dead time
	resp, err := c.Exchange(context.Background(), accessRequest())
	if err != nil || resp.Code != radius.CodeAccessReject {
		t.Fatalf("second: %v %v", resp, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for c.Stats.Late.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.Stats.Late.Load() != 1 {
		t.Fatalf("late %d, want 1", c.Stats.Late.Load())
	}
}

func TestDigestAttributes(t *testing.T) {
	p := radius.New(radius.CodeAccessRequest, []byte("x"))
	d := Digest{Username: "1001", Realm: "switch", Nonce: "abc", Method: "INVITE", URI: "sip:1002@switch",
		QOP: "auth", CNonce: "c1", NonceCount: "00000001", Response: "0123456789abcdef0123456789abcdef"}
	if err := d.AddTo(p); err != nil {
		t.Fatal(err)
	}
	if rfc2865.UserName_GetString(p) != "1001" || string(p.Get(206)) != d.Response {
		t.Fatalf("User-Name or Digest-Response wrong: %v", p.Attributes)
	}
	var subs []string
	for _, a := range p.Attributes {
		if a.Type == 207 {
			if int(a.Attribute[1]) != len(a.Attribute) {
				t.Fatalf("sub-attribute length %d of %d bytes", a.Attribute[1], len(a.Attribute))
			}
			subs = append(subs, strconv.Itoa(int(a.Attribute[0]))+"="+string(a.Attribute[2:]))
		}
	}
	want := "1=switch 2=abc 3=INVITE 4=sip:1002@switch 5=auth 8=c1 9=00000001 10=1001"
	got := ""
	for i, s := range subs {
		if i > 0 {
			got += " "
		}
		got += s
	}
	if got != want {
		t.Fatalf("sub-attributes %q, want %q", got, want)
	}
	if err := (Digest{Response: "short"}).AddTo(p); err == nil {
		t.Fatal("a short response was taken")
	}
}

// The dictionary shipped for RADIUS servers names the attributes the
// switch sends, under its vendor number.
func TestDictionaryMatches(t *testing.T) {
	data, err := os.ReadFile("../../docs/dictionary.softswitch")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"Softswitch-Q850-Cause": int(VSAQ850Cause), "Softswitch-SIP-Status": int(VSASIPStatus),
		"Softswitch-Release-Side": int(VSAReleaseSide), "Softswitch-Gateway": int(VSAGateway),
		"Softswitch-Called-Sent": int(VSACalledSent), "Softswitch-Calling-Sent": int(VSACallingSent),
		"Softswitch-Call-ID": int(VSACallID)}
	got := map[string]int{}
	vendor := 0
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "VENDOR":
			vendor, _ = strconv.Atoi(f[2])
		case len(f) >= 4 && f[0] == "ATTRIBUTE":
			got[f[1]], _ = strconv.Atoi(f[2])
		}
	}
	if vendor != VendorID || !maps.Equal(got, want) {
		t.Fatalf("dictionary: vendor %d, attributes %v; the code: %d, %v", vendor, got, VendorID, want)
	}
}
