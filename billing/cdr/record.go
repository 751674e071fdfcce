// Package cdr is the call detail record: its fields, and its two file
// formats (CSV by RFC 4180 with a header line, and JSON lines).
// docs/cdr.md describes every field.
package cdr

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
)

// End reasons (end_reason).
const (
	EndNormal       = "normal"        // answered, then hung up by either party
	EndCancelled    = "cancelled"     // the caller gave up before the answer
	EndNoAnswer     = "no answer"     // rang until the no-answer timer
	EndRejected     = "rejected"      // refused: by the callee, a gateway, or the switch's routing
	EndFailed       = "failed"        // a protocol or network failure (no ACK, peer not responding)
	EndSessionTime  = "session timer" // RFC 4028 session timer expired or refresh failed
	EndShutdown     = "switch shutdown"
	EndTimeLimit    = "time limit"            // the authoriser's granted duration (prepaid) was used up
	EndCreditFailed = "credit control failed" // no credit-control server answered a prepaid call's extension (RFC 4006 TERMINATE)
	EndRestart      = "ended by restart"      // in progress when the switch stopped without a release
)

// Record is one call attempt. Times are UTC; zero times are empty in
// files. Durations are milliseconds.
type Record struct {
	ID            string    `json:"record_id"`
	Node          string    `json:"node"`
	CallingIn     string    `json:"calling_received"`
	CalledIn      string    `json:"called_received"`
	CallingOut    string    `json:"calling_sent"`
	CalledOut     string    `json:"called_sent"`
	Account       string    `json:"account"`
	SourceKind    string    `json:"source_kind"` // subscriber or trunk
	Source        string    `json:"source"`      // the subscriber's number or the trusted peer's name
	Route         string    `json:"route"`
	Gateway       string    `json:"gateway"`
	Attempts      int       `json:"gateway_attempts"`
	Seizure       time.Time `json:"seizure"`
	Ringing       time.Time `json:"ringing,omitzero"`
	Answer        time.Time `json:"answer,omitzero"`
	Release       time.Time `json:"release"`
	DurationMS    int64     `json:"duration_ms"`
	BillableMS    int64     `json:"billable_ms"`
	MediaOffered  []string  `json:"media_offered"`
	MediaAnswered []string  `json:"media_answered"`
	Status        int       `json:"release_status"`
	Q850          int       `json:"q850_cause"`
	Side          string    `json:"release_side"`
	CallID        string    `json:"caller_call_id"`
	CalleeCallID  string    `json:"callee_call_id"`
	EndReason     string    `json:"end_reason"`
	Cause         string    `json:"release_text"`
	Charge        string    `json:"charge"`   // decimal, empty when not rated
	Currency      string    `json:"currency"` // ISO 4217, empty when not rated
	Pulses        int       `json:"meter_pulses"`
	// AAAClass is the Class the call's authorisation (RADIUS) gave, for
	// accounting to echo; not a column of the files.
	AAAClass string `json:"-"`
}

// Finish sets the durations from the times.
func (r *Record) Finish() {
	r.DurationMS, r.BillableMS = 0, 0
	if !r.Release.IsZero() && !r.Seizure.IsZero() && r.Release.After(r.Seizure) {
		r.DurationMS = r.Release.Sub(r.Seizure).Milliseconds()
	}
	if !r.Answer.IsZero() && r.Release.After(r.Answer) {
		r.BillableMS = r.Release.Sub(r.Answer).Milliseconds()
	}
}

// Columns is the CSV header line, in file order.
var Columns = []string{"record_id", "node", "calling_received", "called_received", "calling_sent",
	"called_sent", "account", "source_kind", "source", "route", "gateway", "gateway_attempts",
	"seizure", "ringing", "answer", "release", "duration_ms", "billable_ms", "media_offered",
	"media_answered", "release_status", "q850_cause", "release_side", "caller_call_id",
	"callee_call_id", "end_reason", "release_text", "charge", "currency", "meter_pulses"}

// TimeFormat is how times are written: UTC, millisecond precision.
const TimeFormat = "2006-01-02T15:04:05.000Z"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

func (r *Record) fields() []string {
	return []string{r.ID, r.Node, r.CallingIn, r.CalledIn, r.CallingOut, r.CalledOut, r.Account,
		r.SourceKind, r.Source, r.Route, r.Gateway, strconv.Itoa(r.Attempts),
		ts(r.Seizure), ts(r.Ringing), ts(r.Answer), ts(r.Release),
		strconv.FormatInt(r.DurationMS, 10), strconv.FormatInt(r.BillableMS, 10),
		strings.Join(r.MediaOffered, "; "), strings.Join(r.MediaAnswered, "; "),
		strconv.Itoa(r.Status), strconv.Itoa(r.Q850), r.Side, r.CallID, r.CalleeCallID,
		r.EndReason, r.Cause, r.Charge, r.Currency, strconv.Itoa(r.Pulses)}
}

// Format is a CDR file format.
type Format string

// Formats.
const (
	CSV  Format = "csv"
	JSON Format = "jsonl"
)

// Encoder writes records in one format.
type Encoder struct {
	f   Format
	w   io.Writer
	csv *csv.Writer
}

// NewEncoder writes to w; a CSV encoder starts with the header line.
func NewEncoder(f Format, w io.Writer) (*Encoder, error) {
	e := &Encoder{f: f, w: w}
	if f == CSV {
		e.csv = csv.NewWriter(w)
		e.csv.UseCRLF = true // RFC 4180
		if err := e.csv.Write(Columns); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Encode writes one record.
func (e *Encoder) Encode(r *Record) error {
	if e.f == CSV {
		return e.csv.Write(r.fields())
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = e.w.Write(append(b, '\n'))
	return err
}

// Flush writes out what is buffered.
func (e *Encoder) Flush() error {
	if e.csv != nil {
		e.csv.Flush()
		return e.csv.Error()
	}
	return nil
}

// A Sizer tells how many bytes records take in a file of one format, by
// encoding them into a counter: exact, whatever the quoting or escaping.
type Sizer struct {
	enc    *Encoder
	n      counter
	header int64
}

type counter int64

func (c *counter) Write(p []byte) (int, error) { *c += counter(len(p)); return len(p), nil }

// NewSizer sizes records for format f.
func NewSizer(f Format) (*Sizer, error) {
	s := &Sizer{}
	enc, err := NewEncoder(f, &s.n)
	if err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	s.enc, s.header = enc, int64(s.n)
	return s, nil
}

// Header is the size of what a file holds before its first record.
func (s *Sizer) Header() int64 { return s.header }

// Size is r's size in a file.
func (s *Sizer) Size(r *Record) int64 {
	before := s.n
	if s.enc.Encode(r) != nil || s.enc.Flush() != nil {
		return 0
	}
	return int64(s.n - before)
}
