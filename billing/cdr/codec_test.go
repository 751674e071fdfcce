package cdr

import (
	"reflect"
	"testing"
	"time"
)

func TestBinaryRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC)
	r := Record{ID: "ss1-7", Node: "ss1", CallingIn: "+4930", CalledIn: "9123", Account: "acc", Source: "peer",
		Seizure: at, Answer: at.Add(time.Second), Release: at.Add(time.Minute), DurationMS: 60000, BillableMS: 59000,
		Status: 200, Q850: 16, Side: "caller", MediaOffered: []string{"audio PCMU/8000", "audio PCMA/8000"},
		EndReason: EndNormal, Cause: "BYE", Attempts: 2, Charge: "0.0125", Currency: "EUR", Pulses: 3}
	var got Record
	if err := got.UnmarshalBinary(r.AppendBinary(nil)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	data := r.AppendBinary(nil)
	for i := range data {
		var x Record
		if x.UnmarshalBinary(data[:i]) == nil {
			t.Fatalf("a record cut at %d of %d bytes decodes", i, len(data))
		}
	}
}

// AAAClass, added after version 1, rides at the end: a record with it
// round-trips, and one written before it reads with none.
func TestBinaryAAAClass(t *testing.T) {
	r := Record{ID: "ss1-8", Node: "ss1", AAAClass: "card-42\x00\xff"}
	var got Record
	if err := got.UnmarshalBinary(r.AppendBinary(nil)); err != nil || got.AAAClass != r.AAAClass {
		t.Fatalf("%q %v", got.AAAClass, err)
	}
	old := Record{ID: "ss1-9", Node: "ss1"}
	got = Record{AAAClass: "stale"}
	if err := got.UnmarshalBinary(old.AppendBinary(nil)); err != nil || got.AAAClass != "" {
		t.Fatalf("a record without the field: %q %v", got.AAAClass, err)
	}
}
