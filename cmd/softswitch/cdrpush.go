package main

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/core/safe"
)

// pushGate runs the CDR push (billing.Push) as the running configuration's
// billing_push says: a commit that changes it ends the push in progress
// (the file being uploaded is uploaded again, to the same name, by the
// next one: never a second copy) and starts one with the new settings.
type pushGate struct {
	log  *slog.Logger
	bill *billing.Billing

	mu          sync.Mutex // Set and Attach; no call waits on it
	want        provision.Push
	applied     *provision.Push
	ctx         context.Context // nil until Attach
	stop        func()          // cancels the pusher running
	done        chan struct{}   // closed when it has ended
	lastTimeout time.Duration   // its connection's
	active      bool            // the node is the active one (outward)
}

// SetActive starts the push (the node became the active one of its pair,
// or is alone) or stops it: a standby exports nothing.
func (g *pushGate) SetActive(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active = on
	g.applyLocked()
}

// Set takes billing_push from a commit.
func (g *pushGate) Set(p provision.Push) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.want = p
	g.applyLocked()
}

// Attach starts pushing under ctx (billing's: it ends after the last
// records of a stop are written).
func (g *pushGate) Attach(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ctx = ctx
	g.applyLocked()
}

func (g *pushGate) applyLocked() {
	if g.ctx == nil {
		return
	}
	// Files are kept until the target has them only while there is one
	// (on a standby too: they go once it is active).
	g.bill.SetKeepUntilDelivered(len(g.want.Servers) > 0)
	p := g.want
	if !g.active {
		p = provision.Push{} // nothing pushed
	}
	if g.applied != nil && reflect.DeepEqual(*g.applied, p) {
		return
	}
	if g.stop != nil {
		g.stop()
		g.stop = nil
	}
	g.applied = &p
	if len(p.Servers) == 0 {
		// Stopped without waiting: a role change must not wait on an
		// upload under way (it ends with its connection).
		return
	}
	if g.done != nil {
		// One pusher at a time: the last one's upload in flight ends with
		// its connection (Timeout at most).
		select {
		case <-g.done:
		case <-time.After(g.lastTimeout + 5*time.Second):
			g.log.Warn("CDR push: the previous pusher has not ended; the new one starts all the same")
		}
	}
	pc := billing.PushConfig{Servers: p.Servers, User: p.User, Password: p.Password, Dir: p.Dir,
		ExplicitTLS: p.TLS == "explicit", Timeout: p.Timeout.Duration,
		RetryMin: p.RetryMin.Duration, RetryMax: p.RetryMax.Duration}
	if p.TLS == "explicit" {
		tc, err := pushTLS(p)
		if err != nil {
			g.log.Error("CDR push not started", "err", err)
			return
		}
		pc.TLS = tc
	}
	ctx, cancel := context.WithCancel(g.ctx)
	done := make(chan struct{})
	safe.Go("CDR push", func() {
		defer close(done)
		for ctx.Err() == nil {
			safe.Func("CDR push", func() { g.bill.Push(ctx, pc) })()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second): // after a panic
			}
		}
	})
	g.log.Info("CDR push", "servers", len(p.Servers), "tls", p.TLS)
	g.stop, g.done, g.lastTimeout = cancel, done, pc.Timeout
}
