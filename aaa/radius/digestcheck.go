package radius

import (
	"context"
	"fmt"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/softswitch/softswitch/core/digest"
)

// DigestChecker checks SIP digest responses with RADIUS servers (core/auth's
// Remote): an Access-Request with the response and what it was computed
// over; Access-Accept means the password is right, Access-Reject that it
// is not or the user is unknown (the server does not say which, and the
// caller gets the same answer either way).
type DigestChecker struct {
	Client *Client
	NAS    NAS
}

// CheckDigest implements core/auth's Remote.
func (d *DigestChecker) CheckDigest(ctx context.Context, c *digest.Credentials, alg, method string) (bool, error) {
	p := radius.New(radius.CodeAccessRequest, nil)
	err := Digest{Username: c.Username, Realm: c.Realm, Nonce: c.Nonce, Method: method, URI: c.URI, QOP: c.QOP,
		Algorithm: alg, CNonce: c.CNonce, NonceCount: c.NC, Response: c.Response}.AddTo(p)
	if err != nil {
		return false, nil // not a response any password makes: wrong, and no server asked
	}
	if d.NAS.Identifier != "" {
		rfc2865.NASIdentifier_SetString(p, d.NAS.Identifier)
	}
	if d.NAS.IP.Is4() {
		rfc2865.NASIPAddress_Set(p, d.NAS.IP.AsSlice())
	}
	resp, err := d.Client.Exchange(ctx, p)
	if err != nil {
		return false, err
	}
	switch resp.Code {
	case radius.CodeAccessAccept:
		return true, nil
	case radius.CodeAccessReject:
		return false, nil
	}
	return false, fmt.Errorf("RADIUS answered %v to a digest check", resp.Code)
}
