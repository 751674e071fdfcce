package main

import (
	"strings"
	"testing"
)

// A switchover is refused on a standby and without a standby in step;
// nothing yields until one starts.
func TestSwitchoverRefused(t *testing.T) {
	role := "BACKUP"
	s := &switchover{role: func() string { return role }}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "not the active one") {
		t.Fatalf("on a standby: %v", err)
	}
	role = "MASTER"
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "no standby follows") {
		t.Fatalf("without replication: %v", err)
	}
	if s.Yielding() {
		t.Fatal("yielding with no switchover started")
	}
}
