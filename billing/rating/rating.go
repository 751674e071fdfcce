// Package rating prices calls (R17): tariffs by called prefix (longest
// match) and time band, with a connect fee, a price per unit, billing
// increments, a minimum charge and meter pulses; a tariff is chosen by the
// caller's account, else its calling number (longest prefix), else the
// default. Money is exact: amounts are big.Rat, rounded once at the end
// (half away from zero) to the plan's precision. docs/billing.md has a
// worked example.
package rating

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/softswitch/softswitch/core/provision"
)

// Spec is provision.Rating (plain data, shared with the config file and the CLI).
type Spec = provision.Rating

// BandSpec is provision.Band (plain data, shared with the config file and the CLI).
type BandSpec = provision.Band

// TariffSpec is provision.Tariff (plain data, shared with the config file and the CLI).
type TariffSpec = provision.Tariff

// RateSpec is provision.Rate (plain data, shared with the config file and the CLI).
type RateSpec = provision.Rate

// AssignSpec is provision.Assign (plain data, shared with the config file and the CLI).
type AssignSpec = provision.Assign

// Plan is a compiled Spec. It is immutable: swap a whole one.
type Plan struct {
	def       *tariff
	precision int
	loc       *time.Location
	holidays  map[string]bool
	bands     map[string]*band
	byAccount map[string]*tariff
	byCalling []assign // longest prefix first
}

type band struct {
	name     string
	days     map[string]bool
	from, to int // minutes of the day
}

type tariff struct {
	name     string
	currency string
	rates    []*rate // longest prefix first; within a prefix banded rates before the "any" one
}

type rate struct {
	prefix         string
	band           *band
	connect, price *big.Rat
	minimum        *big.Rat
	unit           int64 // seconds
	first, next    int64 // seconds
	pulse          int64 // seconds; 0 none
}

type assign struct {
	prefix string
	t      *tariff
}

// Call is what a charge is computed from.
type Call struct {
	Account, Calling, Called string
	Answer                   time.Time // zero: unanswered (no charge)
	Billable                 time.Duration
}

// Charge is the result: Amount is a decimal string with the plan's
// precision; empty when no tariff applies.
type Charge struct {
	Amount   string
	Currency string
	Pulses   int
	Tariff   string
}

// Error is a refused spec: Key is the dotted path of what is wrong
// (rating.tariff[0].rate[2]), for the config loader to find its line.
type Error struct {
	Key    string
	Reason string
}

func (e *Error) Error() string { return e.Key + ": " + e.Reason }

var days = map[string]bool{"mon": true, "tue": true, "wed": true, "thu": true, "fri": true, "sat": true, "sun": true, "hol": true}

// Compile checks the whole spec; any error refuses all of it. Errors are
// *Error.
func Compile(s Spec) (*Plan, error) {
	p, err := compile(s)
	if err != nil {
		msg := err.Error()
		key, reason, ok := strings.Cut(msg, ": ")
		if !ok || !strings.HasPrefix(key, "rating") {
			key, reason = "rating", msg
		}
		// The key names the table entry; the reason may name a field.
		return nil, &Error{Key: key, Reason: reason}
	}
	return p, nil
}

