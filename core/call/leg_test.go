package call

import (
	"testing"
	"unsafe"

	"github.com/emiago/sipgo/sip"
)

// A detached URI is the same URI, and none of its strings points into the
// header text it was parsed from.
func TestDetachedURI(t *testing.T) {
	text := "sip:alice:pw@gw.example.net:5070;transport=udp;lr?Subject=hi&X=1"
	var u sip.Uri
	if err := sip.ParseUri(text, &u); err != nil {
		t.Fatal(err)
	}
	d := detached(u)
	if d.String() != u.String() {
		t.Fatalf("detached %q, want %q", d.String(), u.String())
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(text)))
	hi := lo + uintptr(len(text))
	strs := []string{d.Scheme, d.User, d.Password, d.Host}
	for _, kv := range append(append(sip.HeaderParams{}, d.UriParams...), d.Headers...) {
		strs = append(strs, kv.K, kv.V)
	}
	for _, s := range strs {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); s != "" && p >= lo && p < hi {
			t.Errorf("%q still points into the parsed text", s)
		}
	}
	if len(d.UriParams) != 2 || len(d.Headers) != 2 {
		t.Errorf("params %v headers %v", d.UriParams, d.Headers)
	}
	if e := detached(sip.Uri{Scheme: "sip", Host: "h"}); e.String() != "sip:h" {
		t.Errorf("bare URI: %q", e.String())
	}
}
