// Package trunkreg registers the softswitch to upstream carriers'
// registrars (R10): REGISTER with digest authentication, a refresh well
// before the binding expires, retries with back-off when the carrier
// refuses or does not answer, and the state of each registration
// published on the event bus and readable by the CLI/SNMP.
package trunkreg

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/softswitch/softswitch/core/safe"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/interwork/gateway"
)

// States of a registration.
const (
	StateIdle       = "idle"
	StateRegistered = "registered"
	StateFailed     = "failed"
)

// Status of one registration.
type Status struct {
	Name    string
	State   string
	Expires time.Time // while registered
	Last    string    // the last answer or error, for operators
}

// Registrar keeps every registration of one set alive.
type Registrar struct {
	Client      *sipgo.Client
	ContactHost string
	ContactPort int
	Bus         *events.Bus
	Log         *slog.Logger
	RetryMin    time.Duration // first retry after a failure; 5s by default
	RetryMax    time.Duration // back-off cap; 5m by default
	// Changed, when set, hears every registration's dialog after each
	// REGISTER (the pair's standby goes on from them: Resume). On the
	// registration's goroutine: it must not block.
	Changed func(map[string]Dialog)

	mu      sync.Mutex
	status  map[string]Status
	dialogs map[string]Dialog // by registration name: kept across Starts
	cancel  context.CancelFunc
	done    chan struct{}
}

// Start (re)starts the registrations of specs, stopping the previous ones.
func (r *Registrar) Start(ctx context.Context, specs []gateway.RegistrationSpec) {
	r.Stop()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r.mu.Lock()
	r.cancel, r.done = cancel, done
	r.status = map[string]Status{}
	for _, s := range specs {
		r.status[s.Name] = Status{Name: s.Name, State: StateIdle}
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range specs {
		wg.Add(1)
		safe.Go("trunk registration", func() {
			defer wg.Done()
			r.run(ctx, s)
		})
	}
	go func() { wg.Wait(); close(done) }()
}

// Stop ends every registration loop (bindings are left to expire).
func (r *Registrar) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Status of every registration.
func (r *Registrar) Status() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.status))
	for _, s := range r.status {
		out = append(out, s)
	}
	return out
}

func (r *Registrar) set(s Status) {
	r.mu.Lock()
	old := r.status[s.Name]
	r.status[s.Name] = s
	r.mu.Unlock()
	if old.State != s.State {
		if r.Log != nil {
			r.Log.Info("trunk registration", "name", s.Name, "state", s.State, "detail", s.Last)
		}
		if r.Bus != nil {
			r.Bus.Publish(&events.Event{Kind: events.TrunkRegistration, Gateway: s.Name, State: s.State})
		}
	}
}

