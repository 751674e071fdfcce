package call

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/sipparse"
)

// A gateway that offers overload control is told we honour it (oc on our
// Via), and what it asks for in its responses reaches the gateway's
// Feedback; a fork to a subscriber offers nothing.
func TestOverloadControlOfferAndFeedback(t *testing.T) {
	type heard struct {
		loss     int
		validity time.Duration
		seq      int64
	}
	got := make(chan heard, 4)
	gw := target("192.0.2.10")
	gw.OC = func(loss int, validity time.Duration, seq int64, _ time.Time) { got <- heard{loss, validity, seq} }
	b := newBed(t, Config{}, func() Decision { return Decision{Targets: []Target{gw, target("192.0.2.11")}} })
	a, _, done := b.invite()
	f1, f2 := b.wire.next(t, sip.INVITE), b.wire.next(t, sip.INVITE)
	if f1.req.Recipient.Host != "192.0.2.10" {
		f1, f2 = f2, f1 // the forks are sent from goroutines of their own: either comes first
	}
	if !f1.req.Via().Params.Has("oc") {
		t.Fatalf("INVITE to the gateway does not offer oc: %s", f1.req.Via().Value())
	}
	if f2.req.Via().Params.Has("oc") {
		t.Fatalf("INVITE to a subscriber offers oc: %s", f2.req.Via().Value())
	}
	res := sip.NewResponseFromRequest(f1.req, 180, "Ringing", nil)
	setTag(res.To(), "b-tag")
	v := res.Via()
	v.Params.Add("oc", "40")
	v.Params.Add("oc-algo", `"loss"`)
	v.Params.Add("oc-validity", "1500")
	v.Params.Add("oc-seq", "1282321615.782")
	f1.responses <- res
	select {
	case h := <-got:
		if h.loss != 40 || h.validity != 1500*time.Millisecond || h.seq != 1282321615782 {
			t.Fatalf("heard %+v", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("overload control not heard")
	}
	a.provisional(t)
	f1.reply(486)
	f2.reply(486)
	if code := a.final(t).StatusCode; code != 486 {
		t.Fatalf("caller got %d", code)
	}
	waitDone(t, done)
}

func TestReadOC(t *testing.T) {
	for _, c := range []struct {
		via  string
		want string // "" = nothing heard
	}{
		{"oc", ""},
		{"oc=20", "20 2s"},
		{"oc=20;oc-validity=0", "20 0s"},
		{`oc=20;oc-algo="rate"`, ""},
		{`oc=20;oc-algo="loss";oc-validity=100`, "20 100ms"},
		{"oc=200", ""},
		{"oc=x", ""},
		{"oc=5;oc-validity=-1", ""},
	} {
		res, err := sipparse.New().ParseSIP([]byte("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1;" + c.via +
			"\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		heard := ""
		readOC(res.(*sip.Response), func(loss int, validity time.Duration, _ int64, _ time.Time) {
			heard = strings.TrimSpace(strings.Join([]string{strconv.Itoa(loss), validity.String()}, " "))
		})
		if heard != c.want {
			t.Errorf("Via ...;%s: heard %q, want %q", c.via, heard, c.want)
		}
	}
}
