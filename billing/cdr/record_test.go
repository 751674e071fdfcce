package cdr

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fields is a record's columns as encoding/csv takes them.
func (r *Record) fields() []string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(TimeFormat)
	}
	return []string{r.ID, r.Node, r.CallingIn, r.CalledIn, r.CallingOut, r.CalledOut, r.Account,
		r.SourceKind, r.Source, r.Route, r.Gateway, strconv.Itoa(r.Attempts),
		ts(r.Seizure), ts(r.Ringing), ts(r.Answer), ts(r.Release),
		strconv.FormatInt(r.DurationMS, 10), strconv.FormatInt(r.BillableMS, 10),
		strings.Join(r.MediaOffered, "; "), strings.Join(r.MediaAnswered, "; "),
		strconv.Itoa(r.Status), strconv.Itoa(r.Q850), r.Side, r.CallID, r.CalleeCallID,
		r.EndReason, r.Cause, r.Charge, r.Currency, strconv.Itoa(r.Pulses)}
}

// The CSV a file holds is byte for byte what encoding/csv (CRLF) writes
// for the same fields, whatever they hold; the sizer counts exactly that.
func TestCSVAsEncodingCSV(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.FixedZone("x", 3600))
	tricky := []string{"", "plain", `a "quoted" word`, "comma,inside", "cr\rlf\nboth\r\n", " leading space",
		"\tleading tab", "\u00a0nbsp", `\.`, `\.x`, `"`, "ünïcode ☎", "trailing space ", ";"}
	var recs []Record
	for i, s := range tricky {
		recs = append(recs, Record{ID: "ss1-" + strconv.Itoa(i), Node: s, CallingIn: s, CalledIn: "9123", CallingOut: s,
			Account: s, Source: s, Route: s, Gateway: s, Attempts: i - 3, Seizure: at, Answer: at.Add(time.Second),
			Release: at.Add(time.Minute), DurationMS: -1, BillableMS: 59000, MediaOffered: []string{s, "audio PCMU/8000"},
			MediaAnswered: []string{s}, Status: 200, Q850: 16, Side: s, CallID: s, CalleeCallID: s, EndReason: s,
			Cause: s, Charge: s, Currency: s, Pulses: i})
	}
	recs = append(recs, Record{}, Record{MediaOffered: []string{" x"}})
	var want bytes.Buffer
	cw := csv.NewWriter(&want)
	cw.UseCRLF = true
	if err := cw.Write(Columns); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := cw.Write(recs[i].fields()); err != nil {
			t.Fatal(err)
		}
	}
	cw.Flush()
	var got bytes.Buffer
	enc, err := NewEncoder(CSV, &got)
	if err != nil {
		t.Fatal(err)
	}
	sz, _ := NewSizer(CSV)
	size := sz.Header()
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			t.Fatal(err)
		}
		size += sz.Size(&recs[i])
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		g, w := strings.Split(got.String(), "\n"), strings.Split(want.String(), "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("line %d:\n got %q\nwant %q", i, g[i], w[i])
			}
		}
		t.Fatalf("%d lines, want %d", len(g), len(w))
	}
	if size != int64(want.Len()) {
		t.Fatalf("sized %d bytes, the file holds %d", size, want.Len())
	}
	// JSON lines: the sizer counts what the encoder writes too.
	var js bytes.Buffer
	je, _ := NewEncoder(JSON, &js)
	jz, _ := NewSizer(JSON)
	var jsize int64
	for i := range recs {
		if err := je.Encode(&recs[i]); err != nil {
			t.Fatal(err)
		}
		jsize += jz.Size(&recs[i])
	}
	if err := je.Flush(); err != nil {
		t.Fatal(err)
	}
	if jsize != int64(js.Len()) || jz.Header() != 0 {
		t.Fatalf("JSON sized %d, written %d", jsize, js.Len())
	}
}
