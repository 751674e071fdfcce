package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"errors"

	"layeh.com/radius"
)

// typeMessageAuthenticator is RFC 3579's Message-Authenticator (80).
const typeMessageAuthenticator radius.Type = 80

var (
	errNotAuthentic = errors.New("response authenticator does not match")
	errNoMsgAuth    = errors.New("no Message-Authenticator")
	errBadMsgAuth   = errors.New("Message-Authenticator does not match")
	errMalformed    = errors.New("malformed packet")
)

// encode makes the wire form of p for secret. An Access-Request or
// Status-Server gets a Message-Authenticator as its first attribute (RFC
// 3579 §3.2; first, as the Blast-RADIUS advice has it, CVE-2024-3596),
// so that no server can be fooled by a forged request in our name and
// every answer can be required to carry one too.
func encode(p *radius.Packet, secret []byte) ([]byte, error) {
	p.Secret = secret
	if p.Code != radius.CodeAccessRequest && p.Code != radius.CodeStatusServer {
		return p.Encode()
	}
	p.Attributes.Del(typeMessageAuthenticator)
	p.Attributes = append(radius.Attributes{{Type: typeMessageAuthenticator, Attribute: make([]byte, 16)}}, p.Attributes...)
	b, err := p.Encode()
	if err != nil {
		return nil, err
	}
	// The attribute is the first: type and length at 20, value at 22.
	mac := hmac.New(md5.New, secret)
	mac.Write(b)
	copy(b[22:38], mac.Sum(nil))
	copy(p.Attributes[0].Attribute, b[22:38])
	return b, nil
}

// verify checks a response against the request it answers: the
// Response Authenticator always, and for an answer to an Access-Request
// a Message-Authenticator, which must be there and match.
func verify(resp, req, secret []byte) error {
	if len(resp) < 20 || int(resp[2])<<8|int(resp[3]) != len(resp) {
		return errMalformed
	}
	if !radius.IsAuthenticResponse(resp, req, secret) {
		return errNotAuthentic
	}
	if radius.Code(req[0]) != radius.CodeAccessRequest && radius.Code(req[0]) != radius.CodeStatusServer {
		return nil
	}
	at := -1
	for i := 20; i < len(resp); {
		if i+2 > len(resp) || resp[i+1] < 2 || i+int(resp[i+1]) > len(resp) {
			return errMalformed
		}
		if radius.Type(resp[i]) == typeMessageAuthenticator {
			if at >= 0 || resp[i+1] != 18 {
				return errBadMsgAuth
			}
			at = i + 2
		}
		i += int(resp[i+1])
	}
	if at < 0 {
		return errNoMsgAuth
	}
	c := append([]byte(nil), resp...)
	copy(c[4:20], req[4:20])
	clear(c[at : at+16])
	mac := hmac.New(md5.New, secret)
	mac.Write(c)
	if !hmac.Equal(mac.Sum(nil), resp[at:at+16]) {
		return errBadMsgAuth
	}
	return nil
}
