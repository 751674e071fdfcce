package call

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
)

// recorder is the standby's view: the last record of each call.
type recorder struct {
	mu   sync.Mutex
	recs map[string][]byte
	puts int
}

func (r *recorder) PutCall(id, _ string, rec []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recs == nil {
		r.recs = map[string][]byte{}
	}
	r.puts++
	if rec == nil {
		delete(r.recs, id)
	} else {
		r.recs[id] = rec
	}
}

func (r *recorder) get(id string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recs[id]
}

// An answered call is reported; another manager adopts it and releases
// it on the caller's BYE: BYE to the callee in its dialog with a CSeq
// above any the old node used, and a release event with the old times.
func TestAdoptedCallReleasedByBye(t *testing.T) {
	rec, id, f, ok := reported(t)
	inv := f.req // the callee's INVITE, as the gateway saw it

	nu := newBed(t, Config{}, parallel("192.0.2.10"))
	nrec := &recorder{}
	nu.m.SetReplicator(nrec)
	got, err := nu.m.Adopt(rec.get(id))
	if err != nil || got != id {
		t.Fatalf("adopt: %q %v", got, err)
	}
	if nu.m.Active() != 1 || !nu.m.Known(id) || !nu.m.Known(inv.CallID().Value()) {
		t.Fatal("the adopted call is not known by both Call-IDs")
	}
	waitFor(t, "the adopted call reported to this node's standby", func() bool { return nrec.get(id) != nil })
	if _, err := nu.m.Adopt(rec.get(id)); err == nil {
		t.Fatal("a call adopted twice")
	}

	bye := nu.inDialog(sip.BYE, id, tagOf(ok.To().Params), 2)
	btx := newFakeServerTx(bye)
	nu.m.HandleBye(bye, btx)
	if r := btx.final(t); r.StatusCode != 200 {
		t.Fatalf("BYE answered %d", r.StatusCode)
	}
	out := nu.wire.next(t, sip.BYE).req
	if acks := nu.wire.writtenRequests(sip.ACK); len(acks) != 0 {
		t.Fatalf("an ACK sent for a 2xx the old node acknowledged:\n%s", acks[0])
	}
	if out.CallID().Value() != inv.CallID().Value() || tagOf(out.From().Params) != tagOf(inv.From().Params) ||
		tagOf(out.To().Params) == "" || out.CSeq().SeqNo <= inv.CSeq().SeqNo {
		t.Fatalf("BYE to the callee out of its dialog:\n%s\nINVITE was:\n%s", out, inv)
	}
	e := nu.release()
	if e.Cause != "BYE" || !e.Answered || e.Answer.IsZero() || e.Setup.IsZero() {
		t.Fatalf("release %+v", e)
	}
	if nu.m.Active() != 0 {
		t.Fatal("the call is still counted")
	}
	waitFor(t, "the end reported", func() bool { return nrec.get(id) == nil })
}

// reported is an answered, acknowledged call on a node of its own whose
// record its replicator has: the record, the caller's Call-ID, the
// callee's INVITE transaction, and the 2xx the caller got.
func reported(t *testing.T) (*recorder, string, *fakeClientTx, *sip.Response) {
	t.Helper()
	old := newBed(t, Config{}, parallel("192.0.2.10"))
	rec := &recorder{}
	old.m.SetReplicator(rec)
	_, req, f, ok := answered(t, old, nil)
	id := req.CallID().Value()
	old.m.HandleAck(old.inDialog(sip.ACK, id, tagOf(ok.To().Params), 1))
	waitFor(t, "the answered call's record", func() bool {
		b := rec.get(id)
		return b != nil && decodeRecord(t, b).Early == nil // not the record of its set-up
	})
	return rec, id, f, ok
}

