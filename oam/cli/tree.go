// Package cli is the switch's command line, Cisco style: a tree of
// commands with help at every word, `?` and Tab completion, unique
// abbreviations, modes (exec and configure) and privilege levels. The
// terminals (Telnet, SSH) are in term.go and its neighbours; the commands
// themselves are registered by whoever owns what they show or change.
package cli

import (
	"fmt"
	"sort"
	"strings"
)

// Level is a user's privilege.
type Level int

// Levels, each allowed what the ones below are.
const (
	View     Level = iota + 1 // show commands
	Operator                  // and traffic control: lock, unlock, clear
	Admin                     // and configure, users
)

func (l Level) String() string {
	switch l {
	case View:
		return "view"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return "?"
}

// ParseLevel reads "view", "operator" or "admin".
func ParseLevel(s string) (Level, bool) {
	for l := View; l <= Admin; l++ {
		if l.String() == s {
			return l, true
		}
	}
	return 0, false
}

// Mode is where a command is typed.
type Mode int

// Modes.
const (
	Exec Mode = iota
	Configure
)

// Arg is a parameter word: its name as help shows it (<name>) and what
// it accepts. Complete, when set, lists candidates for Tab and `?`.
type Arg struct {
	Name     string
	Help     string
	Check    func(s string) error
	Complete func() []string
	Rest     bool // takes the rest of the line, one argument per word
}

// Node is a word of the tree: a keyword, or an argument.
type Node struct {
	Word  string // keyword; "" for an argument
	Arg   *Arg
	Help  string
	Level Level
	Run   func(s *Session, args []string) error // nil: the command goes on
	kids  []*Node
}

func (n *Node) label() string {
	if n.Arg != nil {
		return "<" + n.Arg.Name + ">"
	}
	return n.Word
}

// Tree is one mode's commands.
type Tree struct{ root Node }

// Add registers a command: its words ("show gateways", "lock gateway
// <name>") with one help line per word, and what runs it. Arguments are
// given by name in args, in the order they appear.
func (t *Tree) Add(words string, helps []string, level Level, args map[string]*Arg, run func(s *Session, args []string) error) {
	n := &t.root
	ws := strings.Fields(words)
	for i, w := range ws {
		help := ""
		if i < len(helps) {
			help = helps[i]
		}
		label := w
		if strings.HasPrefix(w, "<") && args[strings.Trim(w, "<>")] != nil {
			label = "<" + args[strings.Trim(w, "<>")].Name + ">"
		}
		var next *Node
		for _, k := range n.kids {
			if k.label() == label {
				next = k
			}
		}
		if next == nil {
			next = &Node{Help: help, Level: level}
			if strings.HasPrefix(w, "<") {
				a := args[strings.Trim(w, "<>")]
				if a == nil {
					panic("cli: no Arg for " + w)
				}
				next.Arg = a
			} else {
				next.Word = w
			}
			n.kids = append(n.kids, next)
			sort.Slice(n.kids, func(i, j int) bool { return n.kids[i].label() < n.kids[j].label() })
		}
		next.Level = min(next.Level, level) // a word is visible to the lowest level that has a command under it
		n = next
	}
	n.Run = run
	n.Level = level
}

// match finds the children of n that word may be, for a user at level.
// A keyword matches by a prefix; an exact keyword wins; an argument
// matches what its check takes.
func (n *Node) match(word string, level Level) (exact *Node, all []*Node) {
	exact, all, _ = n.matchWhy(word, level)
	return exact, all
}

// matchWhy is match, and why an argument refused the word.
func (n *Node) matchWhy(word string, level Level) (exact *Node, all []*Node, refused error) {
	for _, k := range n.kids {
		if k.Level > level {
			continue
		}
		switch {
		case k.Arg != nil:
			if k.Arg.Check == nil {
				all = append(all, k)
			} else if err := k.Arg.Check(word); err == nil {
				all = append(all, k)
			} else if refused == nil {
				refused = fmt.Errorf("<%s>: %v", k.Arg.Name, err)
			}
		case k.Word == word:
			return k, []*Node{k}, nil
		case strings.HasPrefix(k.Word, word):
			all = append(all, k)
		}
	}
	if len(all) == 1 {
		return all[0], all, nil
	}
	// Keywords before arguments: "show g" is not <name> "g".
	var kw []*Node
	for _, k := range all {
		if k.Arg == nil {
			kw = append(kw, k)
		}
	}
	if len(kw) == 1 {
		return kw[0], all, nil
	}
	return nil, all, refused
}

// Error is a command that cannot run: the word it stops at (from 1) and why.
type Error struct {
	Word int
	Msg  string
}

func (e *Error) Error() string {
	if e.Word > 0 {
		return fmt.Sprintf("%% at word %d: %s", e.Word, e.Msg)
	}
	return "% " + e.Msg
}

// expected lists what may come after n.
func (n *Node) expected(level Level) string {
	var w []string
	for _, k := range n.kids {
		if k.Level <= level {
			w = append(w, k.label())
		}
	}
	return strings.Join(w, ", ")
}

// Resolve walks words through the tree: the command's node and its
// arguments, or an Error saying where and what was expected.
func (t *Tree) Resolve(words []string, level Level) (*Node, []string, error) {
	n := &t.root
	var args []string
	for i, w := range words {
		if n.Arg != nil && n.Arg.Rest {
			args = append(args, w) // one argument per word: quoted words stay whole
			continue
		}
		next, all, refused := n.matchWhy(w, level)
		switch {
		case next == nil && len(all) == 0 && refused != nil:
			return nil, nil, &Error{Word: i + 1, Msg: refused.Error()}
		case next == nil && len(all) == 0:
			return nil, nil, &Error{Word: i + 1, Msg: fmt.Sprintf("%q is not valid here; expected %s", w, n.expected(level))}
		case next == nil:
			var labels []string
			for _, k := range all {
				labels = append(labels, k.label())
			}
			return nil, nil, &Error{Word: i + 1, Msg: fmt.Sprintf("%q is ambiguous: %s", w, strings.Join(labels, ", "))}
		}
		if next.Arg != nil {
			if next.Arg.Check != nil {
				if err := next.Arg.Check(w); err != nil {
					return nil, nil, &Error{Word: i + 1, Msg: fmt.Sprintf("<%s>: %v", next.Arg.Name, err)}
				}
			}
			args = append(args, w)
		}
		n = next
	}
	if n.Run == nil {
		if n == &t.root {
			return nil, nil, &Error{Msg: "empty command"}
		}
		return nil, nil, &Error{Word: len(words) + 1, Msg: "incomplete command; expected " + n.expected(level)}
	}
	return n, args, nil
}

// Help lists what may come at the end of line (after its last complete
// word, or matching the word being typed): a word and its help per line.
func (t *Tree) Help(words []string, partial string, level Level) ([][2]string, error) {
	n, err := t.walk(words, level)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, k := range n.kids {
		if k.Level > level {
			continue
		}
		if k.Arg == nil && !strings.HasPrefix(k.Word, partial) {
			continue
		}
		help := k.Help
		if help == "" && k.Arg != nil {
			help = k.Arg.Help
		}
		out = append(out, [2]string{k.label(), help})
	}
	if n.Run != nil && partial == "" {
		out = append(out, [2]string{"<cr>", "run the command"})
	}
	return out, nil
}

// Complete returns the completions of partial after words: keywords, and
// what arguments' Complete lists.
func (t *Tree) Complete(words []string, partial string, level Level) []string {
	n, err := t.walk(words, level)
	if err != nil {
		return nil
	}
	var out []string
	for _, k := range n.kids {
		if k.Level > level {
			continue
		}
		cands := []string{k.Word}
		if k.Arg != nil {
			cands = nil
			if k.Arg.Complete != nil {
				cands = k.Arg.Complete()
			}
		}
		for _, c := range cands {
			if strings.HasPrefix(c, partial) {
				out = append(out, c)
			}
		}
	}
	sort.Strings(out)
	return out
}

// walk follows complete words (for help and completion).
func (t *Tree) walk(words []string, level Level) (*Node, error) {
	n := &t.root
	for i, w := range words {
		if n.Arg != nil && n.Arg.Rest {
			continue
		}
		next, all := n.match(w, level)
		if next == nil {
			if len(all) == 0 {
				return nil, &Error{Word: i + 1, Msg: fmt.Sprintf("%q is not valid here; expected %s", w, n.expected(level))}
			}
			return nil, &Error{Word: i + 1, Msg: fmt.Sprintf("%q is ambiguous", w)}
		}
		n = next
	}
	return n, nil
}