func compile(s Spec) (*Plan, error) {
	p := &Plan{precision: s.Precision, holidays: map[string]bool{}, bands: map[string]*band{},
		byAccount: map[string]*tariff{}, loc: time.UTC}
	if s.Precision < 0 || s.Precision > 6 {
		return nil, fmt.Errorf("rating.precision: %d, must be 0..6", s.Precision)
	}
	if s.Timezone != "" {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			return nil, fmt.Errorf("rating.timezone: %w", err)
		}
		p.loc = loc
	}
	for i, d := range s.Holidays {
		if _, err := time.Parse("2006-01-02", d); err != nil {
			return nil, fmt.Errorf("rating.holidays[%d]: %q is not YYYY-MM-DD", i, d)
		}
		p.holidays[d] = true
	}
	for i, b := range s.Bands {
		where := fmt.Sprintf("rating.band[%d]", i)
		if b.Name == "" || p.bands[b.Name] != nil {
			return nil, fmt.Errorf("%s: name %q empty or used twice", where, b.Name)
		}
		cb := &band{name: b.Name, days: map[string]bool{}}
		if len(b.Days) == 0 {
			return nil, fmt.Errorf("%s: no days", where)
		}
		for _, d := range b.Days {
			d = strings.ToLower(d)
			if !days[d] {
				return nil, fmt.Errorf("%s: day %q is not mon..sun or hol", where, d)
			}
			cb.days[d] = true
		}
		var err error
		if cb.from, err = clock(b.From); err != nil {
			return nil, fmt.Errorf("%s.from: %w", where, err)
		}
		if cb.to, err = clock(b.To); err != nil {
			return nil, fmt.Errorf("%s.to: %w", where, err)
		}
		if cb.from == cb.to {
			return nil, fmt.Errorf("%s: from and to are equal (use 00:00 and 24:00 for the whole day)", where)
		}
		p.bands[b.Name] = cb
	}
	tariffs := map[string]*tariff{}
	for i, ts := range s.Tariffs {
		where := fmt.Sprintf("rating.tariff[%d]", i)
		if ts.Name == "" || tariffs[ts.Name] != nil {
			return nil, fmt.Errorf("%s: name %q empty or used twice", where, ts.Name)
		}
		if len(ts.Currency) != 3 || strings.ToUpper(ts.Currency) != ts.Currency {
			return nil, fmt.Errorf("%s.currency: %q is not an ISO 4217 code", where, ts.Currency)
		}
		t := &tariff{name: ts.Name, currency: ts.Currency}
		seen := map[string]bool{}
		for j, rs := range ts.Rates {
			r, err := compileRate(rs, p.bands)
			if err != nil {
				return nil, fmt.Errorf("%s.rate[%d]: %w", where, j, err)
			}
			if key := rs.Prefix + "/" + rs.Band; seen[key] {
				return nil, fmt.Errorf("%s.rate[%d]: prefix %q band %q given twice", where, j, rs.Prefix, rs.Band)
			} else {
				seen[key] = true
			}
			t.rates = append(t.rates, r)
		}
		sort.SliceStable(t.rates, func(a, b int) bool {
			ra, rb := t.rates[a], t.rates[b]
			if len(ra.prefix) != len(rb.prefix) {
				return len(ra.prefix) > len(rb.prefix)
			}
			return ra.band != nil && rb.band == nil
		})
		tariffs[ts.Name] = t
	}
	if s.Default != "" {
		if p.def = tariffs[s.Default]; p.def == nil {
			return nil, fmt.Errorf("rating.default_tariff: no tariff %q", s.Default)
		}
	}
	for i, a := range s.Assign {
		where := fmt.Sprintf("rating.assign[%d]", i)
		t := tariffs[a.Tariff]
		switch {
		case t == nil:
			return nil, fmt.Errorf("%s.tariff: no tariff %q", where, a.Tariff)
		case (a.Account == "") == (a.Calling == ""):
			return nil, fmt.Errorf("%s: give account or calling_prefix, not both or neither", where)
		case a.Account != "":
			if p.byAccount[a.Account] != nil {
				return nil, fmt.Errorf("%s: account %q assigned twice", where, a.Account)
			}
			p.byAccount[a.Account] = t
		default:
			if !digits(a.Calling) {
				return nil, fmt.Errorf("%s.calling_prefix: %q is not digits", where, a.Calling)
			}
			p.byCalling = append(p.byCalling, assign{a.Calling, t})
		}
	}
	sort.SliceStable(p.byCalling, func(a, b int) bool { return len(p.byCalling[a].prefix) > len(p.byCalling[b].prefix) })
	return p, nil
}

func compileRate(rs RateSpec, bands map[string]*band) (*rate, error) {
	r := &rate{prefix: rs.Prefix}
	if rs.Prefix != "" && !digits(rs.Prefix) {
		return nil, fmt.Errorf("prefix %q is not digits", rs.Prefix)
	}
	if rs.Band != "" {
		if r.band = bands[rs.Band]; r.band == nil {
			return nil, fmt.Errorf("no band %q", rs.Band)
		}
	}
	var err error
	if r.connect, err = money(rs.ConnectFee, "connect_fee"); err != nil {
		return nil, err
	}
	if r.price, err = money(rs.Price, "price"); err != nil {
		return nil, err
	}
	if r.minimum, err = money(rs.Minimum, "minimum"); err != nil {
		return nil, err
	}
	if r.unit, err = seconds(rs.Unit, "unit", false); err != nil {
		return nil, err
	}
	if r.pulse, err = seconds(rs.Pulse, "pulse", true); err != nil {
		return nil, err
	}
	first, next, ok := strings.Cut(rs.Increments, "/")
	f, err1 := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	n, err2 := strconv.ParseInt(strings.TrimSpace(next), 10, 64)
	if !ok || err1 != nil || err2 != nil || f < 1 || n < 1 || f > 3600 || n > 3600 {
		return nil, fmt.Errorf("increments %q: want first/next seconds, e.g. 60/60 or 30/6", rs.Increments)
	}
	r.first, r.next = f, n
	return r, nil
}

