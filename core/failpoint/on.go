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
	p := filepath.Join(dir, ".failpoint-"+name)
	if _, err := os.Stat(p); err != nil {
		return
	}
	os.Remove(p)
	fmt.Fprintf(os.Stderr, "=== failpoint %s: SIGKILL\n", name)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute) // the signal ends the process before this does
}
