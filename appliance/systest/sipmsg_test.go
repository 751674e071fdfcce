package systest

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// sipMsg is one SIP message taken from a sipp -trace_msg log.
type sipMsg struct {
	Sent    bool // sent by sipp (else received)
	Raw     string
	First   string // start line
	Method  string // requests
	RURI    string // requests
	Status  int    // responses
	Reason  string // responses
	Body    string
	headers []sipHeader
}

type sipHeader struct {
	Name  string // canonical lower-case long form
	Value string
}

// sippTraceEntry matches the line pair sipp writes before each message:
//
//	----------------------------------------------- 2026-01-01 10:00:00.000000
//	UDP message sent (235 bytes):
//	UDP message received [222] bytes :
var sippTraceEntry = regexp.MustCompile(`(?m)^-{40,} [^\n]*\n(?:UDP|TCP|TLS|SCTP) message (sent|received) (?:\((\d+) bytes\)|\[(\d+)\] bytes ?):\n\n`)

// sippTraceSeparator is the first line of every entry, whatever follows.
var sippTraceSeparator = regexp.MustCompile(`(?m)^-{40,} `)

// readSippMessages parses a sipp message log. Every entry must parse: a
// log that cannot be read whole is an error, never an empty list (checks
// that something did not happen would pass over it).
func readSippMessages(path string) ([]sipMsg, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sipp message log: %w", err)
	}
	s := string(data)
	var out []sipMsg
	for _, loc := range sippTraceEntry.FindAllStringSubmatchIndex(s, -1) {
		sent := s[loc[2]:loc[3]] == "sent"
		var n int
		if loc[4] >= 0 {
			n, _ = strconv.Atoi(s[loc[4]:loc[5]])
		} else {
			n, _ = strconv.Atoi(s[loc[6]:loc[7]])
		}
		start := loc[1]
		if start+n > len(s) {
			return nil, fmt.Errorf("sipp message log %s: an entry of %d bytes runs past the end of the file", path, n)
		}
		m := parseSIP(s[start : start+n])
		if m.Method == "" && m.Status == 0 {
			return nil, fmt.Errorf("sipp message log %s: entry %d is not a SIP message: %q", path, len(out)+1, m.First)
		}
		m.Sent = sent
		out = append(out, m)
	}
	if entries := len(sippTraceSeparator.FindAllStringIndex(s, -1)); entries != len(out) {
		return nil, fmt.Errorf("sipp message log %s: %d entries, %d parsed", path, entries, len(out))
	}
	return out, nil
}

var compactHeaders = map[string]string{
	"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
	"c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding", "o": "event",
	"r": "refer-to", "x": "session-expires", "u": "allow-events", "a": "accept-contact",
	"b": "referred-by", "j": "reject-contact", "d": "request-disposition", "y": "identity",
}

func canonicalHeader(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if long, ok := compactHeaders[n]; ok {
		return long
	}
	return n
}

// parseSIP parses one message leniently (it is only read by tests).
func parseSIP(raw string) sipMsg {
	m := sipMsg{Raw: raw}
	head, body, found := strings.Cut(raw, "\r\n\r\n")
	if !found {
		head, body, _ = strings.Cut(raw, "\n\n")
	}
	lines := strings.Split(strings.ReplaceAll(head, "\r\n", "\n"), "\n")
	if len(lines) == 0 {
		return m
	}
	m.First = strings.TrimSpace(lines[0])
	if rest, ok := strings.CutPrefix(m.First, "SIP/2.0 "); ok {
		code, reason, _ := strings.Cut(rest, " ")
		m.Status, _ = strconv.Atoi(code)
		m.Reason = reason
	} else {
		f := strings.Fields(m.First)
		if len(f) >= 2 {
			m.Method, m.RURI = f[0], f[1]
		}
	}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(m.headers) > 0 { // folded line
			m.headers[len(m.headers)-1].Value += " " + strings.TrimSpace(l)
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		m.headers = append(m.headers, sipHeader{Name: canonicalHeader(name), Value: strings.TrimSpace(value)})
	}
	if cl := m.Header("Content-Length"); cl != "" {
		if n, err := strconv.Atoi(cl); err == nil && n <= len(body) {
			body = body[:n]
		}
	}
	m.Body = body
	return m
}

// Header is the value of the first header line called name ("" if none).
func (m sipMsg) Header(name string) string {
	c := canonicalHeader(name)
	for _, h := range m.headers {
		if h.Name == c {
			return h.Value
		}
	}
	return ""
}

// Has reports whether the message has a header called name.
func (m sipMsg) Has(name string) bool {
	c := canonicalHeader(name)
	for _, h := range m.headers {
		if h.Name == c {
			return true
		}
	}
	return false
}

// HeaderLines is the values of every header line called name.
func (m sipMsg) HeaderLines(name string) []string {
	c := canonicalHeader(name)
	var out []string
	for _, h := range m.headers {
		if h.Name == c {
			out = append(out, h.Value)
		}
	}
	return out
}

