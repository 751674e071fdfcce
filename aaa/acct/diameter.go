package acct

import (
	"context"
	"fmt"
	"time"

	"github.com/softswitch/softswitch/aaa/diameter"
	"github.com/softswitch/softswitch/billing/cdr"
)

// Diameter sends accounting as base-accounting ACRs (RFC 6733 §9).
type Diameter struct {
	Client   *diameter.Client
	ID       diameter.Identity
	Interval time.Duration // the interim interval, told to the server and numbering interim records
}

// Send implements Transport.
func (t *Diameter) Send(ctx context.Context, kind Kind, r *cdr.Record, now time.Time) error {
	rt := map[Kind]int{Start: diameter.RecordStart, Interim: diameter.RecordInterim, Stop: diameter.RecordStop}[kind]
	a, err := t.Client.Send(ctx, diameter.AccountingRequest(rt, r, now, t.Interval, t.ID))
	if err != nil {
		return err
	}
	if rc := diameter.ResultCode(a); rc != 2001 {
		return fmt.Errorf("ACA with Result-Code %d", rc)
	}
	return nil
}
