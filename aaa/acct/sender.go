// Package acct delivers accounting: it reads an outbox of the CDR writer
// (billing/outbox.go: a Start when a call is answered, a Stop when it
// ends, durable with the CDR) and sends each entry through a Transport
// (RADIUS, Diameter), in outbox order, several at a time. An entry is
// reported delivered once the server acknowledged it and every earlier
// one, and only then deleted; while no server answers, nothing is
// skipped: the sender waits and tries again, backing off. A Stop is never
// sent before its call's Start was acknowledged. Interim updates, when
// configured, are sent for the calls whose Start was acknowledged; they
// are not kept (a lost one is followed by the next, or the Stop).
package acct

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/safe"
)

// Kind of an accounting request.
type Kind int

// Kinds.
const (
	Start Kind = iota
	Interim
	Stop
)

func (k Kind) String() string { return [...]string{"start", "interim", "stop"}[k] }

// Transport sends one accounting request and returns once the server
// acknowledged it (nil) or every server failed (an error).
type Transport interface {
	Send(ctx context.Context, kind Kind, r *cdr.Record, now time.Time) error
}

// Outbox is the CDR writer's side (billing.Billing).
type Outbox interface {
	Outbox(name string, after uint64, max int) ([]billing.OutboxEntry, error)
	Delivered(name string, upto uint64)
	OutboxNotify(name string) <-chan struct{}
}

// Sender delivers one outbox. Set the fields, then Run.
type Sender struct {
	Name    string // the outbox
	Box     Outbox
	T       Transport
	Window  int           // requests in flight at most (default 32)
	Interim time.Duration // interim update period (0: none)
	Log     *slog.Logger
	// OnFailing hears the sender starting to fail (every server refused
	// or was silent) and delivering again; it must not block.
	OnFailing func(failing bool, err error)
}

type result struct {
	e   billing.OutboxEntry
	err error
}

// backoff limits after a failed send.
const (
	firstBackoff = time.Second
	maxBackoff   = 30 * time.Second
)

// Run delivers until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	window := s.Window
	if window <= 0 {
		window = 32
	}
	var (
		cursor   uint64                             // the last sequence read
		queue    []billing.OutboxEntry              // read, not sent, in order
		order    []uint64                           // read and not yet delivered, in order
		acked    = map[uint64]bool{}                // acknowledged, not yet contiguous
		starts   = map[string]bool{}                // record ids whose Start is not yet acknowledged
		held     = map[string]billing.OutboxEntry{} // Stops waiting for their Start
		active   = map[string]*session{}            // answered calls for interim updates
		inflight int
		results  = make(chan result, window)
		failing  bool
		pause    time.Duration
		resume   <-chan time.Time
	)
	// advance tells the outbox what is delivered, up to the first entry
	// not yet acknowledged.
	advance := func() {
		var upto uint64
		for len(order) > 0 && acked[order[0]] {
			upto = order[0]
			delete(acked, upto)
			order = order[1:]
		}
		if upto > 0 {
			s.Box.Delivered(s.Name, upto)
		}
	}
	notify := s.Box.OutboxNotify(s.Name)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	send := func(e billing.OutboxEntry) {
		inflight++
		kind := Start
		if e.Kind == billing.OutboxStop {
			kind = Stop
		}
		safe.Go("accounting send", func() {
			err := s.T.Send(ctx, kind, e.Rec, time.Now())
			results <- result{e, err}
		}, func() { results <- result{e, errPanic} })
	}
	for {
		// Read more and fill the window, unless backing off.
		for ctx.Err() == nil && !failing && inflight < window {
			if len(queue) == 0 {
				es, err := s.Box.Outbox(s.Name, cursor, 4*window)
				if err != nil {
					s.log().Error("accounting outbox unreadable", "outbox", s.Name, "err", err)
					break
				}
				if len(es) == 0 {
					break
				}
				cursor = es[len(es)-1].Seq
				for _, e := range es {
					order = append(order, e.Seq)
					if e.Kind == billing.OutboxStart {
						starts[e.Rec.ID] = true
					}
				}
				queue = append(queue, es...)
			}
			e := queue[0]
			queue = queue[1:]
			if e.Kind == billing.OutboxResume {
				// Started on the other node of the pair (it sent the
				// Start): only its interim updates are ours.
				acked[e.Seq] = true
				if s.Interim > 0 {
					active[e.Rec.ID] = &session{rec: e.Rec, last: time.Now()}
				}
				advance()
				continue
			}
			if e.Kind == billing.OutboxStop && starts[e.Rec.ID] {
				held[e.Rec.ID] = e // after its Start
				continue
			}
			send(e)
		}
		if ctx.Err() != nil && inflight == 0 {
			return
		}
		select {
		case r := <-results:
			inflight--
			if r.err != nil {
				// Back into the queue, in order; nothing after it is
				// skipped, it all waits.
				i, _ := slices.BinarySearchFunc(queue, r.e.Seq, func(a billing.OutboxEntry, seq uint64) int {
					return cmp(a.Seq, seq)
				})
				queue = slices.Insert(queue, i, r.e)
				if ctx.Err() != nil {
					continue
				}
				if !failing {
					pause = max(firstBackoff, min(2*pause, maxBackoff))
					s.log().Warn("accounting not delivered: trying again", "outbox", s.Name, "record", r.e.Rec.ID,
						"kind", r.e.Kind, "err", r.err, "retry_in", pause.String())
					if s.OnFailing != nil && pause == firstBackoff {
						s.OnFailing(true, r.err)
					}
					failing = true
					resume = time.After(pause)
				}
				continue
			}
			if pause > 0 && !failing {
				pause = 0
				s.log().Info("accounting delivered again", "outbox", s.Name)
				if s.OnFailing != nil {
					s.OnFailing(false, nil)
				}
			}
			acked[r.e.Seq] = true
			id := r.e.Rec.ID
			if r.e.Kind == billing.OutboxStart {
				delete(starts, id)
				if s.Interim > 0 {
					active[id] = &session{rec: r.e.Rec, last: time.Now()}
				}
				if h, ok := held[id]; ok {
					delete(held, id)
					queue = slices.Insert(queue, 0, h) // its turn came
				}
			} else {
				delete(active, id)
			}
			advance()
		case <-resume:
			failing, resume = false, nil
		case <-notify:
		case now := <-tick.C:
			if !failing {
				s.interims(ctx, active, now)
			}
		case <-ctx.Done():
			if inflight == 0 {
				return
			}
			failing = true // send nothing more; wait for what is in flight
		}
	}
}

type session struct {
	rec  *cdr.Record
	last time.Time
}

// interims sends the interim updates that are due; not kept, not waited
// for in order.
func (s *Sender) interims(ctx context.Context, active map[string]*session, now time.Time) {
	for _, a := range active {
		if now.Sub(a.last) < s.Interim {
			continue
		}
		a.last = now
		rec := a.rec
		safe.Go("accounting interim", func() {
			if err := s.T.Send(ctx, Interim, rec, time.Now()); err != nil {
				s.log().Debug("interim update not delivered", "record", rec.ID, "err", err)
			}
		})
	}
}

func (s *Sender) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func cmp(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type panicErr struct{}

func (panicErr) Error() string { return "accounting send panicked" }

var errPanic error = panicErr{}
