package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// unparseable counts the messages the stack dropped because they did not
// parse (it logs each one; the count is what an operator watches).
var unparseable atomic.Int64

// Unparseable is how many received messages did not parse and were dropped.
func Unparseable() int64 { return unparseable.Load() }

// RateLimited wraps a handler so that at most perSecond records pass each
// second. sipgo logs every unparseable datagram with its payload; a flood
// of garbage must not become a flood of logs.
func RateLimited(h slog.Handler, perSecond int) slog.Handler {
	return &limited{h: h, st: &limitState{max: perSecond}}
}

type limitState struct {
	mu      sync.Mutex
	max     int
	sec     int64
	n       int
	dropped int
}

type limited struct {
	h  slog.Handler
	st *limitState
}

func (l *limited) Enabled(ctx context.Context, lv slog.Level) bool { return l.h.Enabled(ctx, lv) }

func (l *limited) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "failed to parse" { // sipgo's record of a message it dropped
		unparseable.Add(1)
	}
	st := l.st
	st.mu.Lock()
	now := time.Now().Unix()
	dropped := 0
	if now != st.sec {
		dropped = st.dropped
		st.sec, st.n, st.dropped = now, 0, 0
	}
	st.n++
	if st.n > st.max {
		st.dropped++
		st.mu.Unlock()
		return nil
	}
	st.mu.Unlock()
	if dropped > 0 {
		r.AddAttrs(slog.Int("log_records_dropped", dropped))
	}
	return l.h.Handle(ctx, r)
}

func (l *limited) WithAttrs(a []slog.Attr) slog.Handler {
	return &limited{h: l.h.WithAttrs(a), st: l.st}
}

func (l *limited) WithGroup(n string) slog.Handler {
	return &limited{h: l.h.WithGroup(n), st: l.st}
}
