package call

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// defaultOCValidity applies when a server sends oc without oc-validity.
const defaultOCValidity = 2 * time.Second

// readOC passes a response's RFC 7339 overload control (the parameters
// the server set on our Via) to f. Values that do not parse, and
// algorithms other than loss, are ignored: they ask nothing we can do.
func readOC(r *sip.Response, f Feedback) {
	v := r.Via()
	if v == nil {
		return
	}
	raw := ""
	for _, kv := range v.Params { // our bare offer may still be there before the value
		if kv.K == "oc" && kv.V != "" {
			raw = kv.V
			break
		}
	}
	if raw == "" {
		return // only our offer came back: the server does no overload control
	}
	loss, err := strconv.Atoi(raw)
	if err != nil || loss < 0 || loss > 100 {
		return
	}
	if algo, ok := v.Params.Get("oc-algo"); ok && !strings.EqualFold(strings.Trim(algo, `"`), "loss") {
		return
	}
	validity := defaultOCValidity
	if s, ok := v.Params.Get("oc-validity"); ok {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms < 0 {
			return
		}
		validity = time.Duration(min(ms, 86_400_000)) * time.Millisecond
	}
	var seq int64
	if s, ok := v.Params.Get("oc-seq"); ok {
		if n, err := strconv.ParseFloat(s, 64); err == nil { // RFC 7339 allows a decimal point
			seq = int64(n * 1000)
		}
	}
	f(loss, validity, seq, time.Now())
}