// A granted time runs on from the record: a call adopted after its
// deadline is released at once, and one before it at the deadline.
func TestAdoptedCallKeepsItsDeadline(t *testing.T) {
	rec, id, _, _ := reported(t)

	for _, c := range []struct {
		name  string
		until time.Duration
	}{{"past", -time.Second}, {"ahead", 300 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			r := decodeRecord(t, rec.get(id))
			r.Deadline = time.Now().Add(c.until)
			nu := newBed(t, Config{}, parallel("192.0.2.10"))
			start := time.Now()
			if _, err := nu.m.Adopt(encodeRecord(t, r)); err != nil {
				t.Fatal(err)
			}
			e := nu.release()
			if e.Cause != "time limit" || e.Side != events.SideSwitch {
				t.Fatalf("release %+v", e)
			}
			if c.until > 0 && time.Since(start) < c.until-20*time.Millisecond {
				t.Fatalf("released after %v, before its deadline", time.Since(start))
			}
			legs := map[string]bool{}
			for range 2 {
				legs[nu.wire.next(t, sip.BYE).req.CallID().Value()] = true
			}
			if !legs[id] || len(legs) != 2 {
				t.Fatalf("BYEs on %v", legs)
			}
		})
	}
}

// HandOver forgets answered calls without a message and publishes
// CallHandover, not a release.
func TestHandOver(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	_, req, _, ok := answered(t, b, nil)
	b.m.HandleAck(b.inDialog(sip.ACK, req.CallID().Value(), tagOf(ok.To().Params), 1))
	if n := b.m.HandOver(); n != 1 {
		t.Fatalf("handed over %d", n)
	}
	if b.m.Active() != 0 || b.m.Known(req.CallID().Value()) {
		t.Fatal("the call is still here")
	}
	b.wire.none(t, sip.BYE, 100*time.Millisecond)
	kinds := b.kinds()
	if kinds[len(kinds)-1] != events.CallHandover {
		t.Fatalf("events %v", kinds)
	}
	for _, k := range kinds {
		if k == events.CallRelease {
			t.Fatal("a handed-over call released here")
		}
	}
}

// A call taken on that the old node had released before it stopped
// (EndedElsewhere): BYE on both legs, no release here (CallHandover: the
// old node's record stands); asked again, or for a call unknown, false.
func TestAdoptedCallEndedElsewhere(t *testing.T) {
	rec, id, f, _ := reported(t)
	nu := newBed(t, Config{}, parallel("192.0.2.10"))
	if _, err := nu.m.Adopt(rec.get(id)); err != nil {
		t.Fatal(err)
	}
	if nu.m.EndedElsewhere(f.req.CallID().Value()) {
		t.Fatal("ended by its callee leg's Call-ID")
	}
	if !nu.m.EndedElsewhere(id) {
		t.Fatal("the call in progress not ended")
	}
	legs := map[string]bool{}
	for range 2 {
		legs[nu.wire.next(t, sip.BYE).req.CallID().Value()] = true
	}
	if !legs[id] || !legs[f.req.CallID().Value()] {
		t.Fatalf("BYEs on %v", legs)
	}
	if nu.m.Active() != 0 || nu.m.Known(id) || nu.m.EndedElsewhere(id) || nu.m.EndedElsewhere("unknown") {
		t.Fatal("the call is still here")
	}
	for _, k := range nu.kinds() {
		if k == events.CallRelease {
			t.Fatal("a call released elsewhere released here too")
		}
	}
	if kinds := nu.kinds(); kinds[len(kinds)-1] != events.CallHandover {
		t.Fatalf("events %v", kinds)
	}
}

// BeingSetUp tells a record of a call being set up from an answered one.
func TestBeingSetUp(t *testing.T) {
	rec, id, _, _ := reported(t)
	if BeingSetUp(rec.get(id)) || BeingSetUp([]byte("not json")) || BeingSetUp([]byte(`{"Early":null}`)) {
		t.Fatal("an answered call (or nothing) taken for one being set up")
	}
	r := decodeRecord(t, rec.get(id))
	r.Early = &EarlyRecord{Source: "192.0.2.1:5060"}
	if !BeingSetUp(encodeRecord(t, r)) {
		t.Fatal("a call being set up not recognised")
	}
}

func TestAdoptRefusesBadRecords(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	for _, in := range []string{"", "{", `{"A":{},"B":{}}`, `{"A":{"CallID":"x","Transport":"udp","Target":"::"},"B":{"CallID":"y","Transport":"udp"}}`} {
		if _, err := b.m.Adopt([]byte(in)); err == nil {
			t.Errorf("%q adopted", in)
		}
	}
	if b.m.Active() != 0 {
		t.Fatal("a refused record left a call")
	}
}

