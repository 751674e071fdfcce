package sipcount

import "testing"

func TestCounts(t *testing.T) {
	var c Counters
	c.In([]byte("INVITE sip:1@x SIP/2.0\r\nVia: a\r\nCSeq: 1 INVITE\r\n\r\n"))
	c.Out([]byte("SIP/2.0 200 OK\r\nVia: a\r\ncseq :  7  INVITE\r\nContent-Length: 0\r\n\r\n"))
	c.Out([]byte("SIP/2.0 200 OK\r\nVia: a\r\nCSeq: 2 REGISTER\r\n\r\n"))
	c.In([]byte("FOO sip:x SIP/2.0\r\n\r\n"))
	c.In([]byte("SIP/2.0 486 Busy\r\nCSeq: 1 INVITE\r\n\r\n"))
	c.In([]byte("garbage"))
	c.In([]byte("SIP/2.0 999 no\r\n\r\n"))
	if in, out := c.Method(0); in != 1 || out != 0 {
		t.Fatalf("INVITE %d %d", in, out)
	}
	if _, out := c.Status(0, 200); out != 1 {
		t.Fatal("200 to INVITE")
	}
	if _, out := c.Status(5, 200); out != 1 {
		t.Fatal("200 to REGISTER")
	}
	if in, _ := c.Status(0, 486); in != 1 {
		t.Fatal("486 to INVITE")
	}
	if s := c.Summary(); s != (Summary{InRequests: 3, OutRequests: 0, InResponses: 1, OutResponses: 2}) {
		t.Fatalf("summary %+v", s)
	}
}
