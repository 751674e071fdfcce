package cli

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Candidate is configure mode's working copy of the running
// configuration: commands change it, commit checks it whole and makes
// it the running one, abort drops it.
type Candidate interface {
	Commit() error
	Changed() bool
}

// CLI is the command set and what it needs from the switch.
type CLI struct {
	Exec, Config Tree
	Hostname     string
	// NewCandidate starts configure mode (nil: configure is refused).
	NewCandidate func(s *Session) Candidate
	// Audit is told of every configuration command: who, from where,
	// what, and whether it was refused.
	Audit func(user, from, line string, err error)
	// Sessions, when set, lists the logged-in sessions.
	Sessions *Sessions
}

// Session is one logged-in user's state.
type Session struct {
	CLI       *CLI
	ID        int // in CLI.Sessions
	User      string
	From      string
	Level     Level
	Mode      Mode
	Candidate Candidate
	Exit      bool // the user asked to leave
	out       strings.Builder
}

// Printf writes to the command's output.
func (s *Session) Printf(format string, a ...any) { fmt.Fprintf(&s.out, format, a...) }

// Prompt is what the terminal shows before a command.
func (s *Session) Prompt() string {
	switch {
	case s.Mode == Configure:
		return s.CLI.Hostname + "(config)# "
	case s.Level >= Operator:
		return s.CLI.Hostname + "# "
	}
	return s.CLI.Hostname + "> "
}

func (s *Session) tree() *Tree {
	if s.Mode == Configure {
		return &s.CLI.Config
	}
	return &s.CLI.Exec
}

// Words splits a line as the shell does: blanks separate, double quotes
// group, and inside them a backslash takes the next character as it is.
// The second result tells whether the line ends in a blank (the last
// word is complete).
func Words(line string) ([]string, bool, error) {
	var words []string
	var cur strings.Builder
	in, have, esc := false, false, false
	for _, r := range line {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case in && r == '\\':
			esc = true
		case r == '"':
			in, have = !in, true
		case !in && (r == ' ' || r == '\t'):
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if in {
		return nil, false, errors.New("% a quote is not closed")
	}
	if have {
		words = append(words, cur.String())
	}
	return words, !have, nil
}

// Execute runs one line and returns its output; an error is what to tell
// the user (the output so far is dropped).
func (s *Session) Execute(line string) (string, error) {
	s.out.Reset()
	cmd, filter, err := splitFilter(line)
	if err != nil {
		return "", err
	}
	words, _, err := Words(cmd)
	if err != nil {
		return "", err
	}
	if len(words) == 0 || strings.HasPrefix(words[0], "!") {
		return "", nil // a blank line, or a comment (show running-config prints some)
	}
	configuring := s.Mode == Configure
	n, args, err := s.tree().Resolve(words, s.Level)
	if err == nil {
		err = n.Run(s, args)
	}
	if (configuring || s.Mode == Configure) && s.CLI.Audit != nil {
		s.CLI.Audit(s.User, s.From, line, err)
	}
	if err != nil {
		return "", err
	}
	return filter(s.out.String()), nil
}

// filterBar is where the last '|' outside double quotes is, or -1.
func filterBar(line string) int {
	at, in, esc := -1, false, false
	for i, r := range line {
		switch {
		case esc:
			esc = false
		case in && r == '\\':
			esc = true
		case r == '"':
			in = !in
		case r == '|' && !in:
			at = i
		}
	}
	return at
}

// splitFilter takes "| include RE", "| exclude RE", "| begin RE" off the
// end of a line.
func splitFilter(line string) (string, func(string) string, error) {
	i := filterBar(line)
	if i < 0 {
		return line, func(s string) string { return s }, nil
	}
	f := strings.Fields(line[i+1:])
	if len(f) < 2 {
		return "", nil, errors.New("% a filter is | include, | exclude or | begin, then a pattern")
	}
	re, err := regexp.Compile(strings.Join(f[1:], " "))
	if err != nil {
		return "", nil, fmt.Errorf("%% the pattern: %v", err)
	}
	var keep func(l string, seen bool) bool
	switch {
	case strings.HasPrefix("include", f[0]):
		keep = func(l string, _ bool) bool { return re.MatchString(l) }
	case strings.HasPrefix("exclude", f[0]):
		keep = func(l string, _ bool) bool { return !re.MatchString(l) }
	case strings.HasPrefix("begin", f[0]):
		keep = func(l string, seen bool) bool { return seen || re.MatchString(l) }
	default:
		return "", nil, fmt.Errorf("%% %q: a filter is include, exclude or begin", f[0])
	}
	return line[:i], func(out string) string {
		var b strings.Builder
		seen := false
		for _, l := range strings.SplitAfter(out, "\n") {
			if l == "" {
				continue
			}
			if keep(strings.TrimRight(l, "\n"), seen) {
				seen = true
				b.WriteString(l)
			}
		}
		return b.String()
	}, nil
}

// Builtins adds the commands every CLI has: exit, configure, commit,
// abort, end.
func (c *CLI) Builtins() {
	c.Exec.Add("exit", []string{"leave the command line"}, View, nil, func(s *Session, _ []string) error {
		s.Exit = true
		return nil
	})
	c.Exec.Add("configure", []string{"change the running configuration (commit to apply)"}, Admin, nil,
		func(s *Session, _ []string) error {
			if c.NewCandidate == nil {
				return errors.New("% nothing can be configured here")
			}
			s.Candidate, s.Mode = c.NewCandidate(s), Configure
			return nil
		})
	c.Config.Add("commit", []string{"check the changes whole and make them the running configuration"}, Admin, nil,
		func(s *Session, _ []string) error {
			if err := s.Candidate.Commit(); err != nil {
				return fmt.Errorf("%% not committed, nothing changed: %v", err)
			}
			s.Printf("committed\n")
			return nil
		})
	c.Config.Add("abort", []string{"drop the changes and leave configure mode"}, Admin, nil, func(s *Session, _ []string) error {
		s.Candidate, s.Mode = nil, Exec
		return nil
	})
	c.Config.Add("end", []string{"leave configure mode (refused while changes are not committed)"}, Admin, nil,
		func(s *Session, _ []string) error {
			if s.Candidate != nil && s.Candidate.Changed() {
				return errors.New("% uncommitted changes: commit or abort")
			}
			s.Candidate, s.Mode = nil, Exec
			return nil
		})
}
