package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// fakeTx records responses; enough to drive one handler in a unit test.
type fakeTx struct {
	sip.ServerTransaction
	res []*sip.Response
}

func (f *fakeTx) Respond(r *sip.Response) error { f.res = append(f.res, r); return nil }

// Every torture message that parses goes through the validation guard:
// nothing panics, and an invalid message never reaches a handler.
func TestCheckedGuard(t *testing.T) {
	files, _ := filepath.Glob("../sipcheck/testdata/*/*.dat")
	if len(files) < 50 {
		t.Fatalf("torture corpus missing (%d files)", len(files))
	}
	s := &Server{Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	reached := 0
	h := s.checked(func(req *sip.Request, tx sip.ServerTransaction) {
		reached++
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}, true)
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		m, err := sip.ParseMessage(raw)
		if err != nil {
			continue
		}
		req, ok := m.(*sip.Request)
		if !ok {
			continue
		}
		before := reached
		tx := &fakeTx{}
		h(req, tx)
		name := strings.TrimSuffix(filepath.Base(f), ".dat")
		if len(tx.res) != 1 {
			t.Errorf("%s: %d responses", name, len(tx.res))
			continue
		}
		code := tx.res[0].StatusCode
		if reached == before && code < 300 {
			t.Errorf("%s: refused with %d", name, code)
		}
		if name == "mismatch01" || name == "unkscm" || name == "bext01" || name == "zeromf" {
			if reached != before {
				t.Errorf("%s: reached the handler", name)
			}
		}
	}
}

// A handler that panics costs one 500, not the process.
func TestCheckedRecovers(t *testing.T) {
	s := &Server{Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))}
	h := s.checked(func(*sip.Request, sip.ServerTransaction) { panic("boom") }, false)
	raw := "OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\n" +
		"To: <sip:x@example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	tx := &fakeTx{}
	h(m.(*sip.Request), tx)
	if len(tx.res) != 1 || tx.res[0].StatusCode != 500 {
		t.Fatalf("responses %v", tx.res)
	}
}
