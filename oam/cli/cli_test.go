package cli

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

type testCandidate struct{ changed, fail bool }

func (c *testCandidate) Commit() error {
	if c.fail {
		return errors.New("route r1 names no gateway g9")
	}
	c.changed = false
	return nil
}
func (c *testCandidate) Changed() bool { return c.changed }

func testCLI() *CLI {
	c := &CLI{Hostname: "ss1"}
	c.Builtins()
	gw := &Arg{Name: "name", Help: "a gateway's name", Complete: func() []string { return []string{"gw-a", "gw-b"} },
		Check: func(s string) error {
			if !strings.HasPrefix(s, "gw-") {
				return errors.New("no such gateway")
			}
			return nil
		}}
	c.Exec.Add("show gateways", []string{"show what the switch knows", "gateways and their state"}, View, nil,
		func(s *Session, _ []string) error { s.Printf("gw-a up\ngw-b down\n"); return nil })
	c.Exec.Add("show gateway <name>", []string{"", "one gateway", ""}, View, map[string]*Arg{"name": gw},
		func(s *Session, a []string) error { s.Printf("gateway %s\n", a[0]); return nil })
	c.Exec.Add("show groups", []string{"", "gateway groups"}, View, nil, func(s *Session, _ []string) error { return nil })
	c.Exec.Add("lock gateway <name>", []string{"take out of service", "a gateway", ""}, Operator, map[string]*Arg{"name": gw},
		func(s *Session, a []string) error { s.Printf("locked %s\n", a[0]); return nil })
	c.NewCandidate = func(*Session) Candidate { return &testCandidate{} }
	c.Config.Add("touch", []string{"change something"}, Admin, nil, func(s *Session, _ []string) error {
		s.Candidate.(*testCandidate).changed = true
		return nil
	})
	return c
}

func TestResolveAndErrors(t *testing.T) {
	c := testCLI()
	s := &Session{CLI: c, Level: View}
	for _, tc := range []struct{ line, out, err string }{
		{"show gateways", "gw-a up\ngw-b down\n", ""},
		{"sh gateways", "gw-a up\ngw-b down\n", ""},
		{"sh gateway gw-b", "gateway gw-b\n", ""},
		{"show gateways | include down", "gw-b down\n", ""},
		{"show gateways | exclude down", "gw-a up\n", ""},
		{"show g", "", `at word 2: "g" is ambiguous: gateway, gateways, groups`},
		{"show", "", "at word 2: incomplete command; expected gateway, gateways, groups"},
		{"show gateway x1", "", "at word 3: <name>: no such gateway"},
		{"shout", "", `at word 1: "shout" is not valid here; expected exit, show`},
		{"lock gateway gw-a", "", `at word 1: "lock" is not valid here`}, // a view user has no lock
		{`show gateway "gw-a`, "", "a quote is not closed"},
		{"show gateways | grep x", "", "a filter is include, exclude or begin"},
	} {
		out, err := s.Execute(tc.line)
		if tc.err == "" && (err != nil || out != tc.out) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %q, %v; want %q, %q", tc.line, out, err, tc.out, tc.err)
		}
	}
	op := &Session{CLI: c, Level: Operator}
	if out, err := op.Execute("lock gat gw-a"); err != nil || out != "locked gw-a\n" {
		t.Errorf("operator lock: %q %v", out, err)
	}
	if _, err := op.Execute("configure"); err == nil {
		t.Error("an operator entered configure mode")
	}
}

func TestHelpAndComplete(t *testing.T) {
	c := testCLI()
	ex := &c.Exec
	help, err := ex.Help([]string{"show"}, "gr", View)
	if err != nil || !reflect.DeepEqual(help, [][2]string{{"groups", "gateway groups"}}) {
		t.Fatalf("help %v %v", help, err)
	}
	help, _ = ex.Help([]string{"show", "gateways"}, "", View)
	if !reflect.DeepEqual(help, [][2]string{{"<cr>", "run the command"}}) {
		t.Fatalf("help at the end %v", help)
	}
	if got := ex.Complete([]string{"show"}, "gate", View); !reflect.DeepEqual(got, []string{"gateway", "gateways"}) {
		t.Fatalf("complete %v", got)
	}
	if got := ex.Complete([]string{"show", "gateway"}, "gw-", View); !reflect.DeepEqual(got, []string{"gw-a", "gw-b"}) {
		t.Fatalf("complete an argument %v", got)
	}
	if got := ex.Complete(nil, "l", View); len(got) != 0 {
		t.Fatalf("a view user completes %v", got)
	}
	if got := ex.Complete(nil, "l", Operator); !reflect.DeepEqual(got, []string{"lock"}) {
		t.Fatalf("an operator completes %v", got)
	}
}

func TestConfigureCommitAbort(t *testing.T) {
	c := testCLI()
	var audit []string
	c.Audit = func(user, from, line string, err error) { audit = append(audit, user+" "+line) }
	s := &Session{CLI: c, Level: Admin, User: "ops", From: "192.0.2.7"}
	if _, err := s.Execute("configure"); err != nil || s.Prompt() != "ss1(config)# " {
		t.Fatalf("configure: %v %q", err, s.Prompt())
	}
	s.Execute("touch")
	if _, err := s.Execute("end"); err == nil {
		t.Fatal("end with uncommitted changes")
	}
	s.Candidate.(*testCandidate).fail = true
	if _, err := s.Execute("commit"); err == nil || !strings.Contains(err.Error(), "nothing changed") {
		t.Fatalf("a refused commit: %v", err)
	}
	s.Candidate.(*testCandidate).fail = false
	if out, err := s.Execute("commit"); err != nil || out != "committed\n" {
		t.Fatalf("commit %q %v", out, err)
	}
	if _, err := s.Execute("end"); err != nil || s.Mode != Exec || s.Prompt() != "ss1# " {
		t.Fatalf("end: %v", err)
	}
	if strings.Join(audit, "|") != "ops configure|ops touch|ops end|ops commit|ops commit|ops end" {
		t.Fatalf("audit %v", audit)
	}
}

// Sessions are listed while they last; ending one calls its closer.
func TestSessions(t *testing.T) {
	var ss Sessions
	ended := 0
	a, doneA := ss.add("ops", "192.0.2.1", "ssh", func() { ended++ })
	b, doneB := ss.add("noc", "192.0.2.2", "telnet", func() {})
	if l := ss.List(); len(l) != 2 || l[0].ID != a || l[1].ID != b || l[1].Via != "telnet" {
		t.Fatalf("list %+v", l)
	}
	if !ss.End(a) || ended != 1 || ss.End(99) {
		t.Fatal("end")
	}
	doneA()
	doneB()
	if len(ss.List()) != 0 {
		t.Fatalf("left %+v", ss.List())
	}
}
