// Package cdr is the call detail record: its fields, and its two file
// formats (CSV by RFC 4180 with a header line, and JSON lines).
// docs/cdr.md describes every field.
package cdr

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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

// AppendCSV appends r as one line of a CSV file (RFC 4180, CRLF): what
// encoding/csv writes for the same fields, without a slice of strings and
// a formatted time per field (records are written and sized at the call
// rate).
func (r *Record) AppendCSV(b []byte) []byte {
	for _, f := range [...]string{r.ID, r.Node, r.CallingIn, r.CalledIn, r.CallingOut, r.CalledOut, r.Account,
		r.SourceKind, r.Source, r.Route, r.Gateway} {
		b = csvField(b, f, ',')
	}
	b = append(strconv.AppendInt(b, int64(r.Attempts), 10), ',')
	for _, t := range [...]time.Time{r.Seizure, r.Ringing, r.Answer, r.Release} {
		b = append(appendTime(b, t), ',')
	}
	b = append(strconv.AppendInt(b, r.DurationMS, 10), ',')
	b = append(strconv.AppendInt(b, r.BillableMS, 10), ',')
	b = csvField(b, strings.Join(r.MediaOffered, "; "), ',')
	b = csvField(b, strings.Join(r.MediaAnswered, "; "), ',')
	b = append(strconv.AppendInt(b, int64(r.Status), 10), ',')
	b = append(strconv.AppendInt(b, int64(r.Q850), 10), ',')
	for _, f := range [...]string{r.Side, r.CallID, r.CalleeCallID, r.EndReason, r.Cause, r.Charge, r.Currency} {
		b = csvField(b, f, ',')
	}
	b = strconv.AppendInt(b, int64(r.Pulses), 10)
	return append(b, "\r\n"...)
}

// appendTime appends t in TimeFormat (UTC), nothing for a zero time.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	return t.UTC().AppendFormat(b, TimeFormat)
}

// csvField appends one field and then sep, quoted as encoding/csv's Writer
// with UseCRLF quotes it: when it holds a quote, comma, CR or LF, starts
// with a space, or is \. ; inside quotes a quote is doubled, a CR dropped
// and a LF written CRLF.
func csvField(b []byte, f string, sep byte) []byte {
	if !csvNeedsQuotes(f) {
		return append(append(b, f...), sep)
	}
	b = append(b, '"')
	for i := 0; i < len(f); i++ {
		switch c := f[i]; c {
		case '"':
			b = append(b, '"', '"')
		case '\r':
		case '\n':
			b = append(b, '\r', '\n')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"', sep)
}

func csvNeedsQuotes(f string) bool {
	if f == "" {
		return false
	}
	if f == `\.` || strings.ContainsAny(f, "\"\r\n,") {
		return true
	}
	r, _ := utf8.DecodeRuneInString(f)
	return unicode.IsSpace(r)
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
	w   *bufio.Writer
	buf []byte
}

// NewEncoder writes to w; a CSV encoder starts with the header line.
func NewEncoder(f Format, w io.Writer) (*Encoder, error) {
	e := &Encoder{f: f, w: bufio.NewWriter(w)}
	if _, err := e.w.Write(f.header()); err != nil {
		return nil, err
	}
	return e, nil
}

// header is what a file holds before its first record.
func (f Format) header() []byte {
	if f != CSV {
		return nil
	}
	var b []byte
	for i, c := range Columns {
		sep := byte(',')
		if i == len(Columns)-1 {
			sep = '\r'
		}
		b = csvField(b, c, sep)
	}
	return append(b, '\n')
}

// appendLine appends r as one line of a file in format f (the one
// encoding the encoder writes and the sizer counts).
func (f Format) appendLine(b []byte, r *Record) ([]byte, error) {
	if f == CSV {
		return r.AppendCSV(b), nil
	}
	j, err := json.Marshal(r)
	if err != nil {
		return b, err
	}
	return append(append(b, j...), '\n'), nil
}

// Encode writes one record.
func (e *Encoder) Encode(r *Record) error {
	var err error
	if e.buf, err = e.f.appendLine(e.buf[:0], r); err != nil {
		return err
	}
	_, err = e.w.Write(e.buf)
	return err
}

// Flush writes out what is buffered.
func (e *Encoder) Flush() error { return e.w.Flush() }

// A Sizer tells how many bytes records take in a file of one format:
// exact, whatever the quoting or escaping (the same encoding).
type Sizer struct {
	f   Format
	buf []byte
}

// NewSizer sizes records for format f.
func NewSizer(f Format) (*Sizer, error) { return &Sizer{f: f}, nil }

// Header is the size of what a file holds before its first record.
func (s *Sizer) Header() int64 { return int64(len(s.f.header())) }

// Size is r's size in a file.
func (s *Sizer) Size(r *Record) int64 {
	var err error
	if s.buf, err = s.f.appendLine(s.buf[:0], r); err != nil {
		return 0
	}
	return int64(len(s.buf))
}
