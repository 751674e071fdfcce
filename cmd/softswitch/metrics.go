package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/safe"
	"github.com/softswitch/softswitch/interwork/gateway"
	"github.com/softswitch/softswitch/oam/metrics"
)

// startMetrics serves the Prometheus endpoint when [metrics] listen is
// set: the figures SNMP serves, from the same sources.
func startMetrics(ctx context.Context, cfg config.Config, src *node, log *slog.Logger) error {
	m := cfg.Metrics
	if m.Listen == "" {
		return nil
	}
	r := &metrics.Registry{}
	c := src.counters
	count := func(name, help string, f func() int64) {
		r.Add(name, metrics.Counter, help, metrics.One(func() float64 { return float64(f()) }))
	}
	gaugeF := func(name, help string, f func() float64) { r.Add(name, metrics.Gauge, help, metrics.One(f)) }
	count("softswitch_call_attempts_total", "Call attempts since the start.", c.Attempts.Load)
	count("softswitch_call_answers_total", "Calls answered since the start.", c.Answers.Load)
	count("softswitch_call_failures_total", "Calls released without an answer since the start.", c.Failed.Load)
	gaugeF("softswitch_calls_active", "Calls between INVITE and release.", func() float64 { return float64(max(0, c.Active.Load())) })
	gaugeF("softswitch_calls_active_peak", "The most calls at once since the start.", func() float64 { return float64(c.Peak.Load()) })
	gaugeF("softswitch_registrations", "Registration bindings.", func() float64 { return float64(max(0, c.Registrations.Load())) })
	gaugeF("softswitch_asr_15m_ratio", "Answers per attempt over the last 15 minutes.", func() float64 { return c.Rolling(time.Now()).ASR15 })
	gaugeF("softswitch_asr_60m_ratio", "Answers per attempt over the last 60 minutes.", func() float64 { return c.Rolling(time.Now()).ASR60 })
	r.Add("softswitch_call_releases_by_cause_total", metrics.Counter, "Calls released since the start, by Q.850 cause.",
		func() []metrics.Sample {
			var out []metrics.Sample
			for cause := range c.Causes {
				if n := c.Causes[cause].Load(); n > 0 {
					out = append(out, metrics.Sample{Labels: []string{"cause", strconv.Itoa(cause)}, Value: float64(n)})
				}
			}
			return out
		})
	gaugeF("softswitch_busy_hour_call_attempts", "Call attempts in the last 60 minutes.", func() float64 {
		return float64(c.Rolling(time.Now()).BusyHourAttempts)
	})
	gaugeF("softswitch_calls_per_second", "Call attempts per second over the last 10 seconds.", func() float64 {
		return c.Rolling(time.Now()).CallsPerSecond
	})
	gaugeF("softswitch_message_delay_mean_seconds", "Mean SIP message processing delay (read to handled) over the last complete minute.",
		func() float64 { m, _, _ := src.delay.LastMinute(time.Now()); return m.Seconds() })
	gaugeF("softswitch_message_delay_p99_seconds", "99th percentile of the SIP message processing delay over the last complete minute.",
		func() float64 { _, p, _ := src.delay.LastMinute(time.Now()); return p.Seconds() })
	gaugeF("softswitch_alarms_active", "Alarms raised and not cleared.", func() float64 { return float64(len(src.alarms.Active())) })
	perGateway := func(f func(g *gateway.Gateway) float64) func() []metrics.Sample {
		return func() []metrics.Sample {
			var out []metrics.Sample
			for _, g := range src.gateways() {
				out = append(out, metrics.Sample{Labels: []string{"gateway", g.Name}, Value: f(g)})
			}
			return out
		}
	}
	r.Add("softswitch_gateway_attempts_total", metrics.Counter, "Calls offered to the gateway since the start.",
		perGateway(func(g *gateway.Gateway) float64 { return float64(g.Counters().Out) }))
	r.Add("softswitch_gateway_channels_in_use", metrics.Gauge, "Calls through the gateway now.",
		perGateway(func(g *gateway.Gateway) float64 { return float64(max(0, g.Counters().Active)) }))
	r.Add("softswitch_gateway_up", metrics.Gauge, "1 when the gateway answers its probes and is not locked.",
		perGateway(func(g *gateway.Gateway) float64 {
			if g.State() == gateway.Up {
				return 1
			}
			return 0
		}))
	gaugeF("softswitch_cdr_push_backlog_files", "Closed CDR files the billing centre does not have yet (0 when not pushed).", func() float64 {
		n, _, _ := src.pushBacklog()
		return float64(n)
	})

	var allowed []netip.Prefix
	for _, s := range m.Sources {
		p, _ := config.ParsePrefix(s) // validated
		allowed = append(allowed, p)
	}
	h := http.NewServeMux()
	h.HandleFunc("/metrics", func(w http.ResponseWriter, req *http.Request) {
		if len(allowed) > 0 {
			ap, err := netip.ParseAddrPort(req.RemoteAddr)
			if err != nil || !containsAddr(allowed, ap.Addr()) {
				http.Error(w, "not an allowed source", http.StatusForbidden)
				return
			}
		}
		r.ServeHTTP(w, req)
	})
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 8 << 10}
	safe.Go("metrics server", func() { hs.Serve(ln) })
	context.AfterFunc(ctx, func() { hs.Close() })
	log.Info("Prometheus metrics", "listen", ln.Addr().String(), "path", "/metrics")
	return nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
