// Package sipparse is the parser the stack runs with: sipgo's, with From
// and To read the way RFC 3261 writes them. sipgo takes a parameter with
// whitespace around its "=" ("tag = 98asjd8", RFC 3261 §25.1 EQUAL) for
// another parameter, and takes a display name of non-token characters
// without quotes ("Bell, Alexander <sip:...>") as if it were quoted. The
// first is fixed before sipgo reads the value; the second leaves the
// header a plain one (not a *sip.FromHeader or *sip.ToHeader: Valid
// tells), so that core/sipcheck answers 400 (RFC 4475 §3.1.2.15) instead
// of the request being served.
package sipparse

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/sipmsg"
)

// New returns the parser.
func New() *sip.Parser {
	m := sip.HeadersParser{}
	for k, v := range sip.DefaultHeadersParser() {
		m[k] = v
	}
	for _, name := range []string{"from", "f", "to", "t"} {
		m[name] = address(m[name])
	}
	for _, name := range []string{"via", "v"} {
		m[name] = via(m[name])
	}
	return sip.NewParser(sip.WithHeadersParsers(m))
}

func address(next sip.HeaderParser) sip.HeaderParser {
	return func(name []byte, value string) (sip.Header, error) {
		if !validDisplayName(value) {
			return sip.NewHeader(canonical(string(name)), value), nil
		}
		return next(name, tightParams(value))
	}
}

// via reads Via parameters with quoted values (RFC 7339's
// oc-algo="loss,rate"), which sipgo's Via parser mangles and splits at
// the comma inside the quotes. Each quoted string is masked with as many
// placeholder bytes before sipgo reads the value (so that the offsets of
// the values after a comma stay right), then put back.
func via(next sip.HeaderParser) sip.HeaderParser {
	return func(name []byte, value string) (sip.Header, error) {
		if strings.IndexByte(value, '"') < 0 {
			return next(name, value)
		}
		masked := []byte(value)
		var spans [][2]int
		for i := 0; i < len(masked); i++ {
			if masked[i] != '"' {
				continue
			}
			j := i + 1
			for j < len(masked) && masked[j] != '"' {
				if masked[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(masked) {
				break // unterminated: sipgo decides
			}
			spans = append(spans, [2]int{i, j + 1})
			for k := i; k <= j; k++ {
				masked[k] = mask
			}
			i = j
		}
		h, err := next(name, string(masked))
		if v, ok := h.(*sip.ViaHeader); ok {
			next := 0 // spans are put back in order: params come in order
			for i := range v.Params {
				kv := &v.Params[i]
				for k := next; k < len(spans); k++ {
					sp := spans[k]
					if len(kv.V) == sp[1]-sp[0] && strings.Trim(kv.V, string(mask)) == "" {
						kv.V, next = value[sp[0]:sp[1]], k+1
						break
					}
				}
			}
		}
		return h, err
	}
}

// mask stands in for a quoted string while sipgo reads a Via.
const mask = '~'

// Valid reports whether the From and To of m were read as such (not
// left plain for a malformed display name).
func Valid(m sip.Message) bool {
	ok := true
	check := func(h sip.Header) {
		switch h.(type) {
		case *sip.FromHeader, *sip.ToHeader:
		default:
			ok = false
		}
	}
	sipmsg.Each(m, "From", check)
	sipmsg.Each(m, "To", check)
	return ok
}

func canonical(name string) string {
	switch strings.ToLower(name) {
	case "f", "from":
		return "From"
	}
	return "To"
}

// validDisplayName checks what comes before "<" in a name-addr: nothing,
// a quoted string, or tokens separated by whitespace (RFC 3261 §25.1).
func validDisplayName(v string) bool {
	lt := -1
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && quoted {
			i++
			continue
		}
		if c == '"' {
			quoted = !quoted
			continue
		}
		if c == '<' && !quoted {
			lt = i
			break
		}
	}
	if lt < 0 {
		return true // an addr-spec: no display name
	}
	dn := strings.TrimSpace(v[:lt])
	if dn == "" || dn[0] == '"' {
		return true
	}
	for i := 0; i < len(dn); i++ {
		if !isToken(dn[i]) && dn[i] != ' ' && dn[i] != '\t' && dn[i] != '\r' && dn[i] != '\n' {
			return false
		}
	}
	return true
}

func isToken(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// tightParams removes the whitespace RFC 3261 allows around ";" and "="
// of the header parameters (after the closing ">", or after the URI of
// an addr-spec), outside quoted strings.
func tightParams(v string) string {
	start := strings.LastIndexByte(v, '>')
	if start < 0 {
		start = strings.IndexByte(v, ';')
		if start < 0 {
			return v
		}
	} else {
		start++
	}
	rest := v[start:]
	if !strings.ContainsAny(rest, " \t\r\n") {
		return v
	}
	var b strings.Builder
	b.WriteString(v[:start])
	quoted := false
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c == '"' {
			quoted = !quoted
		}
		if !quoted && (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
