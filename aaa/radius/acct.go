package radius

import (
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"github.com/softswitch/softswitch/billing/cdr"
)

// VendorID is the enterprise number of the switch's vendor-specific
// attributes (docs/dictionary.softswitch): 32473, the number RFC 5612
// sets aside for documentation, until the project has one of its own.
const VendorID = 32473

// The switch's vendor-specific attributes.
const (
	VSAQ850Cause   byte = 1 // integer: the release's Q.850 cause
	VSASIPStatus   byte = 2 // integer: the release's SIP status
	VSAReleaseSide byte = 3 // string: caller, callee or switch
	VSAGateway     byte = 4 // string: the gateway that took the call
	VSACalledSent  byte = 5 // string: the called number as sent on
	VSACallingSent byte = 6 // string: the calling number as sent on
	VSACallID      byte = 7 // string: the caller's SIP Call-ID
)

// AcctKind is an Acct-Status-Type.
type AcctKind = rfc2866.AcctStatusType

// Accounting kinds.
const (
	AcctStart   = rfc2866.AcctStatusType_Value_Start
	AcctInterim = rfc2866.AcctStatusType_Value_InterimUpdate
	AcctStop    = rfc2866.AcctStatusType_Value_Stop
)

// NAS is how the switch names itself in accounting.
type NAS struct {
	Identifier string     // NAS-Identifier: the node name
	IP         netip.Addr // NAS-IP-Address (IPv4 only; unset: left out)
}

// AccountingRequest is the Accounting-Request of kind for record r, sent
// now: Acct-Session-Id is the CDR's record id, so accounting and CDR
// files join; Event-Timestamp is the answer (Start, Interim) or release
// (Stop); Acct-Delay-Time says how long after it the request left (after
// an outage: how long it waited).
func AccountingRequest(kind AcctKind, r *cdr.Record, now time.Time, nas NAS) *radius.Packet {
	p := radius.New(radius.CodeAccountingRequest, nil)
	rfc2866.AcctStatusType_Set(p, kind)
	rfc2866.AcctSessionID_SetString(p, r.ID)
	user := r.Account
	if user == "" {
		user = r.Source
	}
	rfc2865.UserName_SetString(p, user)
	rfc2865.CallingStationID_SetString(p, r.CallingIn)
	rfc2865.CalledStationID_SetString(p, r.CalledIn)
	if nas.Identifier != "" {
		rfc2865.NASIdentifier_SetString(p, nas.Identifier)
	}
	if nas.IP.Is4() {
		rfc2865.NASIPAddress_Set(p, nas.IP.AsSlice())
	}
	event := r.Answer
	if kind == AcctStop {
		event = r.Release
	}
	if !event.IsZero() {
		rfc2869.EventTimestamp_Set(p, event)
		rfc2866.AcctDelayTime_Set(p, rfc2866.AcctDelayTime(max(0, now.Sub(event)/time.Second)))
	}
	switch kind {
	case AcctInterim:
		rfc2866.AcctSessionTime_Set(p, rfc2866.AcctSessionTime(max(0, now.Sub(r.Answer)/time.Second)))
	case AcctStop:
		// Whole seconds, rounded up: a call of 0.2 s is 1 s of service.
		rfc2866.AcctSessionTime_Set(p, rfc2866.AcctSessionTime((r.BillableMS+999)/1000))
		rfc2866.AcctTerminateCause_Set(p, terminateCause(r.EndReason))
		vsaInt(p, VSAQ850Cause, uint32(r.Q850))
		vsaInt(p, VSASIPStatus, uint32(r.Status))
		vsaString(p, VSAReleaseSide, r.Side)
	}
	if r.AAAClass != "" {
		rfc2865.Class_Add(p, []byte(r.AAAClass)) // as the authorisation gave it (RFC 2865 §5.25)
	}
	vsaString(p, VSAGateway, r.Gateway)
	vsaString(p, VSACalledSent, r.CalledOut)
	vsaString(p, VSACallingSent, r.CallingOut)
	vsaString(p, VSACallID, r.CallID)
	return p
}

// terminateCause maps a record's end reason to Acct-Terminate-Cause.
func terminateCause(end string) rfc2866.AcctTerminateCause {
	switch end {
	case cdr.EndNormal:
		return rfc2866.AcctTerminateCause_Value_UserRequest
	case cdr.EndSessionTime, cdr.EndFailed:
		return rfc2866.AcctTerminateCause_Value_LostService
	case cdr.EndShutdown:
		return rfc2866.AcctTerminateCause_Value_AdminReboot
	case cdr.EndTimeLimit:
		return rfc2866.AcctTerminateCause_Value_SessionTimeout
	case cdr.EndCreditFailed:
		return rfc2866.AcctTerminateCause_Value_ServiceUnavailable
	case cdr.EndRestart:
		return rfc2866.AcctTerminateCause_Value_NASReboot
	default:
		return rfc2866.AcctTerminateCause_Value_NASRequest
	}
}

func vsa(p *radius.Packet, t byte, v []byte) {
	if len(v) == 0 || len(v) > 247 {
		return
	}
	a, err := radius.NewVendorSpecific(VendorID, append([]byte{t, byte(2 + len(v))}, v...))
	if err == nil {
		p.Add(rfc2865.VendorSpecific_Type, a)
	}
}

func vsaInt(p *radius.Packet, t byte, n uint32) {
	vsa(p, t, []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func vsaString(p *radius.Packet, t byte, s string) { vsa(p, t, []byte(s)) }
