package trunkreg

import (
	"testing"

	"github.com/softswitch/softswitch/interwork/gateway"
)

// A registration goes on with the dialog it had, or the pair's other
// node had (Resume), for the same registrar and user: same Call-ID, CSeq
// raised; another registrar or user starts a new one.
func TestDialogGoesOn(t *testing.T) {
	spec := gateway.RegistrationSpec{Name: "up", Registrar: "192.0.2.1:5060", User: "sw"}
	r := &Registrar{}
	fresh := r.dialogFor(spec)
	if fresh.callID == "" || fresh.cseq != 0 {
		t.Fatalf("a first dialog %+v", fresh)
	}
	var heard map[string]Dialog
	r.Changed = func(ds map[string]Dialog) { heard = ds }
	fresh.cseq = 2 // a challenge and its answer
	r.sent(spec, fresh)
	if d := heard["up"]; d.CallID != fresh.callID || d.CSeq != 2 || d.Registrar != spec.Registrar || d.User != "sw" {
		t.Fatalf("reported %+v", heard)
	}
	if again := r.dialogFor(spec); again.callID != fresh.callID || again.cseq != 2+cseqStep {
		t.Fatalf("after a restart of the loop %+v", again)
	}

	standby := &Registrar{}
	standby.Resume(heard)
	if d := standby.dialogFor(spec); d.callID != fresh.callID || d.cseq != 2+cseqStep {
		t.Fatalf("taken over %+v", d)
	}
	other := spec
	other.User = "another"
	if d := standby.dialogFor(other); d.callID == fresh.callID {
		t.Fatal("another user's registration went on with this one's Call-ID")
	}
	standby.Resume(map[string]Dialog{"up": {Registrar: spec.Registrar, User: "sw"}})
	if d := standby.dialogFor(spec); d.callID == "" || d.cseq != 0 {
		t.Fatalf("a dialog without Call-ID taken on: %+v", d)
	}
}
