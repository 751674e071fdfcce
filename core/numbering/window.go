package numbering

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is a time-of-day condition: days of the week and a time range,
// as "Mon-Fri 08:00-18:00", "Sat,Sun", "22:00-06:00" (a range whose end
// is before its start runs past midnight into the next day).
type Window struct {
	spans [][2]int // [start, end) in minutes from Monday 00:00
	text  string
}

const week = 7 * 24 * 60

var dayNames = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

func dayIndex(s string) (int, bool) {
	for i, d := range dayNames {
		if strings.EqualFold(s, d) {
			return i, true
		}
	}
	return 0, false
}

// ParseWindow reads one window.
func ParseWindow(s string) (Window, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return Window{}, fmt.Errorf("%q: want [DAYS] [HH:MM-HH:MM]", s)
	}
	days := [7]bool{true, true, true, true, true, true, true}
	from, to := 0, 24*60
	timePart := f[len(f)-1]
	if !strings.Contains(timePart, ":") {
		timePart = ""
	}
	if len(f) == 2 && timePart == "" {
		return Window{}, fmt.Errorf("%q: the second part must be HH:MM-HH:MM", s)
	}
	if dayPart := f[0]; dayPart != timePart {
		days = [7]bool{}
		for _, item := range strings.Split(dayPart, ",") {
			a, b, isRange := strings.Cut(item, "-")
			da, ok1 := dayIndex(a)
			db := da
			ok2 := true
			if isRange {
				db, ok2 = dayIndex(b)
			}
			if !ok1 || !ok2 {
				return Window{}, fmt.Errorf("%q: days are Mon..Sun, lists with commas, ranges with -", s)
			}
			for d := da; ; d = (d + 1) % 7 {
				days[d] = true
				if d == db {
					break
				}
			}
		}
	}
	if timePart != "" {
		a, b, ok := strings.Cut(timePart, "-")
		var err1, err2 error
		from, err1 = hhmm(a)
		to, err2 = hhmm(b)
		if !ok || err1 != nil || err2 != nil || from == to {
			return Window{}, fmt.Errorf("%q: time range must be HH:MM-HH:MM (00:00-24:00), start != end", s)
		}
	}
	w := Window{text: s}
	for d, on := range days {
		if !on {
			continue
		}
		start := d*24*60 + from
		end := d*24*60 + to
		if to < from {
			end += 24 * 60
		}
		if end > week { // Sunday night into Monday morning
			w.spans = append(w.spans, [2]int{start, week}, [2]int{0, end - week})
		} else {
			w.spans = append(w.spans, [2]int{start, end})
		}
	}
	return w, nil
}

func hhmm(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hv, err1 := strconv.Atoi(h)
	mv, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hv < 0 || mv < 0 || mv > 59 || hv > 24 || (hv == 24 && mv != 0) {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hv*60 + mv, nil
}

// minuteOfWeek of t in its own location, Monday 00:00 = 0.
func minuteOfWeek(t time.Time) int {
	d := (int(t.Weekday()) + 6) % 7
	return d*24*60 + t.Hour()*60 + t.Minute()
}

func (w Window) contains(m int) bool {
	for _, s := range w.spans {
		if m >= s[0] && m < s[1] {
			return true
		}
	}
	return false
}

func (w Window) String() string { return w.text }
