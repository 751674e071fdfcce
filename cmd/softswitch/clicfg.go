package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/core/routing"
	"github.com/softswitch/softswitch/core/running"
	"github.com/softswitch/softswitch/oam/cli"
)

// configCommands adds configure mode's provisioning lines (one per
// section of core/provision, generated from it so that every field can be
// set) and show running-config.
func configCommands(c *cli.CLI, conf *running.Running) {
	c.NewCandidate = func(s *cli.Session) cli.Candidate {
		return conf.Candidate(fmt.Sprintf("%s from %s", s.User, s.From))
	}
	cand := func(s *cli.Session) *running.Candidate { return s.Candidate.(*running.Candidate) }
	set := func(prefix ...string) func(s *cli.Session, args []string) error {
		return func(s *cli.Session, args []string) error {
			if err := cand(s).Set(append(append([]string{}, prefix...), args...)); err != nil {
				return errors.New("% " + err.Error())
			}
			return nil
		}
	}
	unset := func(prefix ...string) func(s *cli.Session, args []string) error {
		return func(s *cli.Session, args []string) error {
			if err := cand(s).Unset(append(append([]string{}, prefix...), args...)); err != nil {
				return errors.New("% " + err.Error())
			}
			return nil
		}
	}
	value := &cli.Arg{Name: "value", Help: "the value (a list: one word per item; quote a value with blanks)", Rest: true}
	c.Config.Add("no", []string{"remove an item or a list, or put a field back to its default"}, cli.Admin, nil, nil)
	for _, sec := range provision.Sections() {
		w := sec.Word
		if sec.List {
			addList(c, []string{w}, sec, value, set, unset, conf)
			continue
		}
		field := fieldArg(sec.Fields)
		c.Config.Add(w+" <field> <value>", []string{"set the " + w + " section", "", ""}, cli.Admin,
			map[string]*cli.Arg{"field": field, "value": value}, set(w))
		c.Config.Add("no "+w, []string{"", "put the whole " + w + " section back to its defaults"}, cli.Admin, nil, unset(w))
		c.Config.Add("no "+w+" <field>", []string{"", "", "put the field back to its default"}, cli.Admin,
			map[string]*cli.Arg{"field": field}, unset(w))
		for _, sub := range sec.Subs {
			addList(c, []string{w, sub.Word}, sub, value, set, unset, conf)
		}
	}
	c.Exec.Add("show running-config", []string{"", "the provisioning, as the commands that rebuild it"}, cli.Admin, nil,
		func(s *cli.Session, _ []string) error {
			st := conf.Current()
			printConfig(s, &st.Doc, fmt.Sprintf("! running configuration, revision %d, committed %s UTC by %s",
				st.Revision, st.Time.UTC().Format("2006-01-02 15:04:05"), st.By))
			return nil
		})
	c.Config.Add("show candidate", []string{"show the configuration being edited", "the working copy, as commands (commit makes it the running one)"},
		cli.Admin, nil, func(s *cli.Session, _ []string) error {
			printConfig(s, cand(s).Doc(), "! candidate configuration (not committed)")
			return nil
		})
}

// printConfig prints d as configure-mode lines that rebuild it, with
// configure and commit around them so that the output can be pasted.
func printConfig(s *cli.Session, d *provision.Doc, head string) {
	s.Printf("%s\n!\nconfigure\n", head)
	for _, l := range d.Lines() {
		s.Printf(" %s\n", l)
	}
	s.Printf("commit\nend\n")
}

