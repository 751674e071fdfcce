//go:build !failpoints

package failpoint

// Enabled reports whether the points are compiled in.
const Enabled = false

// Hit does nothing in the shipped binary.
func Hit(dir, name string) {}
