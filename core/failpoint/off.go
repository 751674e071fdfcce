//go:build !failpoints

package failpoint

// Enabled reports whether the points are compiled in.
const Enabled = false

// Hit does nothing in the shipped binary.
func Hit(dir, name string) {}

// Armed is never true in the shipped binary.
func Armed(dir, name string) bool { return false }

// Kill does nothing in the shipped binary.
func Kill(name string) {}