func decodeRecord(t *testing.T, b []byte) Record {
	t.Helper()
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func encodeRecord(t *testing.T, r Record) []byte {
	t.Helper()
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A caller leg over TCP: the old node's connection is gone, so the new
// node's requests go to the caller's Contact (a new connection), not to
// the address the old connection came from.
func TestAdoptedTCPLegDialsContact(t *testing.T) {
	rec, id, _, _ := reported(t)
	r := decodeRecord(t, rec.get(id))
	r.A.Transport, r.A.Dest, r.A.Target = "tcp", "127.0.0.1:40123", "sip:1001@192.0.2.50:5062;transport=tcp"
	r.Deadline = time.Now().Add(-time.Second) // released at once: BYE on both legs
	nu := newBed(t, Config{}, parallel("192.0.2.10"))
	if _, err := nu.m.Adopt(encodeRecord(t, r)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		bye := nu.wire.next(t, sip.BYE).req
		if bye.CallID().Value() != id {
			continue
		}
		if bye.Destination() != "192.0.2.50:5062" || !strings.EqualFold(bye.Transport(), "TCP") {
			t.Fatalf("BYE to the caller goes to %s over %s", bye.Destination(), bye.Transport())
		}
		return
	}
	t.Fatal("no BYE to the caller")
}

// A call being set up when its node died: the node taking over answers
// the caller 503 (in the caller's dialog, with the To tag it saw) and
// cancels the fork; the fork's 2xx, should it come anyway, is acknowledged
// and hung up; the release is published.
func TestEarlyCallRefusedAtTakeover(t *testing.T) {
	old := newBed(t, Config{}, parallel("192.0.2.10"))
	rec := &recorder{}
	old.m.SetReplicator(rec)
	a, req, _ := old.invite()
	f := old.wire.next(t, sip.INVITE)
	f.reply(180)
	a.provisional(t)
	id := req.CallID().Value()
	waitFor(t, "the early record", func() bool { return rec.get(id) != nil })
	if r := decodeRecord(t, rec.get(id)); r.Early == nil || len(r.Early.Forks) != 1 {
		t.Fatalf("record %+v", r)
	}

	nu := newBed(t, Config{}, parallel("192.0.2.10"))
	if got, err := nu.m.Adopt(rec.get(id)); err != nil || got != id {
		t.Fatalf("adopt: %q %v", got, err)
	}
	cancel := nu.wire.next(t, sip.CANCEL).req
	cb, _ := cancel.Via().Params.Get("branch")
	ib, _ := f.req.Via().Params.Get("branch")
	if cancel.CallID().Value() != f.req.CallID().Value() || cb != ib ||
		cancel.CSeq().SeqNo != f.req.CSeq().SeqNo {
		t.Fatalf("CANCEL out of the fork's transaction:\n%s\nINVITE:\n%s", cancel, f.req)
	}
	var res *sip.Response
	waitFor(t, "the 503 to the caller", func() bool {
		for _, r := range nu.wire.writtenResponses() {
			if r.StatusCode == 503 {
				res = r
				return true
			}
		}
		return false
	})
	if res.CallID().Value() != id || tagOf(res.To().Params) == "" || res.Destination() != "127.0.0.1:5070" {
		t.Fatalf("503 to the caller:\n%s (to %s)", res, res.Destination())
	}
	if e := nu.release(); e.Status != 503 || e.Cause != "lost at takeover" || e.Answered {
		t.Fatalf("release %+v", e)
	}
	// The callee answered anyway: its 2xx is acknowledged, then hung up.
	ok := sip.NewResponseFromRequest(f.req, 200, "OK", nil)
	setTag(ok.To(), "late-tag")
	ok.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "192.0.2.20", Port: 5060}})
	nu.m.HandleStrayResponse(ok)
	bye := nu.wire.next(t, sip.BYE).req
	if bye.CallID().Value() != f.req.CallID().Value() || tagOf(bye.To().Params) != "late-tag" {
		t.Fatalf("BYE:\n%s", bye)
	}
	if acks := nu.wire.writtenRequests(sip.ACK); len(acks) != 1 {
		t.Fatalf("%d ACKs", len(acks))
	}
	if nu.m.Active() != 0 {
		t.Fatal("the refused call is still counted")
	}
}

