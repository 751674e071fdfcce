package snmp

import (
	"os/exec"
	"strings"
	"testing"
)

// The MIB passes smilint at level 3 without a word, and net-snmp loads it.
func TestMIBFile(t *testing.T) {
	for _, tool := range []string{"smilint", "snmptranslate"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (Debian packages smitools, snmp; .ci/deps.sh installs them)", tool)
		}
	}
	cmd := exec.Command("smilint", "-l", "3", "-s", "mib/SOFTSWITCH-MIB.txt")
	cmd.Env = append(cmd.Environ(), "SMIPATH=mib/base")
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("smilint -l 3: %v\n%s", err, out)
	}
	out, err = exec.Command("snmptranslate", "-M", "mib/base:mib", "-m", "SOFTSWITCH-MIB", "-On",
		"SOFTSWITCH-MIB::ssGatewayAdminState", "SOFTSWITCH-MIB::ssGatewayDown").CombinedOutput()
	if err != nil || strings.Join(strings.Fields(string(out)), " ") != ".1.3.6.1.4.1.32473.1.1.4.1.4 .1.3.6.1.4.1.32473.1.0.1" {
		t.Fatalf("snmptranslate: %v\n%s", err, out)
	}
}
