package cli

import (
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Terminal runs a session on a terminal connection: line editing and
// history (x/term), `?` help and Tab completion at every word, output
// paged to the terminal's height.
type Terminal struct {
	t      *term.Terminal
	s      *Session
	mu     sync.Mutex
	height int
}

// NewTerminal wraps rw (already authenticated) for s.
func NewTerminal(rw io.ReadWriter, s *Session) *Terminal {
	tm := &Terminal{t: term.NewTerminal(rw, s.Prompt()), s: s, height: 24}
	tm.t.AutoCompleteCallback = tm.key
	return tm
}

// SetSize follows the terminal's window (SSH window-change, Telnet NAWS).
func (tm *Terminal) SetSize(width, height int) {
	if width <= 0 || height <= 0 {
		return
	}
	tm.mu.Lock()
	tm.height = height
	tm.mu.Unlock()
	tm.t.SetSize(width, height)
}

// key handles `?` and Tab; other keys edit the line as usual.
func (tm *Terminal) key(line string, pos int, key rune) (string, int, bool) {
	if key != '?' && key != '\t' {
		return "", 0, false
	}
	before := line[:pos]
	words, ended, err := Words(before)
	if err != nil {
		return "", 0, false // inside quotes: the character itself
	}
	partial := ""
	if !ended && len(words) > 0 {
		partial, words = words[len(words)-1], words[:len(words)-1]
	}
	tree := tm.s.tree()
	if key == '?' {
		var b strings.Builder
		b.WriteString(tm.s.Prompt() + line + "\n")
		help, err := tree.Help(words, partial, tm.s.Level)
		if err != nil {
			b.WriteString(err.Error() + "\n")
		}
		for _, h := range help {
			b.WriteString("  " + padRight(h[0], 24) + h[1] + "\n")
		}
		tm.t.Write([]byte(b.String()))
		return line, pos, true
	}
	c := tree.Complete(words, partial, tm.s.Level)
	switch {
	case len(c) == 0:
		return line, pos, true
	case len(c) == 1:
		add := c[0][len(partial):] + " "
		return before + add + line[pos:], pos + len(add), true
	}
	common := c[0]
	for _, x := range c[1:] {
		for !strings.HasPrefix(x, common) {
			common = common[:len(common)-1]
		}
	}
	if len(common) > len(partial) {
		add := common[len(partial):]
		return before + add + line[pos:], pos + len(add), true
	}
	tm.t.Write([]byte(tm.s.Prompt() + line + "\n  " + strings.Join(c, "  ") + "\n"))
	return line, pos, true
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s + " "
	}
	return s + strings.Repeat(" ", n-len(s))
}

// Run reads and runs commands until the user leaves or the connection
// ends; idle ends it after that long without a command (0: never).
func (tm *Terminal) Run(idle time.Duration, closeConn func()) {
	var timer *time.Timer
	if idle > 0 {
		timer = time.AfterFunc(idle, func() {
			tm.t.Write([]byte("\n% idle timeout\n"))
			closeConn()
		})
		defer timer.Stop()
	}
	for !tm.s.Exit {
		tm.t.SetPrompt(tm.s.Prompt())
		line, err := tm.t.ReadLine()
		if err != nil {
			return
		}
		if timer != nil {
			timer.Reset(idle)
		}
		out, err := tm.s.Execute(line)
		if err != nil {
			tm.t.Write([]byte(err.Error() + "\n"))
			continue
		}
		tm.page(out)
	}
}

// page writes out a screen at a time; Enter shows the next, q stops.
func (tm *Terminal) page(out string) {
	tm.mu.Lock()
	h := tm.height - 1
	tm.mu.Unlock()
	lines := strings.SplitAfter(out, "\n")
	for len(lines) > 0 {
		n := min(h, len(lines))
		tm.t.Write([]byte(strings.Join(lines[:n], "")))
		lines = lines[n:]
		if len(lines) == 0 {
			return
		}
		tm.t.SetPrompt("--More-- (Enter: more, q: stop) ")
		answer, err := tm.t.ReadLine()
		if err != nil || strings.TrimSpace(answer) == "q" {
			return
		}
	}
}
