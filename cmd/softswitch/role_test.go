package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
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

// The standby keeps the active node's last call ends (both legs), for
// endsKept and at most endsMax of them.
func TestEndsKept(t *testing.T) {
	r := &replication{}
	r.removed(recordCDR, "not-a-call")
	r.removed(recordCall, "a")
	r.removed(recordCallee, "a-callee")
	r.removed(recordCall, "a") // again: one entry
	kept := func() []string { return r.endOrder[r.endHead:] }
	if len(r.ends) != 2 || len(kept()) != 2 {
		t.Fatalf("ends %v order %v", r.ends, kept())
	}
	r.ends["a"] -= int64(endsKept + time.Second) // long ago
	r.removed(recordCall, "b")
	if _, ok := r.ends["a"]; ok || len(r.ends) != 2 || len(kept()) != 2 || kept()[0] != "a-callee" {
		t.Fatalf("an old end kept: %v %v", r.ends, kept())
	}
	for i := range endsMax + 10 {
		r.removed(recordCall, strconv.Itoa(i))
	}
	if len(r.ends) != endsMax || len(kept()) != endsMax || kept()[0] != "10" || len(r.endOrder) > 2*endsMax {
		t.Fatalf("%d ends kept, %d in order (%d held), first %q", len(r.ends), len(kept()), len(r.endOrder), kept()[0])
	}
}