// Values is the comma-separated values of every header line called name
// (Via: a, b and two Via lines are both two values).
func (m sipMsg) Values(name string) []string {
	var out []string
	for _, l := range m.HeaderLines(name) {
		out = append(out, splitComma(l)...)
	}
	return out
}

// HeaderNames is the canonical names of the headers, in order.
func (m sipMsg) HeaderNames() []string {
	out := make([]string, len(m.headers))
	for i, h := range m.headers {
		out[i] = h.Name
	}
	return out
}

// CSeq is the CSeq number and method.
func (m sipMsg) CSeq() (int, string) {
	f := strings.Fields(m.Header("CSeq"))
	if len(f) != 2 {
		return -1, ""
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return -1, f[1]
	}
	return n, f[1]
}

// headerPart is the message without its body, for leak checks.
func (m sipMsg) headerPart() string {
	h, _, found := strings.Cut(m.Raw, "\r\n\r\n")
	if !found {
		h, _, _ = strings.Cut(m.Raw, "\n\n")
	}
	return h
}

// splitComma splits a header value at commas outside quotes and <>.
func splitComma(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' && (i == 0 || v[i-1] != '\\'):
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// sipURI is a parsed sip: URI.
type sipURI struct {
	User   string
	Host   string
	Port   int
	Params string // ";..." after host[:port], if any
}

// HostPort is host:port (port 5060 when the URI has none).
func (u sipURI) HostPort() string {
	p := u.Port
	if p == 0 {
		p = 5060
	}
	return fmt.Sprintf("%s:%d", u.Host, p)
}

// uriOf extracts the URI from a name-addr ("Bob" <sip:..>;tag=x) or an
// addr-spec (sip:...;tag=x) and parses it.
func uriOf(v string) sipURI {
	s := v
	if i := strings.IndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	} else if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i] // header params, not URI params, in an addr-spec header
	}
	return parseURI(strings.TrimSpace(s))
}

func parseURI(s string) sipURI {
	var u sipURI
	s = strings.TrimPrefix(strings.TrimPrefix(s, "sips:"), "sip:")
	if i := strings.IndexAny(s, "?"); i >= 0 {
		s = s[:i]
	}
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		u.User = s[:at]
		s = s[at+1:]
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		u.Params = s[i:]
		s = s[:i]
	}
	if h, p, ok := strings.Cut(s, ":"); ok {
		u.Host = h
		u.Port, _ = strconv.Atoi(p)
	} else {
		u.Host = s
	}
	if i := strings.IndexByte(u.User, ':'); i >= 0 { // user:password
		u.User = u.User[:i]
	}
	return u
}

// headerParam is parameter name of a header value, taken after the URI
// (e.g. tag of From, expires of Contact); "" if absent.
func headerParam(v, name string) string {
	rest := v
	if i := strings.LastIndexByte(rest, '>'); i >= 0 {
		rest = rest[i+1:]
	} else if i := strings.IndexByte(rest, ';'); i >= 0 {
		rest = rest[i:]
	} else {
		return ""
	}
	for _, p := range strings.Split(rest, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, name) {
			return strings.Trim(val, `"`)
		}
	}
	return ""
}

// hasHeaderParam reports whether the header value has parameter name.
func hasHeaderParam(v, name string) bool {
	rest := v
	if i := strings.LastIndexByte(rest, '>'); i >= 0 {
		rest = rest[i+1:]
	} else if i := strings.IndexByte(rest, ';'); i >= 0 {
		rest = rest[i:]
	} else {
		return false
	}
	for _, p := range strings.Split(rest, ";") {
		k, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// viaSentBy is the host:port of a Via value ("SIP/2.0/UDP host:port;...").
func viaSentBy(v string) string {
	f := strings.Fields(v)
	if len(f) < 2 {
		return ""
	}
	sb := strings.Join(f[1:], "")
	if i := strings.IndexByte(sb, ';'); i >= 0 {
		sb = sb[:i]
	}
	if !strings.Contains(sb, ":") {
		sb += ":5060"
	}
	return sb
}

// authParams parses the parameters of a Digest challenge or credentials.
func authParams(v string) (scheme string, params map[string]string) {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	params = map[string]string{}
	for _, p := range splitComma(rest) {
		k, val, _ := strings.Cut(p, "=")
		params[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(val), `"`)
	}
	return scheme, params
}

// contactsWithExpires is the URIs of the Contact values of m with their
// expires (the parameter, else the Expires header, else -1).
func contactsWithExpires(m sipMsg) map[string]int {
	out := map[string]int{}
	hdrExp := -1
	if e := m.Header("Expires"); e != "" {
		hdrExp, _ = strconv.Atoi(e)
	}
	for _, c := range m.Values("Contact") {
		u := uriOf(c)
		key := fmt.Sprintf("sip:%s@%s", u.User, u.HostPort())
		exp := hdrExp
		if e := headerParam(c, "expires"); e != "" {
			exp, _ = strconv.Atoi(e)
		}
		out[key] = exp
	}
	return out
}
