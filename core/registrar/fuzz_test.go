package registrar

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/authlimit"
	"github.com/softswitch/softswitch/core/digest"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/sipcheck"
	"github.com/softswitch/softswitch/core/sipparse"
	"github.com/softswitch/softswitch/core/store"
)

type memStore struct{}

func (memStore) SaveBindings(string, []store.Binding) {}
func (memStore) Bindings() ([]store.Binding, error)   { return nil, nil }

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// FuzzRegister drives REGISTER handling behind a valid login: the fuzzer
// writes the request line's URI, the To, Contact and Expires values and
// extra header lines; the harness adds credentials that pass, so that the
// binding code itself is what gets fuzzed. Nothing may panic, and every
// answer must be a final status.
func FuzzRegister(f *testing.F) {
	a := digest.NewAuthority("softswitch", []string{digest.MD5}, time.Hour)
	subs := &auth.Subscribers{}
	subs.Set([]store.Subscriber{{Number: "1001", HA1MD5: digest.HA1(digest.MD5, "1001", "softswitch", "pw-1001xx")}})
	bus := events.New()
	loc, err := NewLocation(memStore{}, bus)
	if err != nil {
		f.Fatal(err)
	}
	r := &Registrar{Loc: loc, Auth: &auth.Authenticator{Digest: a, Subs: subs, Limiter: authlimit.New(authlimit.Config{})},
		MinExpires: 60, MaxExpires: 3600, DefaultExpires: 3600, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	parser := sipparse.New()
	nc := 0
	f.Add("sip:example.com", "<sip:1001@example.com>", "<sip:1001@192.0.2.1:5060>;expires=60", "600", "")
	f.Add("sip:example.com", "<sip:1001@example.com>", "*", "0", "")
	f.Add("sip:example.com", "sip:1001@example.com", "<sip:1001@h>;expires=99999999999999999999, <sip:x@y>", "-1", "Expires: 5\r\n")
	f.Fuzz(func(t *testing.T, ruri, to, contact, expires, extra string) {
		nc++
		nonce := a.NewNonce()
		ncs := fmt.Sprintf("%08x", nc)
		ha1 := digest.HA1(digest.MD5, "1001", "softswitch", "pw-1001xx")
		resp := md5hex(ha1 + ":" + nonce + ":" + ncs + ":c0ffee:auth:" + md5hex("REGISTER:sip:example.com"))
		raw := "REGISTER " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK" + ncs + "\r\n" +
			"From: <sip:1001@example.com>;tag=f\r\nTo: " + to + "\r\nCall-ID: fuzz@example.com\r\nCSeq: " + fmt.Sprint(nc) + " REGISTER\r\n" +
			"Contact: " + contact + "\r\nExpires: " + expires + "\r\n" + extra +
			`Authorization: Digest username="1001", realm="softswitch", nonce="` + nonce + `", uri="sip:example.com", response="` + resp +
			`", algorithm=MD5, cnonce="c0ffee", qop=auth, nc=` + ncs + "\r\nContent-Length: 0\r\n\r\n"
		if strings.Count(raw, "\r\n\r\n") != 1 {
			return
		}
		m, err := parser.ParseSIP([]byte(raw))
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok || sipcheck.Request(req) != nil {
			return // the server answers these before the registrar sees them
		}
		req.SetSource(netip.MustParseAddrPort("192.0.2.1:5060").String())
		res := r.handle(req)
		if res == nil || res.StatusCode < 200 || res.StatusCode > 699 {
			t.Fatalf("answer %v to:\n%s", res, raw)
		}
	})
}
