package radius

import (
	"fmt"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// Digest is a SIP digest response for the RADIUS server to check, so the
// switch never needs the password. FreeRADIUS's digest module (3.x, the
// Debian package) reads draft-sterman-aaa-sip's attributes, not RFC
// 5090's (its dictionary does not load rfc5090; rlm_digest's README says
// so): Digest-Response (206), and Digest-Attributes (207) each holding
// one sub-attribute: type (1-10), length (with its own two bytes), value.
type Digest struct {
	Username   string // the digest's username (sub-attribute 10; also the RADIUS User-Name)
	Realm      string // 1
	Nonce      string // 2
	Method     string // 3
	URI        string // 4
	QOP        string // 5: auth or auth-int ("" for RFC 2069)
	Algorithm  string // 6: MD5 or MD5-sess ("" = MD5)
	BodyDigest string // 7: for auth-int
	CNonce     string // 8
	NonceCount string // 9: as the request sent it (8 hex digits)
	Response   string // 32 hex digits
}

const (
	typeDigestResponse   radius.Type = 206
	typeDigestAttributes radius.Type = 207
)

// AddTo adds d's attributes to an Access-Request.
func (d Digest) AddTo(p *radius.Packet) error {
	if len(d.Response) != 32 {
		return fmt.Errorf("digest response of %d characters, want 32", len(d.Response))
	}
	if err := rfc2865.UserName_SetString(p, d.Username); err != nil {
		return err
	}
	p.Add(typeDigestResponse, radius.Attribute(d.Response))
	for _, sub := range []struct {
		t byte
		v string
	}{{1, d.Realm}, {2, d.Nonce}, {3, d.Method}, {4, d.URI}, {5, d.QOP}, {6, d.Algorithm},
		{7, d.BodyDigest}, {8, d.CNonce}, {9, d.NonceCount}, {10, d.Username}} {
		if sub.v == "" {
			continue // the module refuses an empty sub-attribute
		}
		if len(sub.v) > 251 {
			return fmt.Errorf("digest sub-attribute %d: %d bytes, at most 251", sub.t, len(sub.v))
		}
		p.Add(typeDigestAttributes, append([]byte{sub.t, byte(2 + len(sub.v))}, sub.v...))
	}
	return nil
}
