package rating

import (
	"math/big"
	"strings"
	"testing"
	"time"
)

func spec() Spec {
	return Spec{
		Default: "retail", Precision: 4, Timezone: "Europe/Berlin", Holidays: []string{"2026-12-25"},
		Bands: []BandSpec{
			{Name: "peak", Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "08:00", To: "18:00"},
			{Name: "night", Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun", "hol"}, From: "22:00", To: "06:00"},
		},
		Tariffs: []TariffSpec{
			{Name: "retail", Currency: "EUR", Rates: []RateSpec{
				{Prefix: "49", Band: "peak", ConnectFee: "0.05", Price: "0.06", Unit: "60s", Increments: "60/60", Minimum: "0.10", Pulse: "60s"},
				{Prefix: "49", Band: "night", Price: "0.01", Unit: "60s", Increments: "60/60"},
				{Prefix: "49", Price: "0.03", Unit: "60s", Increments: "30/6"},
				{Prefix: "4930", Price: "0.02", Unit: "60s", Increments: "1/1"},
				{Prefix: "", Price: "1.00", Unit: "60s", Increments: "60/60"},
			}},
			{Name: "wholesale", Currency: "USD", Rates: []RateSpec{
				{Prefix: "", Price: "0.0071", Unit: "60s", Increments: "1/1"},
			}},
		},
		Assign: []AssignSpec{{Account: "acme", Tariff: "wholesale"}, {Calling: "0800", Tariff: "wholesale"}},
	}
}

func TestRate(t *testing.T) {
	p, err := Compile(spec())
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	mon10 := time.Date(2026, 11, 30, 10, 0, 0, 0, berlin) // Monday, peak
	sat10 := time.Date(2026, 12, 5, 10, 0, 0, 0, berlin)  // Saturday: no band, the plain rate
	hol10 := time.Date(2026, 12, 25, 10, 0, 0, 0, berlin) // a Friday holiday: not peak
	mon23 := time.Date(2026, 11, 30, 23, 30, 0, 0, berlin)
	mon0559 := time.Date(2026, 12, 1, 5, 59, 0, 0, berlin)
	for _, c := range []struct {
		name   string
		call   Call
		amount string
		cur    string
		pulses int
	}{
		// peak, 60/60: 61 s bill 120 s = 2 x 0.06 + 0.05 connect
		{"peak 61s", Call{Called: "4940123", Answer: mon10, Billable: 61 * time.Second}, "0.1700", "EUR", 2},
		// minimum charge: 1 s peak = 0.06 + 0.05 = 0.11 >= 0.10; 0 s answered: connect only 0.05 -> 0.10
		{"peak minimum", Call{Called: "4940123", Answer: mon10, Billable: 0}, "0.1000", "EUR", 1},
		{"peak 1s", Call{Called: "4940123", Answer: mon10, Billable: time.Second}, "0.1100", "EUR", 1},
		// weekend: the any-band rate, 30/6: 31 s -> 36 s x 0.03/60 = 0.018
		{"weekend 30/6", Call{Called: "4940123", Answer: sat10, Billable: 31 * time.Second}, "0.0180", "EUR", 0},
		{"weekend first increment", Call{Called: "4940123", Answer: sat10, Billable: 10 * time.Second}, "0.0150", "EUR", 0},
		{"holiday is not peak", Call{Called: "4940123", Answer: hol10, Billable: 60 * time.Second}, "0.0300", "EUR", 0},
		// night band across midnight, both sides
		{"night 23:30", Call{Called: "4940123", Answer: mon23, Billable: 59 * time.Second}, "0.0100", "EUR", 0},
		{"night 05:59", Call{Called: "4940123", Answer: mon0559, Billable: 60 * time.Second}, "0.0100", "EUR", 0},
		// band crossing: answered 17:59 peak, 5 minutes: all at peak (start-time rule)
		{"crossing", Call{Called: "4940123", Answer: time.Date(2026, 11, 30, 17, 59, 0, 0, berlin), Billable: 5 * time.Minute}, "0.3500", "EUR", 5},
		// longest prefix: 4930 beats 49's any-band rate... but a banded 49 rate is a shorter prefix: 4930 wins
		{"longest prefix", Call{Called: "4930123", Answer: sat10, Billable: 90 * time.Second}, "0.0300", "EUR", 0},
		{"catch-all", Call{Called: "1212555", Answer: sat10, Billable: 60 * time.Second}, "1.0000", "EUR", 0},
		// by account, by calling number; rounding half away from zero at 4 decimals:
		// 7 s x 0.0071/60 = 0.000828333 -> 0.0008; 10 s -> 0.0011833 -> 0.0012
		{"account", Call{Account: "acme", Called: "4940123", Answer: mon10, Billable: 7 * time.Second}, "0.0008", "USD", 0},
		{"calling prefix", Call{Calling: "08001234", Called: "4940123", Answer: mon10, Billable: 10 * time.Second}, "0.0012", "USD", 0},
		{"unanswered", Call{Called: "4940123"}, "0.0000", "EUR", 0},
	} {
		got, err := p.Rate(c.call)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got.Amount != c.amount || got.Currency != c.cur || got.Pulses != c.pulses {
			t.Errorf("%s: %s %s %d pulses, want %s %s %d", c.name, got.Amount, got.Currency, got.Pulses, c.amount, c.cur, c.pulses)
		}
	}
}

func TestFormatRounding(t *testing.T) {
	for _, c := range []struct {
		num, den int64
		prec     int
		want     string
	}{
		{1, 8, 2, "0.13"}, {1, 8, 3, "0.125"}, {5, 1000, 2, "0.01"}, {4999, 1000000, 2, "0.00"}, {123, 1, 0, "123"}, {1, 3, 6, "0.333333"},
	} {
		if got := format(ratOf(c.num, c.den), c.prec); got != c.want {
			t.Errorf("%d/%d at %d: %s, want %s", c.num, c.den, c.prec, got, c.want)
		}
	}
}

func TestCompileRefusesWholeSpec(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"float money", func(s *Spec) { s.Tariffs[0].Rates[0].Price = "6e-2" }, "not a decimal"},
		{"bad increments", func(s *Spec) { s.Tariffs[0].Rates[0].Increments = "60" }, "increments"},
		{"unknown band", func(s *Spec) { s.Tariffs[0].Rates[0].Band = "evening" }, "no band"},
		{"unknown tariff", func(s *Spec) { s.Default = "gold" }, "no tariff"},
		{"bad day", func(s *Spec) { s.Bands[0].Days = []string{"monday"} }, "day"},
		{"bad clock", func(s *Spec) { s.Bands[0].To = "25:00" }, "HH:MM"},
		{"currency", func(s *Spec) { s.Tariffs[0].Currency = "euro" }, "ISO 4217"},
		{"twice", func(s *Spec) { s.Tariffs[0].Rates[1].Band = "peak" }, "twice"},
		{"holiday", func(s *Spec) { s.Holidays = []string{"25.12.2026"} }, "YYYY-MM-DD"},
	} {
		s := spec()
		c.mod(&s)
		if _, err := Compile(s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

func ratOf(n, d int64) *big.Rat { return big.NewRat(n, d) }
