// Package systest holds the system tests of the softswitch: each test builds
// nothing itself but starts the daemon binary built once by TestMain, with
// its own loopback port, data directory and configuration file, and drives
// it with sipp (the scenarios are in scenarios/) or, for SHA-256 digest
// authentication that sipp 3.6.1 cannot compute, with a sipgo client.
//
// Every packet stays on 127.0.0.0/8. Every process a test starts is stopped
// by that test, and every sipp run is bounded by -m, -timeout and
// -timeout_error as well as by a Go-side deadline.
//
// Run with:
//
//	go test ./appliance/systest/ -count=1
//
// The tests need sipp (Debian package sip-tester) on PATH or at /usr/bin/sipp.
package systest
