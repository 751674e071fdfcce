package registrar

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestDestination(t *testing.T) {
	if d := destination("sip:1002@192.0.2.7:5070", "udp", "198.51.100.1:4000", false); d != "192.0.2.7:5070" {
		t.Fatalf("no NAT: %s", d)
	}
	if d := destination("sip:1002@10.0.0.7:5070", "udp", "198.51.100.1:4000", true); d != "198.51.100.1:4000" {
		t.Fatalf("NAT: %s", d)
	}
	if d := destination("sip:1002@192.0.2.7", "udp", "198.51.100.1:4000", false); d != "192.0.2.7:5060" {
		t.Fatalf("default port: %s", d)
	}
	if d := destination("sip:1002@192.0.2.7:5070", "tcp", "198.51.100.1:4000", false); d != "198.51.100.1:4000" {
		t.Fatalf("tcp uses the connection: %s", d)
	}
}

func TestBehindNAT(t *testing.T) {
	raw := "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1;rport\r\n" +
		"From: <sip:1002@example.com>;tag=a\r\nTo: <sip:1002@example.com>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.SetSource("198.51.100.1:4000")
	if !behindNAT(req) {
		t.Fatal("NAT not detected")
	}
	req.SetSource("10.0.0.7:5060")
	if behindNAT(req) {
		t.Fatal("NAT detected on a direct path")
	}
}
