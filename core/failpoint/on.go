//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Enabled reports whether the points are compiled in.
const Enabled = true

// Hit kills the process when dir/.failpoint-name exists (removed first,
// so the next start runs on).
func Hit(dir, name string) {
	if Armed(dir, name) {
		Kill(name)
	}
}

// Armed reports whether dir/.failpoint-name exists, and removes it: the
// caller acts out the point (what it skips), then Kills.
func Armed(dir, name string) bool {
	p := filepath.Join(dir, ".failpoint-"+name)
	if _, err := os.Stat(p); err != nil {
		return false
	}
	os.Remove(p)
	return true
}

// Kill sends the process SIGKILL.
func Kill(name string) {
	fmt.Fprintf(os.Stderr, "=== failpoint %s: SIGKILL\n", name)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute) // the signal ends the process before this does
}