// money reads a non-negative decimal amount ("" = 0).
func money(s, what string) (*big.Rat, error) {
	if s == "" {
		return new(big.Rat), nil
	}
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			return nil, fmt.Errorf("%s %q is not a decimal amount (digits and one point)", what, s)
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.Count(s, ".") > 1 {
		return nil, fmt.Errorf("%s %q is not a decimal amount", what, s)
	}
	return r, nil
}

func seconds(s, what string, zeroOK bool) (int64, error) {
	if s == "" && zeroOK {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second || d%time.Second != 0 {
		return 0, fmt.Errorf("%s %q: whole seconds, at least 1s (e.g. \"60s\")", what, s)
	}
	return int64(d / time.Second), nil
}

func clock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("%q is not HH:MM (00:00..24:00)", s)
	}
	return hh*60 + mm, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

var errUnrated = errors.New("no tariff")

// Rate prices c. Band crossing: a call is rated whole at the band in force
// when it was answered (the start-time rule), as most carriers' retail
// tariffs do. An unanswered call costs nothing; with no tariff for the
// caller or no rate for the number the charge is empty.
func (p *Plan) Rate(c Call) (Charge, error) {
	t := p.tariffFor(c)
	if t == nil {
		return Charge{}, errUnrated
	}
	if c.Answer.IsZero() {
		return Charge{Amount: format(new(big.Rat), p.precision), Currency: t.currency, Tariff: t.name}, nil
	}
	r := p.rateFor(t, c.Called, c.Answer)
	if r == nil {
		return Charge{Currency: t.currency, Tariff: t.name}, fmt.Errorf("tariff %s has no rate for %s at %s", t.name, c.Called, c.Answer.UTC().Format(time.RFC3339))
	}
	secs := int64((c.Billable + time.Second - 1) / time.Second) // started seconds
	billed := int64(0)
	if secs > 0 {
		billed = r.first
		if secs > r.first {
			billed += (secs - r.first + r.next - 1) / r.next * r.next
		}
	}
	amount := new(big.Rat).Mul(r.price, big.NewRat(billed, r.unit))
	amount.Add(amount, r.connect)
	if amount.Cmp(r.minimum) < 0 {
		amount.Set(r.minimum)
	}
	pulses := 0
	if r.pulse > 0 {
		pulses = int((secs + r.pulse - 1) / r.pulse)
		if pulses == 0 {
			pulses = 1 // an answered call counts one pulse
		}
	}
	return Charge{Amount: format(amount, p.precision), Currency: t.currency, Pulses: pulses, Tariff: t.name}, nil
}

func (p *Plan) tariffFor(c Call) *tariff {
	if t := p.byAccount[c.Account]; t != nil && c.Account != "" {
		return t
	}
	for _, a := range p.byCalling {
		if strings.HasPrefix(c.Calling, a.prefix) {
			return a.t
		}
	}
	return p.def
}

func (p *Plan) rateFor(t *tariff, called string, at time.Time) *rate {
	local := at.In(p.loc)
	day := strings.ToLower(local.Weekday().String()[:3])
	hol := p.holidays[local.Format("2006-01-02")]
	minute := local.Hour()*60 + local.Minute()
	for _, r := range t.rates {
		if !strings.HasPrefix(called, r.prefix) {
			continue
		}
		if r.band == nil || r.band.covers(day, hol, minute) {
			return r
		}
	}
	return nil
}

func (b *band) covers(day string, hol bool, minute int) bool {
	if hol {
		if !b.days["hol"] {
			return false
		}
	} else if !b.days[day] {
		return false
	}
	if b.from < b.to {
		return minute >= b.from && minute < b.to
	}
	return minute >= b.from || minute < b.to // across midnight
}

// format rounds r half away from zero to prec decimals.
func format(r *big.Rat, prec int) string {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(prec)), nil)
	n := new(big.Int).Mul(r.Num(), scale)
	d := r.Denom()
	q, m := new(big.Int).QuoRem(n, d, new(big.Int))
	if new(big.Int).Mul(m, big.NewInt(2)).CmpAbs(d) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	s := q.String()
	if prec == 0 {
		return s
	}
	for len(s) <= prec {
		s = "0" + s
	}
	return s[:len(s)-prec] + "." + s[len(s)-prec:]
}
