package numbering

import (
	"fmt"
	"strconv"
	"strings"
)

// Country is the numbering plan numbers are normalised against.
type Country struct {
	Code                string // country code without +, e.g. "49"
	NationalPrefix      string // trunk prefix, e.g. "0"
	InternationalPrefix string // e.g. "00"
}

type opKind uint8

const (
	opDelete opKind = iota + 1
	opInsert
	opReplace
	opE164
	opNational
	opInternational
)

// Op is one digit manipulation. Positions count digits after an optional
// leading +, which is kept.
type Op struct {
	kind     opKind
	pos, n   int
	from, to string
}

// ParseOp reads one operation as written in provisioning:
//
//	delete P N       delete N digits at position P (0 is the first digit)
//	insert P DIGITS  insert DIGITS before position P (past the end: append)
//	replace FROM TO  a number starting with FROM starts with TO instead
//	                 (TO may be left out: the prefix is removed)
//	e164             national/international form to +CC... (Country)
//	national         +CC... to the national form (other countries: international)
//	international    +CC... to the international form
func ParseOp(s string) (Op, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Op{}, fmt.Errorf("empty operation")
	}
	num := func(i int, what string) (int, error) {
		if i >= len(f) {
			return 0, fmt.Errorf("%q: missing %s", s, what)
		}
		v, err := strconv.Atoi(f[i])
		if err != nil || v < 0 || v > HardMaxDigits {
			return 0, fmt.Errorf("%q: %s must be 0..%d", s, what, HardMaxDigits)
		}
		return v, nil
	}
	args := func(n int) error {
		if len(f) != n+1 {
			return fmt.Errorf("%q: %s takes %d argument(s)", s, f[0], n)
		}
		return nil
	}
	switch f[0] {
	case "delete":
		if err := args(2); err != nil {
			return Op{}, err
		}
		p, err := num(1, "position")
		if err != nil {
			return Op{}, err
		}
		n, err := num(2, "count")
		if err != nil {
			return Op{}, err
		}
		return Op{kind: opDelete, pos: p, n: n}, nil
	case "insert":
		if err := args(2); err != nil {
			return Op{}, err
		}
		p, err := num(1, "position")
		if err != nil {
			return Op{}, err
		}
		if !isDigits(f[2]) {
			return Op{}, fmt.Errorf("%q: insert takes digits (0-9 * #)", s)
		}
		return Op{kind: opInsert, pos: p, to: f[2]}, nil
	case "replace":
		if len(f) != 2 && len(f) != 3 {
			return Op{}, fmt.Errorf("%q: replace takes FROM and optional TO", s)
		}
		op := Op{kind: opReplace, from: f[1]}
		if len(f) == 3 {
			op.to = f[2]
		}
		if !isPrefix(op.from) || (op.to != "" && !isPrefix(op.to)) {
			return Op{}, fmt.Errorf("%q: prefixes are digits with an optional leading +", s)
		}
		return op, nil
	case "e164", "national", "international":
		if err := args(0); err != nil {
			return Op{}, err
		}
		k := map[string]opKind{"e164": opE164, "national": opNational, "international": opInternational}[f[0]]
		return Op{kind: k}, nil
	}
	return Op{}, fmt.Errorf("%q: unknown operation %q (delete, insert, replace, e164, national, international)", s, f[0])
}

// ParseOps reads a list of operations; the error names the failing one.
func ParseOps(list []string) ([]Op, error) {
	var out []Op
	for i, s := range list {
		op, err := ParseOp(s)
		if err != nil {
			return nil, fmt.Errorf("operation %d: %w", i+1, err)
		}
		out = append(out, op)
	}
	return out, nil
}

func (o Op) String() string {
	switch o.kind {
	case opDelete:
		return fmt.Sprintf("delete %d %d", o.pos, o.n)
	case opInsert:
		return fmt.Sprintf("insert %d %s", o.pos, o.to)
	case opReplace:
		return strings.TrimSpace("replace " + o.from + " " + o.to)
	case opE164:
		return "e164"
	case opNational:
		return "national"
	case opInternational:
		return "international"
	}
	return "?"
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c == '*' || c == '#') {
			return false
		}
	}
	return true
}

func isPrefix(s string) bool {
	if strings.HasPrefix(s, "+") {
		return s == "+" || isDigits(s[1:])
	}
	return isDigits(s)
}

// Apply runs ops in order on n.
func Apply(ops []Op, n string, c Country) string {
	for _, o := range ops {
		n = o.apply(n, c)
	}
	return n
}

func (o Op) apply(n string, c Country) string {
	plus := ""
	body := n
	if strings.HasPrefix(n, "+") {
		plus, body = "+", n[1:]
	}
	switch o.kind {
	case opDelete:
		if o.pos >= len(body) {
			return n
		}
		end := min(o.pos+o.n, len(body))
		return plus + body[:o.pos] + body[end:]
	case opInsert:
		p := min(o.pos, len(body))
		return plus + body[:p] + o.to + body[p:]
	case opReplace:
		if rest, ok := strings.CutPrefix(n, o.from); ok {
			return o.to + rest
		}
	case opE164:
		switch {
		case plus != "":
		case c.InternationalPrefix != "" && strings.HasPrefix(n, c.InternationalPrefix):
			return "+" + n[len(c.InternationalPrefix):]
		case c.NationalPrefix != "" && c.Code != "" && strings.HasPrefix(n, c.NationalPrefix):
			return "+" + c.Code + n[len(c.NationalPrefix):]
		}
	case opNational:
		if plus == "" {
			return n
		}
		if c.Code != "" && strings.HasPrefix(body, c.Code) {
			return c.NationalPrefix + body[len(c.Code):]
		}
		return c.InternationalPrefix + body
	case opInternational:
		if plus != "" {
			return c.InternationalPrefix + body
		}
	}
	return n
}
