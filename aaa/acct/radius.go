package acct

import (
	"context"
	"fmt"
	"time"

	"layeh.com/radius"

	ourradius "github.com/softswitch/softswitch/aaa/radius"
	"github.com/softswitch/softswitch/billing/cdr"
)

// RADIUS sends accounting as RFC 2866 Accounting-Requests.
type RADIUS struct {
	Client *ourradius.Client
	NAS    ourradius.NAS
}

// Send implements Transport.
func (t *RADIUS) Send(ctx context.Context, kind Kind, r *cdr.Record, now time.Time) error {
	k := map[Kind]ourradius.AcctKind{Start: ourradius.AcctStart, Interim: ourradius.AcctInterim, Stop: ourradius.AcctStop}[kind]
	resp, err := t.Client.Exchange(ctx, ourradius.AccountingRequest(k, r, now, t.NAS))
	if err != nil {
		return err
	}
	if resp.Code != radius.CodeAccountingResponse {
		return fmt.Errorf("answered %v", resp.Code)
	}
	return nil
}
