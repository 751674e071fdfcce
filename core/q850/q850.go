// Package q850 maps SIP status codes to ISDN (Q.850) cause values and
// back, following RFC 3398, and reads and writes the Reason header of
// RFC 3326 that carries a cause across a SIP leg. The tables are data:
// docs/causes.md prints them for operators.
package q850

import (
	"slices"
	"strconv"
	"strings"
)

// Cause names (Q.850 table 1), for the text of Reason headers and logs.
var names = map[int]string{
	1: "Unallocated number", 2: "No route to specified transit network", 3: "No route to destination",
	16: "Normal call clearing", 17: "User busy", 18: "No user responding", 19: "No answer from user",
	20: "Subscriber absent", 21: "Call rejected", 25: "Exchange routing error", 22: "Number changed", 23: "Redirection to new destination",
	26: "Non-selected user clearing", 27: "Destination out of order", 28: "Invalid number format",
	29: "Facility rejected", 31: "Normal, unspecified", 34: "No circuit/channel available",
	38: "Network out of order", 41: "Temporary failure", 42: "Switching equipment congestion",
	47: "Resource unavailable, unspecified", 55: "Incoming calls barred within CUG",
	57: "Bearer capability not authorized", 58: "Bearer capability not presently available",
	63: "Service or option not available, unspecified", 65: "Bearer capability not implemented",
	70: "Only restricted digital information bearer capability is available",
	79: "Service or option not implemented, unspecified", 87: "User not member of CUG",
	88: "Incompatible destination", 102: "Recovery on timer expiry", 111: "Protocol error, unspecified",
	127: "Interworking, unspecified",
}

// FromSIP is RFC 3398 section 8.2.6.1: the cause sent towards ISUP for a
// SIP final response. Rows marked "ours" are not in the RFC.
var FromSIP = map[int]int{
	400: 41, 401: 21, 402: 21, 403: 21, 404: 1, 405: 63, 406: 79, 407: 21,
	408: 102, 410: 22, 413: 127, 414: 127, 415: 79, 416: 127, 420: 127,
	421: 127, 423: 127, 480: 18, 481: 41, 482: 25, 483: 25, 484: 28,
	485: 1, 486: 17,
	487: 16, // ours: the caller gave up (RFC 3398 has no row)
	488: 65, // ours: media not acceptable (RFC 3398 says: by Warning)
	500: 41, 501: 79, 502: 38, 503: 41, 504: 102, 505: 127, 513: 127,
	600: 17, 603: 21, 604: 1,
	606: 65, // ours, as 488
}

// ToSIP is RFC 3398 section 7.2.4.1: the SIP status for a cause.
var ToSIP = map[int]int{
	1: 404, 2: 404, 3: 404, 17: 486, 18: 408, 19: 480, 20: 480, 21: 403,
	22: 410, 23: 410, 26: 404, 27: 502, 28: 484, 29: 501, 31: 480, 34: 503,
	38: 503, 41: 503, 42: 503, 47: 503, 55: 403, 57: 403, 58: 503, 65: 488,
	70: 488, 79: 501, 87: 403, 88: 503, 102: 504, 111: 500, 127: 500,
}

// CauseForStatus returns the cause for a SIP status: the table, else by
// class (4xx 31 normal unspecified, 5xx 41 temporary failure, 6xx 31).
func CauseForStatus(status int) int {
	if c, ok := FromSIP[status]; ok {
		return c
	}
	if status >= 500 && status < 600 {
		return 41
	}
	return 31
}

// StatusForCause returns the SIP status for a cause: the table, else by
// the cause's class (Q.850: 1-31 normal 480, 32-47 resource unavailable
// 503, 48-63 service not available 500, 64-79 not implemented 501, 80-95
// invalid message 400, 96-111 protocol error 500, 112-127 interworking 500).
func StatusForCause(cause int) int {
	if s, ok := ToSIP[cause]; ok {
		return s
	}
	switch {
	case cause <= 31:
		return 480
	case cause <= 47:
		return 503
	case cause <= 63:
		return 500
	case cause <= 79:
		return 501
	case cause <= 95:
		return 400
	}
	return 500
}

// Name is the cause's name, "" if unknown.
func Name(cause int) string { return names[cause] }

// Reason builds a Reason header value: Q.850;cause=N;text="name".
func Reason(cause int, text string) string {
	if text == "" {
		text = names[cause]
	}
	v := "Q.850;cause=" + strconv.Itoa(cause)
	if text != "" {
		v += `;text="` + strings.ReplaceAll(text, `"`, "'") + `"`
	}
	return v
}

// Parse reads the Q.850 cause from a Reason header value (one or several
// comma-separated reasons); ok is false when it has no Q.850 reason.
func Parse(v string) (cause int, ok bool) {
	for _, r := range strings.Split(v, ",") {
		params := strings.Split(r, ";")
		if !strings.EqualFold(strings.TrimSpace(params[0]), "Q.850") {
			continue
		}
		for _, p := range params[1:] {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "cause") {
				n, err := strconv.Atoi(strings.TrimSpace(val))
				if err == nil && n >= 0 && n <= 127 {
					return n, true
				}
			}
		}
	}
	return 0, false
}

// Markdown prints both tables for docs/causes.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("## SIP status to Q.850 cause (RFC 3398 section 8.2.6.1)\n\n")
	b.WriteString("| SIP status | cause | name |\n|---:|---:|---|\n")
	for _, st := range sortedKeys(FromSIP) {
		c := FromSIP[st]
		b.WriteString("| " + strconv.Itoa(st) + " | " + strconv.Itoa(c) + " | " + names[c] + " |\n")
	}
	b.WriteString("\nOther statuses: 5xx give cause 41, 4xx and 6xx give 31.\n\n")
	b.WriteString("## Q.850 cause to SIP status (RFC 3398 section 7.2.4.1)\n\n")
	b.WriteString("| cause | name | SIP status |\n|---:|---|---:|\n")
	for _, c := range sortedKeys(ToSIP) {
		b.WriteString("| " + strconv.Itoa(c) + " | " + names[c] + " | " + strconv.Itoa(ToSIP[c]) + " |\n")
	}
	b.WriteString("\nOther causes by class: 1-31 give 480, 32-47 503, 48-63 500, 64-79 501, 80-95 400, 96-127 500.\n")
	return b.String()
}

func sortedKeys(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
