package metrics

import (
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := &Registry{}
	r.Add("softswitch_calls_active", Gauge, "Calls now.", One(func() float64 { return 3 }))
	r.Add("softswitch_gateway_attempts_total", Counter, "Calls offered.\nPer gateway.", func() []Sample {
		return []Sample{{Labels: []string{"gateway", `gw-"a"`}, Value: 7}, {Labels: []string{"gateway", "gw-b"}, Value: 1e21}}
	})
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP softswitch_calls_active Calls now.
# TYPE softswitch_calls_active gauge
softswitch_calls_active 3
# HELP softswitch_gateway_attempts_total Calls offered.\nPer gateway.
# TYPE softswitch_gateway_attempts_total counter
softswitch_gateway_attempts_total{gateway="gw-\"a\""} 7
softswitch_gateway_attempts_total{gateway="gw-b"} 1e+21
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