// A call being set up is handed over too: its INVITE's handler returns,
// nothing is sent, and no release is published here.
func TestHandOverEarlyCall(t *testing.T) {
	b := newBed(t, Config{}, parallel("192.0.2.10"))
	_, req, done := b.invite()
	b.wire.next(t, sip.INVITE).reply(180)
	if n := b.m.HandOver(); n != 1 {
		t.Fatalf("handed over %d", n)
	}
	waitDone(t, done)
	b.wire.none(t, sip.CANCEL, 100*time.Millisecond)
	if b.m.Known(req.CallID().Value()) || b.m.Active() != 0 {
		t.Fatal("the call is still here")
	}
	for _, k := range b.kinds() {
		if k == events.CallRelease {
			t.Fatal("a handed-over call released here")
		}
	}
}

// A BYE for a Call-ID this node does not know gets 481, unless the pair's
// other node released that call just before this node took over: then
// the 200 its dying node may not have sent.
func TestByeForACallReleasedThere(t *testing.T) {
	_, id, _, ok := reported(t)
	nu := newBed(t, Config{}, parallel("192.0.2.10"))
	bye := func() int {
		req := nu.inDialog(sip.BYE, id, tagOf(ok.To().Params), 2)
		tx := newFakeServerTx(req)
		nu.m.HandleBye(req, tx)
		return tx.final(t).StatusCode
	}
	if code := bye(); code != 481 {
		t.Fatalf("an unknown call's BYE answered %d", code)
	}
	asked := ""
	nu.m.SetReleasedThere(func(callID string) bool { asked = callID; return callID == id })
	if code := bye(); code != 200 || asked != id {
		t.Fatalf("a BYE for a call released there answered %d (asked %q)", code, asked)
	}
	if len(nu.wire.writtenRequests(sip.BYE)) != 0 || nu.m.Active() != 0 {
		t.Fatal("a call released there was released here again")
	}
	for _, k := range nu.kinds() {
		if k == events.CallRelease {
			t.Fatal("a release event for a call released there")
		}
	}
}

// A call taken on, then taken back by the first node (failover back and
// forth): the caller's BYE still finds it on the third hop.
func TestAdoptedTwiceReleasedByBye(t *testing.T) {
	rec, id, _, ok := reported(t)
	mid := newBed(t, Config{}, parallel("192.0.2.10"))
	mrec := &recorder{}
	mid.m.SetReplicator(mrec)
	if _, err := mid.m.Adopt(rec.get(id)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the adopted call reported", func() bool { return mrec.get(id) != nil })
	last := newBed(t, Config{}, parallel("192.0.2.10"))
	if _, err := last.m.Adopt(mrec.get(id)); err != nil {
		t.Fatal(err)
	}
	bye := last.inDialog(sip.BYE, id, tagOf(ok.To().Params), 2)
	btx := newFakeServerTx(bye)
	last.m.HandleBye(bye, btx)
	if r := btx.final(t); r.StatusCode != 200 {
		t.Fatalf("BYE answered %d", r.StatusCode)
	}
}

// A request that reaches the node taking over while its adoption runs:
// rescue finds the call taken on by the adoption (it answers false, the
// call no longer being the follower's), and the request still finds it
// (before, the BYE got 481 and the call stayed a ghost, without record).
func TestByeDuringAdoption(t *testing.T) {
	rec, id, _, ok := reported(t)
	nu := newBed(t, Config{}, parallel("192.0.2.10"))
	nu.m.SetRescue(func(string) bool {
		if _, err := nu.m.Adopt(rec.get(id)); err != nil {
			t.Error(err)
		}
		return false
	})
	bye := nu.inDialog(sip.BYE, id, tagOf(ok.To().Params), 2)
	btx := newFakeServerTx(bye)
	nu.m.HandleBye(bye, btx)
	if r := btx.final(t); r.StatusCode != 200 {
		t.Fatalf("BYE answered %d", r.StatusCode)
	}
	if e := nu.release(); e.Cause != "BYE" || !e.Answered {
		t.Fatalf("release %+v", e)
	}
}
