// Package failpoint kills the process at named points of the durable
// paths, so the system tests can prove that a crash there loses nothing
// (as etcd's robustness tests do with gofail). The points are compiled in
// only with the build tag "failpoints" (the system tests' daemon); in the
// shipped binary Hit is an empty function.
//
// A point fires once: when the file DIR/.failpoint-NAME exists, Hit
// removes it and sends the process SIGKILL. A point that must act
// something out first (skip a step, let others finish) uses Armed, then
// Kill.
package failpoint
