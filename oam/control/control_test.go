package control

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestAskAndAnswer(t *testing.T) {
	s := &Server{Path: filepath.Join(t.TempDir(), SocketName)}
	s.Handle("echo", "say it back", func(a []string) (string, error) { return strings.Join(a, " "), nil })
	s.Handle("fail", "always fails", func([]string) (string, error) { return "", errors.New("no such thing") })
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, ln)
	for line, want := range map[string]string{
		"echo a b": "a b\n",
		"fail":     "error: no such thing\n",
		"nosuch":   "error: unknown command \"nosuch\" (try help)\n",
	} {
		got, err := Ask(s.Path, line)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v", line, got, err)
		}
	}
	if got, _ := Ask(s.Path, "help"); !strings.Contains(got, "echo     say it back") {
		t.Errorf("help: %q", got)
	}
	if _, err := Ask(filepath.Join(t.TempDir(), "none.sock"), "help"); err == nil || !strings.Contains(err.Error(), "is it running") {
		t.Errorf("no socket: %v", err)
	}
}