func (r *Registrar) run(ctx context.Context, s gateway.RegistrationSpec) {
	retry := r.RetryMin
	if retry == 0 {
		retry = 5 * time.Second
	}
	maxRetry := r.RetryMax
	if maxRetry == 0 {
		maxRetry = 5 * time.Minute
	}
	backoff := retry
	// One Call-ID for every REGISTER of this registration, CSeq rising
	// (RFC 3261 §10.2.4), across restarts of the loop and takeovers.
	d := r.dialogFor(s)
	for {
		granted, detail, err := r.register(ctx, s, d)
		r.sent(s, d)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.set(Status{Name: s.Name, State: StateFailed, Last: err.Error()})
			wait = backoff
			backoff = min(backoff*2, maxRetry)
		} else {
			r.set(Status{Name: s.Name, State: StateRegistered, Expires: time.Now().Add(granted), Last: detail})
			backoff = retry
			// Refresh at 80 % of the interval, and never later than 10 s before it ends.
			wait = min(granted*8/10, granted-10*time.Second)
			wait = max(wait, granted/2, time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

type dialog struct {
	callID string
	cseq   uint32
}

// Dialog is what goes on from one REGISTER to the next of a
// registration: its Call-ID and last CSeq (RFC 3261 §10.2.4), and whom
// it was for.
type Dialog struct {
	Registrar string `json:"registrar"`
	User      string `json:"user"`
	CallID    string `json:"call_id"`
	CSeq      uint32 `json:"cseq"`
}

// cseqStep is how far a registration taken up again (a restart of the
// loops, the other node's dialog at a takeover) raises its CSeq: the
// other node may have sent a REGISTER or two its standby never heard of.
const cseqStep = 100

// Resume makes the next Start go on with these dialogs (the pair's other
// node's, as it last reported them): the carrier's registrar sees the
// same registration refreshed, not a second one.
func (r *Registrar) Resume(ds map[string]Dialog) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dialogs = make(map[string]Dialog, len(ds))
	for name, d := range ds {
		if d.CallID != "" {
			r.dialogs[name] = d
		}
	}
}

// Dialogs is every registration's dialog as it stands.
func (r *Registrar) Dialogs() map[string]Dialog {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Dialog, len(r.dialogs))
	for name, d := range r.dialogs {
		out[name] = d
	}
	return out
}

// dialogFor is the dialog a registration's loop starts with: the one it
// had (or the pair's other node had) for the same registrar and user, its
// CSeq raised, or a new one.
func (r *Registrar) dialogFor(s gateway.RegistrationSpec) *dialog {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.dialogs[s.Name]; ok && d.Registrar == s.Registrar && d.User == s.User {
		return &dialog{callID: d.CallID, cseq: d.CSeq + cseqStep}
	}
	return &dialog{callID: sip.GenerateTagN(24)}
}

// sent keeps a registration's dialog after a REGISTER and reports them all.
func (r *Registrar) sent(s gateway.RegistrationSpec, d *dialog) {
	r.mu.Lock()
	if r.dialogs == nil {
		r.dialogs = map[string]Dialog{}
	}
	r.dialogs[s.Name] = Dialog{Registrar: s.Registrar, User: s.User, CallID: d.callID, CSeq: d.cseq}
	r.mu.Unlock()
	if r.Changed != nil {
		r.Changed(r.Dialogs())
	}
}

// register sends one REGISTER (answering a digest challenge) and returns
// the interval the registrar granted.
func (r *Registrar) register(ctx context.Context, s gateway.RegistrationSpec, d *dialog) (time.Duration, string, error) {
	host, port := s.Registrar, "5060"
	if h, p, err := net.SplitHostPort(s.Registrar); err == nil { // validated by gateway.Compile
		host, port = h, p
	}
	domain := s.Domain
	if domain == "" {
		domain = host
	}
	expires := s.Expires
	if expires == 0 {
		expires = 3600
	}
	aor := sip.Uri{Scheme: "sip", User: s.User, Host: domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
	req.SetDestination(net.JoinHostPort(strings.Trim(host, "[]"), port))
	if s.Transport != "" {
		req.SetTransport(strings.ToUpper(s.Transport))
	}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: s.User, Host: r.ContactHost, Port: r.ContactPort}})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	d.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.cseq, MethodName: sip.REGISTER})
	req.SetBody(nil)
	defer func() { d.cseq = req.CSeq().SeqNo }() // the digest retry raised it

	rctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	res, err := r.Client.Do(rctx, req)
	if err != nil {
		return 0, "", fmt.Errorf("no answer from %s: %w", s.Registrar, err)
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		user := s.AuthUser
		if user == "" {
			user = s.User
		}
		res, err = r.Client.DoDigestAuth(rctx, req, res, sipgo.DigestAuth{Username: user, Password: s.Password})
		if err != nil {
			return 0, "", fmt.Errorf("no answer to the authenticated REGISTER: %w", err)
		}
	}
	if res.StatusCode != 200 {
		return 0, "", fmt.Errorf("%d %s", res.StatusCode, res.Reason)
	}
	granted := expires
	if h := res.GetHeader("Expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			granted = v
		}
	}
	if ct := res.Contact(); ct != nil {
		if v, ok := ct.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				granted = n
			}
		}
	}
	if granted <= 0 {
		return 0, "", fmt.Errorf("registrar granted %d s", granted)
	}
	return time.Duration(granted) * time.Second, "200 OK, " + strconv.Itoa(granted) + " s", nil
}
