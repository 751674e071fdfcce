package systest

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

var (
	// softswitchBin is the daemon built once by TestMain.
	softswitchBin string
	// sippBin is the sipp executable used by every scenario run.
	sippBin string
	// scenarioDir holds the sipp XML scenarios (appliance/systest/scenarios).
	scenarioDir string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// sipgo (the SHA-256 client) logs harmless transport warnings on close.
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))

	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "systest:", err)
		return 1
	}
	scenarioDir = filepath.Join(wd, "scenarios")

	root, err := repoRoot(wd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "systest: finding the module root:", err)
		return 1
	}

	sippBin, err = exec.LookPath("sipp")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/sipp"); statErr == nil {
			sippBin = "/usr/bin/sipp"
		} else {
			fmt.Fprintln(os.Stderr, "systest: sipp not found (install the Debian package sip-tester):", err)
			return 1
		}
	}

	binDir, err := os.MkdirTemp("", "softswitch-systest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "systest:", err)
		return 1
	}
	defer os.RemoveAll(binDir)

	softswitchBin = filepath.Join(binDir, "softswitch")
	// Built with the race detector: races are found by -race, not by
	// review, and the system tests drive every concurrent path there is.
	// With the failpoints (core/failpoint) the crash tests kill it at
	// named points of the CDR paths.
	build := exec.Command(goTool(), "build", "-race", "-tags", "failpoints", "-o", softswitchBin, "./cmd/softswitch")
	build.Dir = root
	var out bytes.Buffer
	build.Stdout = &out
	build.Stderr = &out
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "systest: go build ./cmd/softswitch (in %s) failed: %v\n%s\n", root, err, out.String())
		return 1
	}

	return m.Run()
}

// repoRoot finds the directory holding go.mod: first with `go env GOMOD`,
// then by walking up from dir.
func repoRoot(dir string) (string, error) {
	cmd := exec.Command(goTool(), "env", "GOMOD")
	cmd.Dir = dir
	if out, err := cmd.Output(); err == nil {
		gomod := strings.TrimSpace(string(out))
		if gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// goTool is the go command that runs this test when it can be found, so the
// daemon is built by the same toolchain.
func goTool() string {
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		p := filepath.Join(goroot, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}
