// Package safe keeps a bug in one goroutine from taking the process down:
// every goroutine the softswitch starts, every timer callback and every
// handler that sipgo calls on its own goroutines recovers a panic, logs it
// (rate limited, with the stack the first time per place) under the one
// message "recovered panic", counts it, and runs the caller's release
// function so that what the goroutine held (a call, a channel, a lock) is
// given back. A panic is still a bug: the system tests fail on that log
// message.
package safe

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

var (
	logger atomic.Pointer[slog.Logger]
	panics atomic.Int64

	mu   sync.Mutex
	seen = map[string]bool{} // places whose stack was logged
	sec  int64
	inS  int
)

// SetLogger sets where recovered panics are logged (slog.Default until set).
func SetLogger(l *slog.Logger) { logger.Store(l) }

// Panics is how many panics were recovered since start.
func Panics() int64 { return panics.Load() }

// maxPerSecond bounds the log records of recovered panics: input that
// trips a bug on every message must not become a flood of logs.
const maxPerSecond = 5

// Recover must be deferred directly: `defer safe.Recover("where", release)`.
// On a panic it logs and counts it, then calls each release function
// (themselves guarded: a failing release is logged, not rethrown).
func Recover(where string, release ...func()) {
	r := recover()
	if r == nil {
		return
	}
	report(where, r)
	for _, f := range release {
		if f != nil {
			runRelease(where, f)
		}
	}
}

func runRelease(where string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			report(where+" (release)", r)
		}
	}()
	f()
}

// Report logs and counts a panic that the caller recovered itself (a
// deferred function that must call recover() directly and then answer
// something, say).
func Report(where string, r any) { report(where, r) }

func report(where string, r any) {
	panics.Add(1)
	now := time.Now().Unix()
	mu.Lock()
	if now != sec {
		sec, inS = now, 0
	}
	inS++
	first := !seen[where]
	if first && len(seen) < 1000 {
		seen[where] = true
	}
	allowed := inS <= maxPerSecond
	mu.Unlock()
	if !allowed {
		return
	}
	l := logger.Load()
	if l == nil {
		l = slog.Default()
	}
	attrs := []any{"where", where, "panic", fmt.Sprint(r), "total", panics.Load()}
	if first {
		attrs = append(attrs, "stack", string(debug.Stack()))
	}
	l.Error("recovered panic", attrs...)
}

// Go runs fn on a new goroutine that recovers (see Recover).
func Go(where string, fn func(), release ...func()) {
	go func() {
		defer Recover(where, release...)
		fn()
	}()
}

// Func wraps fn (a timer callback, a hook sipgo calls) so that it recovers.
func Func(where string, fn func(), release ...func()) func() {
	return func() {
		defer Recover(where, release...)
		fn()
	}
}

// Loop runs fn on a new goroutine until stop is closed, starting it again
// a second later when it panics (a long-lived loop such as gateway
// probing must outlive a bug in one round).
func Loop(where string, stop <-chan struct{}, fn func()) {
	go func() {
		for {
			ok := func() (ok bool) {
				defer Recover(where)
				fn()
				return true
			}()
			if ok {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()
}
