package diameter

import (
	"fmt"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/fiorix/go-diameter/v4/diam/dict"

	"github.com/softswitch/softswitch/billing/cdr"
)

// Accounting-Record-Type (RFC 6733 §9.8.1).
const (
	RecordStart   = 2
	RecordInterim = 3
	RecordStop    = 4
)

// Identity is how the switch names itself in requests.
type Identity struct {
	OriginHost, OriginRealm, DestinationRealm string
}

// AccountingRequest is the ACR (base accounting, application 3) of kind
// for record r, sent now. Session-Id is "OriginHost;record id": the same
// for every record of a call and after a restart, so that the server
// sees a repeated record as the same one (with Accounting-Record-Number:
// 0 Start, 1 Stop, 2 and up interim updates, one per interval).
func AccountingRequest(kind int, r *cdr.Record, now time.Time, interval time.Duration, id Identity) *diam.Message {
	m := diam.NewRequest(diam.Accounting, 3, dict.Default)
	m.NewAVP(avp.SessionID, avp.Mbit, 0, datatype.UTF8String(fmt.Sprintf("%s;%s", id.OriginHost, r.ID)))
	m.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity(id.OriginHost))
	m.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity(id.OriginRealm))
	m.NewAVP(avp.DestinationRealm, avp.Mbit, 0, datatype.DiameterIdentity(id.DestinationRealm))
	m.NewAVP(avp.AccountingRecordType, avp.Mbit, 0, datatype.Enumerated(kind))
	// Numbers as RFC 6733 §9.8.3 suggests: START 0, the k-th interim k,
	// STOP one more than the last interim. Interims go out at least an
	// interval apart, so counting intervals since the answer numbers
	// them uniquely and in order, however many were lost.
	number := 0
	event := r.Answer
	switch kind {
	case RecordStop:
		number, event = 1, r.Release
		if interval > 0 {
			number = 1 + int(r.Release.Sub(r.Answer)/interval)
		}
	case RecordInterim:
		number = 1
		if interval > 0 {
			number = max(1, int(now.Sub(r.Answer)/interval))
		}
	}
	m.NewAVP(avp.AccountingRecordNumber, avp.Mbit, 0, datatype.Unsigned32(number))
	m.NewAVP(avp.AcctApplicationID, avp.Mbit, 0, datatype.Unsigned32(3))
	m.NewAVP(avp.AccountingSessionID, avp.Mbit, 0, datatype.OctetString(r.ID))
	user := r.Account
	if user == "" {
		user = r.Source
	}
	m.NewAVP(avp.UserName, avp.Mbit, 0, datatype.UTF8String(user))
	if !event.IsZero() {
		m.NewAVP(avp.EventTimestamp, avp.Mbit, 0, datatype.Time(event))
	}
	if interval > 0 {
		m.NewAVP(avp.AcctInterimInterval, avp.Mbit, 0, datatype.Unsigned32(interval/time.Second))
	}
	return m
}

// ResultCode is an answer's Result-Code (0: none).
func ResultCode(a *diam.Message) uint32 {
	rc, err := a.FindAVP(avp.ResultCode, 0)
	if err != nil {
		return 0
	}
	v, _ := rc.Data.(datatype.Unsigned32)
	return uint32(v)
}
