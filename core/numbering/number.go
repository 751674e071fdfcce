// Package numbering is telecom number analysis as tables (R7-R11): number
// length and character checks, digit manipulation, the analysis table
// (longest called prefix, then calling prefix, source trunk and time of
// day) and black/white lists. It is pure data and functions: the call path
// asks it what to do with a call, routing and gateways live elsewhere.
package numbering

import (
	"fmt"

	"github.com/softswitch/softswitch/core/provision"
)

// Default and hard limits of number length, in digits (a leading + does
// not count). R7: calling numbers up to 20, called up to 24, extendable to
// 28 by configuration.
const (
	DefaultMaxCalling = provision.DefaultMaxCalling
	DefaultMaxCalled  = provision.DefaultMaxCalled
	HardMaxDigits     = 28
)

// Refusal is why a call is not routed: the SIP status for the caller and
// the Q.850 cause that goes in the Reason header (RFC 3326).
type Refusal struct {
	Status int
	Cause  int
	Text   string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%d (Q.850 cause %d): %s", r.Status, r.Cause, r.Text)
}

// Limits bound what numbers are accepted.
type Limits struct {
	MaxCalling    int
	MaxCalled     int
	AllowStarHash bool // * and # allowed in numbers (service codes)
}

// Refusals for malformed numbers. 484 is the status RFC 3398 pairs with
// Q.850 cause 28 (invalid number format); numbers are never truncated.
var (
	errCalledTooLong  = &Refusal{Status: 484, Cause: 28, Text: "called number too long"}
	errCallingTooLong = &Refusal{Status: 484, Cause: 28, Text: "calling number too long"}
	errCalledBad      = &Refusal{Status: 484, Cause: 28, Text: "called number has invalid characters"}
	errCalledEmpty    = &Refusal{Status: 484, Cause: 28, Text: "called number is empty"}
)

// digits counts the digits of n (a leading + excluded) and reports
// whether every character is allowed.
func (l Limits) digits(n string) (int, bool) {
	if len(n) > 0 && n[0] == '+' {
		n = n[1:]
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= '0' && c <= '9':
		case (c == '*' || c == '#') && l.AllowStarHash:
		default:
			return 0, false
		}
	}
	return len(n), true
}

// CheckCalled validates a called number as received.
func (l Limits) CheckCalled(n string) *Refusal {
	d, ok := l.digits(n)
	switch {
	case !ok:
		return errCalledBad
	case d == 0:
		return errCalledEmpty
	case d > l.MaxCalled:
		return errCalledTooLong
	}
	return nil
}

// CheckCalling validates a calling number. An empty or non-numeric
// calling identity (anonymous, a name) is not a number: it is accepted and
// simply never matches calling-prefix conditions.
func (l Limits) CheckCalling(n string) *Refusal {
	d, ok := l.digits(n)
	if !ok || d == 0 {
		return nil
	}
	if d > l.MaxCalling {
		return errCallingTooLong
	}
	return nil
}

// IsNumber reports whether n looks like a number (digits, *, #, optional
// leading +), whatever the limits.
func IsNumber(n string) bool {
	d, ok := Limits{AllowStarHash: true}.digits(n)
	return ok && d > 0
}

// Validate checks the limits themselves.
func (l Limits) Validate() error {
	if l.MaxCalling < 1 || l.MaxCalling > HardMaxDigits {
		return fmt.Errorf("max_calling_digits must be 1..%d", HardMaxDigits)
	}
	if l.MaxCalled < 1 || l.MaxCalled > HardMaxDigits {
		return fmt.Errorf("max_called_digits must be 1..%d", HardMaxDigits)
	}
	return nil
}
