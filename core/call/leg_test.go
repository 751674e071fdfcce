package call

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// A packed URI is the same URI, kept as its text only; a target refresh
// on a packed leg keeps it packed, one on a leg being set up keeps it
// parsed. One with headers stays parsed (its text would not parse back).
func TestDialogURIPack(t *testing.T) {
	for _, text := range []string{"sip:h", "sip:[2001:db8::1]:5062;transport=tcp", "sips:+4930123@example.net;user=phone"} {
		var u sip.Uri
		if err := sip.ParseUri(text, &u); err != nil {
			t.Fatal(err)
		}
		d := uriOf(u)
		d.pack()
		if g := d.get(); d.p != nil || g.String() != u.String() || g.Host != u.Host || g.Port != u.Port || g.User != u.User {
			t.Errorf("%s: packed %+v, parsed again %+v", text, d, g)
		}
	}
	withHeaders := "sip:a@h?Subject=hi"
	var h sip.Uri
	if err := sip.ParseUri(withHeaders, &h); err != nil {
		t.Fatal(err)
	}
	hd := uriOf(h)
	if hd.pack(); hd.p == nil {
		t.Errorf("a URI with headers was packed")
	}
	text := "sip:alice:pw@gw.example.net:5070;transport=udp;lr"
	var u sip.Uri
	if err := sip.ParseUri(text, &u); err != nil {
		t.Fatal(err)
	}
	d := uriOf(u)
	d.pack()
	if d.p != nil || d.s != u.String() {
		t.Fatalf("packed: %+v", d)
	}
	g := d.get()
	if g.String() != u.String() || g.User != "alice" || g.Port != 5070 || len(g.UriParams) != 2 {
		t.Fatalf("parsed again: %q %+v", g.String(), g)
	}
	d.set(sip.Uri{Scheme: "sip", User: "bob", Host: "h"})
	if d.p != nil || d.s != "sip:bob@h" {
		t.Fatalf("refreshed packed: %+v", d)
	}
	e := uriOf(u)
	e.set(sip.Uri{Scheme: "sip", Host: "h"})
	if e.p == nil || e.String() != "sip:h" {
		t.Fatalf("refreshed parsed: %+v", e)
	}
	var zero dialogURI
	if z := zero.get(); z.Host != "" || z.User != "" {
		t.Fatalf("zero: %+v", z)
	}
}
