package sipparse

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func parse(t *testing.T, from string) *sip.Request {
	t.Helper()
	raw := "OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n" +
		"From: " + from + "\r\nTo: <sip:x@example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	m, err := New().ParseSIP([]byte(raw))
	if err != nil {
		t.Fatalf("%q: %v", from, err)
	}
	return m.(*sip.Request)
}

func TestFromTo(t *testing.T) {
	for in, tag := range map[string]string{
		"<sip:a@example.com>;tag=1":                      "1",
		"<sip:a@example.com> ; tag = 98asjd8":            "98asjd8",
		"\"J Rosenberg \\\"\" <sip:a@example.com>;tag=2": "2",
		"caller<sip:caller@example.com>;tag=323":         "323",
		"token1~` token2'+_ <sip:m@example.com>;tag=_x":  "_x",
		"sip:a@example.com;tag=7":                        "7",
	} {
		f := parse(t, in).From()
		if f == nil {
			t.Errorf("%q: no From", in)
			continue
		}
		if got, _ := f.Params.Get("tag"); got != tag {
			t.Errorf("%q: tag %q, want %q", in, got, tag)
		}
	}
	// RFC 4475 §3.1.2.15: not a token, not quoted.
	req := parse(t, "Bell, Alexander <sip:a.g.bell@bell-tel.com>;tag=43")
	if Valid(req) {
		t.Fatal("an unquoted display name with a comma was taken for a From")
	}
	if !Valid(parse(t, "<sip:a@example.com>;tag=1")) {
		t.Fatal("a plain From is not valid")
	}
	if h := req.GetHeader("From"); h == nil || h.Value() != "Bell, Alexander <sip:a.g.bell@bell-tel.com>;tag=43" {
		t.Fatalf("the raw From is lost: %v", h)
	}
}

func FuzzFromTo(f *testing.F) {
	f.Add("<sip:a@example.com> ; tag = 98asjd8")
	f.Add("Bell, Alexander <sip:a@b>;tag=43")
	f.Add("\"x\\\" <\" <sip:a@b>")
	f.Fuzz(func(t *testing.T, v string) {
		h, err := address(sip.DefaultHeadersParser()["from"])([]byte("From"), v)
		if err == nil && h == nil {
			t.Fatal("no header and no error")
		}
		_ = tightParams(v)
	})
}

func TestViaQuotedParams(t *testing.T) {
	p := New()
	msg := "INVITE sip:a@b SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;oc;oc-algo=\"loss,rate\";x=\"a;b\", SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2;oc-algo=\"loss\"\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	m, err := p.ParseSIP([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	vias := m.GetHeaders("Via")
	if len(vias) != 2 {
		t.Fatalf("%d Via values, want 2", len(vias))
	}
	top := vias[0].(*sip.ViaHeader)
	for k, want := range map[string]string{"branch": "z9hG4bK1", "oc-algo": `"loss,rate"`, "x": `"a;b"`} {
		if v, _ := top.Params.Get(k); v != want {
			t.Errorf("top Via %s = %q, want %q", k, v, want)
		}
	}
	if !top.Params.Has("oc") || top.Host != "192.0.2.1" || top.Port != 5060 {
		t.Errorf("top Via %s", top.Value())
	}
	second := vias[1].(*sip.ViaHeader)
	if v, _ := second.Params.Get("oc-algo"); v != `"loss"` || second.Host != "10.0.0.1" {
		t.Errorf("second Via %s", second.Value())
	}
}
