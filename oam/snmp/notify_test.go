package snmp

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Notifications reach net-snmp's snmptrapd: a v2c trap, a v2c inform
// (acknowledged) and a v3 authPriv trap from our engine, each with
// sysUpTime, snmpTrapOID and the alarm's variables.
func TestNotificationsToSnmptrapd(t *testing.T) {
	ta := startAgent(t, t.TempDir())
	bin, err := exec.LookPath("snmptrapd")
	if err != nil {
		bin = "/usr/sbin/snmptrapd"
	}
	dir := t.TempDir()
	l, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	conf := fmt.Sprintf("authCommunity log,net trap-community-1\ncreateUser -e 0x%s noc SHA-256 noc-auth-pass-1 AES noc-priv-pass-1\nauthUser log noc priv\n",
		hex.EncodeToString(ta.EngineID()))
	os.WriteFile(filepath.Join(dir, "snmptrapd.conf"), []byte(conf), 0o600)
	out := filepath.Join(dir, "traps.log")
	f, _ := os.Create(out)
	cmd := exec.Command(bin, "-f", "-Lo", "-C", "-c", filepath.Join(dir, "snmptrapd.conf"), "-On", "-m", "", "--persistentDir="+dir,
		fmt.Sprintf("udp:127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(500 * time.Millisecond)

	addr := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", port))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := func(want int) string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			b, _ := os.ReadFile(out)
			if n := strings.Count(string(b), "STRING: \"gw-x\""); n >= want {
				if n > want {
					t.Fatalf("%d notifications, want %d:\n%s", n, want, b)
				}
				return string(b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("snmptrapd did not get %d notifications:\n%s", want, b)
			}
		}
	}
	send := func(targets ...Target) *Notifier {
		n := &Notifier{Start: time.Now(), Agent: ta.Agent, Targets: targets}
		n.Run(ctx)
		n.Notify(Enterprise.Append(1, 0, 1), []Var{{OID: Enterprise.Append(1, 1, 7, 1, 4, 3), Type: gosnmp.OctetString, Value: []byte("gw-x")}})
		return n
	}
	n := send(Target{Addr: addr, Community: "trap-community-1"}, Target{Addr: addr, Community: "trap-community-1", Inform: true})
	if log := got(2); !strings.Contains(log, "OID: .1.3.6.1.4.1.32473.1.0.1") {
		t.Fatalf("no snmpTrapOID:\n%s", log)
	}
	if n.Failed.Load() != 0 {
		t.Fatalf("%d v2c notifications failed (the inform unacknowledged?)", n.Failed.Load())
	}
	// A v3 trap signed and encrypted with keys snmptrapd does not share
	// is dropped there; the right user's arrives.
	wrong := ta.Users[0]
	wrong.AuthPass = "not-the-auth-pass"
	impostor := &Agent{MIB: &MIB{}, EngineFile: filepath.Join(t.TempDir(), "e"), Users: []User{wrong}}
	if err := impostor.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	impostor.engine.ID = ta.EngineID() // the same engine, other keys
	impostor.users["noc"].params.AuthoritativeEngineID = string(ta.EngineID())
	impostor.users["noc"].params.SecretKey, impostor.users["noc"].params.PrivacyKey = nil, nil
	impostor.users["noc"].params.InitSecurityKeys()
	impostor.Close()
	n2 := &Notifier{Start: time.Now(), Agent: impostor, Targets: []Target{{Addr: addr, User: &wrong}}}
	n2.Run(ctx)
	n2.Notify(Enterprise.Append(1, 0, 1), []Var{{OID: Enterprise.Append(1, 1, 7, 1, 4, 3), Type: gosnmp.OctetString, Value: []byte("gw-x")}})
	time.Sleep(time.Second)
	got(2)
	send(Target{Addr: addr, User: &ta.Users[0]})
	got(3)
}
