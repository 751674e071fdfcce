package snmp

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// Messages from the network are hostile: valid requests cut short or
// with bytes changed at random never panic the agent (handle is called
// bare here, without the recover that Serve puts around it).
func TestHostileMessages(t *testing.T) {
	ta := startAgent(t, t.TempDir())
	v2 := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "rw-community-1", PDUType: gosnmp.GetBulkRequest,
		RequestID: 7, MaxRepetitions: 5, Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6", Type: gosnmp.Null}}}
	set := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "rw-community-1", PDUType: gosnmp.SetRequest,
		RequestID: 8, Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.4.1.32473.1.9.0", Type: gosnmp.Integer, Value: 2}}}
	var seeds [][]byte
	for _, p := range []*gosnmp.SnmpPacket{v2, set} {
		b, err := p.MarshalMsg()
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	// A v3 request as net-snmp would send it, built by gosnmp's client side.
	u := ta.users["noc"]
	v3 := ta.v3(&gosnmp.SnmpPacket{PDUType: gosnmp.GetRequest, MsgID: 9, RequestID: 9, MsgFlags: gosnmp.AuthPriv | gosnmp.Reportable,
		Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.5.0", Type: gosnmp.Null}}}, u)
	v3.SecurityParameters.(*gosnmp.UsmSecurityParameters).UserName = "noc"
	b, err := v3.MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, b)
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	// The seeds themselves are answered.
	for i, s := range seeds {
		if ta.handle(append([]byte(nil), s...), from) == nil {
			t.Fatalf("seed %d not answered: %+v", i, &ta.Stats)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		s := append([]byte(nil), seeds[i%len(seeds)]...)
		switch i % 3 {
		case 0:
			s = s[:r.IntN(len(s))]
		default:
			for k := 0; k < 1+r.IntN(4); k++ {
				s[r.IntN(len(s))] = byte(r.IntN(256))
			}
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("panic on %x: %v", s, p)
				}
			}()
			ta.handle(s, from)
		}()
	}
}
