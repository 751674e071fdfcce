// Package testenv holds what the appliance's tests share about the
// machine they run on.
package testenv

import (
	"os"
	"testing"
)

// StrictVar is the environment variable `make test` (and so CI) sets: a
// test that cannot run here then fails instead of skipping, so that a
// green run means every test ran.
const StrictVar = "SOFTSWITCH_TEST_STRICT"

// Strict reports whether skipping is forbidden.
func Strict() bool { return os.Getenv(StrictVar) != "" }

// RequireRoot skips t when not running as root, or fails it under
// `make test`, where every test must run.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if Strict() {
		t.Fatalf("needs root (%s); %s is set, so this fails instead of skipping", why, StrictVar)
	}
	t.Skipf("needs root (%s)", why)
}
