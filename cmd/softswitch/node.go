package main

import (
	"log/slog"
	"time"

	"github.com/softswitch/softswitch/billing"
	"github.com/softswitch/softswitch/core/admission"
	"github.com/softswitch/softswitch/core/authlimit"
	"github.com/softswitch/softswitch/core/call"
	"github.com/softswitch/softswitch/core/events"
	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/core/routing"
	"github.com/softswitch/softswitch/core/running"
	"github.com/softswitch/softswitch/core/sipcount"
	"github.com/softswitch/softswitch/core/store"
	"github.com/softswitch/softswitch/interwork/gateway"
	"github.com/softswitch/softswitch/interwork/trunkreg"
	"github.com/softswitch/softswitch/oam/alarm"
	"github.com/softswitch/softswitch/oam/stats"
)

// node is the running switch as one thing: the parts and the state that
// the management interfaces work through. The command line, the SNMP agent
// and the Prometheus endpoint read the same statistics from it (counters,
// delay, alarms, gateways, trunks); changes go through its running
// configuration (commits, SIGHUP), so that every path to a change is
// checked, stored and applied the same way.
type node struct {
	alarms    *alarm.Manager
	counters  *stats.Counters
	delay     *stats.Delay
	level     *slog.LevelVar
	gateways  func() []*gateway.Gateway
	trunks    func() []trunkreg.Status
	bill      *billing.Billing // nil: no CDRs
	sip       *sipcount.Counters
	role      func() string // nil: not in a pair
	repl      *replication  // nil: the pair does not replicate
	switching *switchover   // nil: not in a pair
	name      string
	start     time.Time
	aaa       func() provision.AAA // in force
	limiter   *authlimit.Limiter
	admit     *admission.Gate
	bus       *events.Bus
	lookup    func(aor string) []store.Binding
	calls     func(max int) ([]call.Info, int)
	running   *running.Running       // the running configuration (CLI configure mode)
	tables    func() *routing.Tables // the routing tables in use (traffic controls)
	log       *slog.Logger
}

// reload is SIGHUP: the config file's trunk registrations, and its
// provisioning when it changed since its last import (docs/config.md).
func (n *node) reload(path string, regs func()) {
	if _, ok := reload(path, n.running, n.log); ok {
		regs()
	}
}

// pushBacklog is how many closed CDR files the push target does not have
// yet; pushing is false when CDRs are not pushed now.
func (n *node) pushBacklog() (files int, pushing bool, err error) {
	if n.bill == nil || len(n.running.Current().Doc.Push.Servers) == 0 {
		return 0, false, nil
	}
	files, err = n.bill.PushBacklog()
	return files, true, err
}
