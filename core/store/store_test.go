package store

import (
	"log/slog"
	"testing"
	"time"
)

func TestReopenReadsBack(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Round(time.Second)
	db.SaveBindings("1001", []Binding{{AOR: "1001", Contact: "sip:1001@192.0.2.1", Dest: "192.0.2.1:5060", Expires: exp}})
	db.SaveBindings("1002", []Binding{{AOR: "1002", Contact: "sip:1002@192.0.2.2", Expires: exp}})
	db.SaveBindings("1002", nil)
	db.ReplaceSubscribers([]Subscriber{{Number: "1001", HA1MD5: "x", HA1SHA256: "y"}})
	db.Close()

	db, err = Open(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bs, err := db.Bindings()
	if err != nil || len(bs) != 1 || bs[0].Dest != "192.0.2.1:5060" || !bs[0].Expires.Equal(exp) {
		t.Fatalf("bindings %+v %v", bs, err)
	}
	subs, err := db.Subscribers()
	if err != nil || len(subs) != 1 || subs[0].HA1MD5 != "x" {
		t.Fatalf("subscribers %+v %v", subs, err)
	}
	// A second process on the same file is refused with a clear reason.
	if _, err := Open(dir, slog.Default()); err == nil {
		t.Fatal("second open of a locked store succeeded")
	}
}
