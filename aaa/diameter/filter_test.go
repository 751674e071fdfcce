package diameter

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/fiorix/go-diameter/v4/diam/dict"
)

// readFrame reads one Diameter message's bytes.
func readFrame(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 20)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("reading: %v", err)
	}
	n := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	msg := append(hdr, make([]byte, n-20)...)
	if _, err := io.ReadFull(c, msg[20:]); err != nil {
		t.Fatal(err)
	}
	return msg
}

func decode(t *testing.T, b []byte, asCode uint32) *diam.Message {
	t.Helper()
	c := bytes.Clone(b)
	c[5], c[6], c[7] = byte(asCode>>16), byte(asCode>>8), byte(asCode)
	m, err := diam.ReadMessage(bytes.NewReader(c), dict.Default)
	if err != nil {
		t.Fatalf("decoding: %v", err)
	}
	return m
}

// A request of a command the dictionary does not know gets 3001 with the
// E bit, and the connection stays: go-diameter alone would drop it.
func TestUnknownCommandAnswered3001(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := NewPeer(Config{Addr: ln.Addr().String(), OriginHost: "ss1.test", OriginRealm: "test", Watchdog: time.Hour, AuthApps: []uint32{4},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)

	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cer := decode(t, readFrame(t, c), diam.CapabilitiesExchange)
	cea := cer.Answer(diam.Success)
	cea.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity("raw.test"))
	cea.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity("test"))
	cea.NewAVP(avp.HostIPAddress, avp.Mbit, 0, datatype.Address(net.ParseIP("127.0.0.1")))
	cea.NewAVP(avp.VendorID, avp.Mbit, 0, datatype.Unsigned32(0))
	cea.NewAVP(avp.ProductName, 0, 0, datatype.UTF8String("raw"))
	cea.NewAVP(avp.AuthApplicationID, avp.Mbit, 0, datatype.Unsigned32(4))
	if _, err := cea.WriteTo(c); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !p.Open(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the peer did not open")
		}
	}

	// A request of command 9999 (no dictionary has it).
	req := diam.NewRequest(diam.DeviceWatchdog, 0, dict.Default)
	req.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity("raw.test"))
	b, _ := req.Serialize()
	b[5], b[6], b[7] = 0, 0x27, 0x0f // 9999
	hbh := req.Header.HopByHopID
	c.Write(b)
	ans := readFrame(t, c)
	if code := int(ans[5])<<16 | int(ans[6])<<8 | int(ans[7]); code != 9999 || ans[4]&diam.RequestFlag != 0 || ans[4]&diam.ErrorFlag == 0 {
		t.Fatalf("answer code %d flags %08b", code, ans[4])
	}
	m := decode(t, ans, diam.CapabilitiesExchange)
	rc, err := m.FindAVP(avp.ResultCode, 0)
	if err != nil || rc.Data.(datatype.Unsigned32) != diam.CommandUnsupported || m.Header.HopByHopID != hbh {
		t.Fatalf("answer %v (%v)", m, err)
	}

	// Still connected: a DWR is answered.
	dwr := diam.NewRequest(diam.DeviceWatchdog, 0, dict.Default)
	dwr.NewAVP(avp.OriginHost, avp.Mbit, 0, datatype.DiameterIdentity("raw.test"))
	dwr.NewAVP(avp.OriginRealm, avp.Mbit, 0, datatype.DiameterIdentity("test"))
	dwr.WriteTo(c)
	dwa := decode(t, readFrame(t, c), diam.DeviceWatchdog)
	if dwa.Header.CommandCode != diam.DeviceWatchdog || dwa.Header.CommandFlags&diam.RequestFlag != 0 || !p.Open() {
		t.Fatalf("after the unknown command: %v, open %v", dwa, p.Open())
	}
}