// addList adds the lines of one list: an item by its name (or position),
// a field of it, and their "no" forms.
func addList(c *cli.CLI, words []string, sec provision.Section, value *cli.Arg,
	set, unset func(prefix ...string) func(s *cli.Session, args []string) error, conf *running.Running) {
	w := strings.Join(words, " ")
	keyName := "position"
	if sec.Keyed {
		keyName = "name"
	}
	key := &cli.Arg{Name: keyName, Help: "which " + words[len(words)-1],
		Check: func(s string) error {
			if s == "" {
				return errors.New("empty")
			}
			return nil
		},
		Complete: func() []string { return keysOf(conf, w) }}
	field := fieldArg(sec.Fields)
	args := map[string]*cli.Arg{"key": key, "field": field, "value": value}
	helps := make([]string, len(words)+3)
	helps[len(words)-1] = "a " + words[len(words)-1] + " (one field per line)"
	c.Config.Add(w+" <key>", helps, cli.Admin, args, set(words...))
	c.Config.Add(w+" <key> <field> <value>", helps, cli.Admin, args, set(words...))
	nohelps := append([]string{""}, helps...)
	nohelps[len(words)] = "remove every " + words[len(words)-1]
	c.Config.Add("no "+w, nohelps, cli.Admin, args, unset(words...))
	nohelps[len(words)+1] = "remove this one"
	c.Config.Add("no "+w+" <key>", nohelps, cli.Admin, args, unset(words...))
	nohelps[len(words)+2] = "clear the field"
	c.Config.Add("no "+w+" <key> <field>", nohelps, cli.Admin, args, unset(words...))
}

// fieldArg accepts the names of fields.
func fieldArg(fields []provision.Field) *cli.Arg {
	var names, helps []string
	for _, f := range fields {
		names = append(names, f.Word)
		helps = append(helps, f.Word+" ("+f.Kind+")")
	}
	return &cli.Arg{Name: "field", Help: strings.Join(helps, ", "),
		Check: func(s string) error {
			for _, n := range names {
				if n == s {
					return nil
				}
			}
			return fmt.Errorf("not a field; expected %s", strings.Join(names, ", "))
		},
		Complete: func() []string { return names }}
}

// keysOf lists the names (or positions) of a list's items in the running
// configuration, for Tab.
func keysOf(conf *running.Running, prefix string) []string {
	return conf.Current().Doc.Keys(strings.Fields(prefix))
}

// secretFields are the fields whose values the audit log hides: a
// password, and what stands for one (an HA1 value works as the password in
// SIP digest; a bcrypt hash can be attacked offline; an SNMP community is
// a password, also where it names its line: snmp community SECRET ...).
var secretFields = map[string]bool{"password": true, "ha1_md5": true, "ha1_sha256": true, "hash": true,
	"auth_password": true, "priv_password": true, "community": true, "secret": true}

// maskSecrets is a command line for the audit log: the words as the
// command line reads them (quotes and all), with the value of a secret
// field hidden.
func maskSecrets(line string) string {
	ws, _, err := cli.Words(line)
	if err != nil {
		return "<a line that does not parse>"
	}
	for i, w := range ws {
		if secretFields[w] && i+1 < len(ws) {
			return strings.Join(quoteAll(ws[:i+1]), " ") + " <hidden>"
		}
	}
	return strings.Join(quoteAll(ws), " ")
}

func quoteAll(ws []string) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = provision.Quote(w)
	}
	return out
}

// lockGateways locks or unlocks gateways (by name) in the running
// configuration (lock gateway, SNMP ssGatewayAdminState): one commit like
// any change, so a lock outlives a restart and shows in show
// running-config.
func lockGateways(conf *running.Running, locks map[string]bool, by string) error {
	return conf.Update(by, func(d *provision.Doc) error {
		for name, lock := range locks {
			found := false
			for i := range d.Gateways {
				if d.Gateways[i].Name == name {
					d.Gateways[i].Locked, found = lock, true
				}
			}
			if !found {
				return fmt.Errorf("no gateway %s in the running configuration", name)
			}
		}
		return nil
	})
}

