package snmp

import "errors"

// A lenient reader of the BER a message starts with: managers encode
// integers with more octets than needed (gosnmp's msgID has four), which
// encoding/asn1's DER rules refuse. gosnmp decodes the rest.

var errBER = errors.New("malformed BER")

// tlv reads one element: its tag, its contents and what follows.
func tlv(b []byte) (tag byte, val, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errBER
	}
	tag, n := b[0], int(b[1])
	b = b[2:]
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < k {
			return 0, nil, nil, errBER // indefinite or over 16 MB: never an SNMP message
		}
		n = 0
		for _, c := range b[:k] {
			n = n<<8 | int(c)
		}
		b = b[k:]
	}
	if n > len(b) {
		return 0, nil, nil, errBER
	}
	return tag, b[:n], b[n:], nil
}

// berInt reads an INTEGER's contents, two's complement, up to 64 bits.
func berInt(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 9 || len(v) == 9 && v[0] != 0 {
		return 0, errBER
	}
	var n int64
	if v[0]&0x80 != 0 {
		n = -1
	}
	for _, c := range v {
		n = n<<8 | int64(c)
	}
	return n, nil
}

// reader walks the elements of a constructed value in order.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(want byte) []byte {
	if r.err != nil {
		return nil
	}
	tag, val, rest, err := tlv(r.b)
	if err != nil || tag != want {
		r.err = errBER
		return nil
	}
	r.b = rest
	return val
}

func (r *reader) int() int64 {
	v := r.next(0x02)
	if r.err != nil {
		return 0
	}
	n, err := berInt(v)
	if err != nil {
		r.err = err
	}
	return n
}

func (r *reader) octets() []byte { return r.next(0x04) }

// seq enters a SEQUENCE.
func (r *reader) seq() *reader {
	v := r.next(0x30)
	return &reader{b: v, err: r.err}
}
