package radius

import (
	"context"
	"fmt"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/softswitch/softswitch/core/call"
)

// CallAuthorizer asks RADIUS servers whether a subscriber's call may go
// on (core/call's Authorizer): an Access-Request with Service-Type
// Call-Check (RFC 2865: "the NAS asks whether to accept the call"),
// User-Name (the account, else the number), Calling- and
// Called-Station-Id. Access-Accept allows it, for Session-Timeout seconds
// from the answer when the server sets one (a calling card's credit);
// Access-Reject refuses it (403, Q.850 21).
type CallAuthorizer struct {
	Client *Client
	NAS    NAS
}

// Authorize implements core/call's Authorizer.
func (a *CallAuthorizer) Authorize(ctx context.Context, r call.AuthzRequest) (call.Grant, error) {
	p := radius.New(radius.CodeAccessRequest, nil)
	user := r.Account
	if user == "" {
		user = r.Calling
	}
	rfc2865.UserName_SetString(p, user)
	rfc2865.ServiceType_Set(p, rfc2865.ServiceType_Value_CallCheck)
	rfc2865.CallingStationID_SetString(p, r.Calling)
	rfc2865.CalledStationID_SetString(p, r.Called)
	if a.NAS.Identifier != "" {
		rfc2865.NASIdentifier_SetString(p, a.NAS.Identifier)
	}
	if a.NAS.IP.Is4() {
		rfc2865.NASIPAddress_Set(p, a.NAS.IP.AsSlice())
	}
	resp, err := a.Client.Exchange(ctx, p)
	if err != nil {
		return call.Grant{}, err
	}
	switch resp.Code {
	case radius.CodeAccessAccept:
		g := call.Grant{Allow: true, Class: string(rfc2865.Class_Get(resp))}
		if st, err := rfc2865.SessionTimeout_Lookup(resp); err == nil && st > 0 {
			g.Duration = time.Duration(st) * time.Second
		}
		return g, nil
	case radius.CodeAccessReject:
		return call.Grant{Reason: rfc2865.ReplyMessage_GetString(resp)}, nil
	}
	return call.Grant{}, fmt.Errorf("RADIUS answered %v to a call authorisation", resp.Code)
}
