// Package metrics serves the switch's statistics to Prometheus in its
// text exposition format (version 0.0.4): the same figures SNMP reads,
// from the same places, read at each scrape.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Kind is a metric family's type.
type Kind string

// Kinds.
const (
	Counter Kind = "counter"
	Gauge   Kind = "gauge"
)

// Sample is one value with its labels (name=value pairs, in order).
type Sample struct {
	Labels []string
	Value  float64
}

type family struct {
	name, help string
	kind       Kind
	collect    func() []Sample
}

// Registry holds the metric families.
type Registry struct {
	mu       sync.Mutex
	families []family
}

// Add registers a family; collect is called at each scrape.
func (r *Registry) Add(name string, kind Kind, help string, collect func() []Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.families = append(r.families, family{name: name, help: help, kind: kind, collect: collect})
	sort.Slice(r.families, func(i, j int) bool { return r.families[i].name < r.families[j].name })
}

// One is a collect function of a single unlabelled value.
func One(f func() float64) func() []Sample { return func() []Sample { return []Sample{{Value: f()}} } }

// Write writes every family.
func (r *Registry) Write(w io.Writer) error {
	r.mu.Lock()
	fams := append([]family(nil), r.families...)
	r.mu.Unlock()
	var b strings.Builder
	for _, f := range fams {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
		for _, s := range f.collect() {
			b.WriteString(f.name)
			if len(s.Labels) > 0 {
				b.WriteByte('{')
				for i := 0; i+1 < len(s.Labels); i += 2 {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s=\"%s\"", s.Labels[i], escapeLabel(s.Labels[i+1]))
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatValue(s.Value))
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ServeHTTP answers a scrape.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	r.Write(w)
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