// trafficCommands are the operator's traffic controls: block and gap a
// called-number prefix, committed to the running configuration (they
// outlive a restart and show in show running-config).
func trafficCommands(c *cli.CLI, conf *running.Running, tables func() *routing.Tables) {
	prefix := &cli.Arg{Name: "prefix", Help: "a called-number prefix, as received (digits, * #, a leading +)",
		Check: func(s string) error {
			if strings.Trim(s, "+0123456789*#") != "" {
				return errors.New("digits, * and #, an optional leading +")
			}
			return nil
		}}
	rate := &cli.Arg{Name: "rate", Help: "calls a second let through (e.g. 5, 0.5)",
		Check: func(s string) error {
			if r, err := strconv.ParseFloat(s, 64); err != nil || !(r > 0 && r <= 100000) {
				return errors.New("a number of calls a second above 0, at most 100000")
			}
			return nil
		}}
	args := map[string]*cli.Arg{"prefix": prefix, "rate": rate}
	change := func(s *cli.Session, what string, f func(d *provision.Doc) error) error {
		if err := conf.Update(fmt.Sprintf("%s from %s", s.User, s.From), f); err != nil {
			return fmt.Errorf("%% %s: %v", what, err)
		}
		s.Printf("%s\n", what)
		return nil
	}
	c.Exec.Add("block prefix <prefix>", []string{"refuse new calls to a prefix (403, cause 21) at once", "a called-number prefix", ""},
		cli.Operator, args, func(s *cli.Session, a []string) error {
			return change(s, "prefix "+a[0]+" blocked", func(d *provision.Doc) error {
				for _, b := range d.Blocks {
					if b.Prefix == a[0] {
						return errors.New("blocked already")
					}
				}
				d.Blocks = append(d.Blocks, provision.Block{Prefix: a[0]})
				return nil
			})
		})
	c.Exec.Add("unblock prefix <prefix>", []string{"lift a block", "a called-number prefix", ""}, cli.Operator, args,
		func(s *cli.Session, a []string) error {
			return change(s, "prefix "+a[0]+" unblocked", func(d *provision.Doc) error {
				for i, b := range d.Blocks {
					if b.Prefix == a[0] {
						d.Blocks = append(d.Blocks[:i:i], d.Blocks[i+1:]...)
						return nil
					}
				}
				return errors.New("not blocked")
			})
		})
	c.Exec.Add("gap prefix <prefix> rate <rate>", []string{"call gapping: let at most RATE new calls a second through to a prefix (the rest: 503, cause 42)",
		"a called-number prefix", "", "", ""}, cli.Operator, args,
		func(s *cli.Session, a []string) error {
			r, _ := strconv.ParseFloat(a[1], 64)
			return change(s, "prefix "+a[0]+" gapped at "+a[1]+" calls a second", func(d *provision.Doc) error {
				for i := range d.Gaps {
					if d.Gaps[i].Prefix == a[0] {
						d.Gaps[i].Rate = r
						return nil
					}
				}
				d.Gaps = append(d.Gaps, provision.Gap{Prefix: a[0], Rate: r})
				return nil
			})
		})
	c.Exec.Add("ungap prefix <prefix>", []string{"end call gapping on a prefix", "a called-number prefix", ""}, cli.Operator, args,
		func(s *cli.Session, a []string) error {
			return change(s, "prefix "+a[0]+" no longer gapped", func(d *provision.Doc) error {
				for i, g := range d.Gaps {
					if g.Prefix == a[0] {
						d.Gaps = append(d.Gaps[:i:i], d.Gaps[i+1:]...)
						return nil
					}
				}
				return errors.New("not gapped")
			})
		})
	c.Exec.Add("show traffic-control", []string{"", "blocked and gapped prefixes, with the calls each refused"}, cli.View, nil,
		func(s *cli.Session, _ []string) error {
			s.Printf("%-28s %-8s %12s %10s\n", "PREFIX", "CONTROL", "CALLS/S", "REFUSED")
			for _, st := range tables().Controls.Status() {
				kind, r := "gap", strconv.FormatFloat(st.Rate, 'g', -1, 64)
				if st.Block {
					kind, r = "block", "-"
				}
				s.Printf("%-28s %-8s %12s %10d\n", st.Prefix, kind, r, st.Refused)
			}
			return nil
		})
}
