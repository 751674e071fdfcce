package running

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/softswitch/softswitch/core/provision"
)

// Candidate is one configure session's working copy: lines change it,
// Commit checks it whole and makes it the running configuration.
type Candidate struct {
	r       *Running
	by      string
	base    int64
	baseDoc *provision.Doc // the running configuration the session began from
	doc     *provision.Doc
	lines   []change
}

type change struct {
	no    bool
	words []string
}

// Candidate starts a working copy of the running configuration for by
// ("alice from 192.0.2.9").
func (r *Running) Candidate(by string) *Candidate {
	cur := r.Current()
	return &Candidate{r: r, by: by, base: cur.Revision, baseDoc: cur.Doc.Clone(), doc: cur.Doc.Clone()}
}

// Doc is the working copy (do not change it).
func (c *Candidate) Doc() *provision.Doc { return c.doc }

// Changed reports whether lines were applied since the last commit.
func (c *Candidate) Changed() bool { return len(c.lines) > 0 }

// Set applies a configuration line; a refused line changes nothing.
func (c *Candidate) Set(words []string) error { return c.apply(change{words: words}) }

// Unset applies a "no" line.
func (c *Candidate) Unset(words []string) error { return c.apply(change{no: true, words: words}) }

func (c *Candidate) apply(ch change) error {
	if err := c.r.applyLine(c.doc, ch); err != nil {
		return err // c.doc is as it was
	}
	c.lines = append(c.lines, c.recorded(c.doc, ch)...)
	return nil
}

// applyLine applies one line and turns a clear password into what is
// kept. A refused line changes nothing: a password is checked before it
// is set, and Set and Unset change nothing when they refuse.
func (r *Running) applyLine(d *provision.Doc, ch change) error {
	if w := ch.words; !ch.no && len(w) == 4 && w[2] == "password" {
		least := map[string]int{"subscriber": 8, "user": MinUserPassword}[w[0]]
		switch {
		case len(w[3]) < least:
			return fmt.Errorf("%s %s: a password is %d characters at least", w[0], w[1], least)
		case len(w[3]) > 72:
			return fmt.Errorf("%s %s: a password is 72 characters at most", w[0], w[1])
		}
	}
	var err error
	if ch.no {
		err = d.Unset(ch.words)
	} else {
		err = d.Set(ch.words)
	}
	if err != nil {
		return err
	}
	if ch.no || len(ch.words) < 3 || ch.words[2] != "password" {
		return nil // only a password line has something to turn into what is kept
	}
	if err := r.normalise(d); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return errors.New(e.Reason)
		}
		return err
	}
	return nil
}

// recorded is the line as kept for a later replay: a password line is
// kept as the values it became (the clear password is not kept).
func (c *Candidate) recorded(d *provision.Doc, ch change) []change {
	w := ch.words
	if ch.no || len(w) < 3 || w[2] != "password" {
		return []change{ch}
	}
	switch w[0] {
	case "subscriber":
		for _, s := range d.Subscribers {
			if s.Number == w[1] {
				return []change{{words: []string{w[0], w[1], "ha1_md5", s.HA1MD5}}, {words: []string{w[0], w[1], "ha1_sha256", s.HA1SHA256}}}
			}
		}
	case "user":
		for _, u := range d.Users {
			if u.Name == w[1] {
				return []change{{words: []string{w[0], w[1], "hash", u.Hash}}}
			}
		}
	}
	return []change{ch}
}

// Commit checks the working copy whole and makes it the running
// configuration. When another session committed since this one began, its
// lines are applied again to the newest running configuration, so that
// neither session's changes are lost.
func (c *Candidate) Commit() error {
	if !c.Changed() {
		return nil // nothing to commit: no new revision
	}
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cur.Load()
	d := c.doc
	if cur.Revision != c.base {
		if err := c.replayable(cur); err != nil {
			return err
		}
		d = cur.Doc.Clone()
		for _, ch := range c.lines {
			if err := r.applyLine(d, ch); err != nil {
				no := ""
				if ch.no {
					no = "no "
				}
				return fmt.Errorf("the running configuration changed since configure began (revision %d by %s) and the line %q no longer applies: %v",
					cur.Revision, cur.By, no+strings.Join(ch.words, " "), err)
			}
		}
	}
	if admins(&cur.Doc) > 0 && admins(d) == 0 {
		return errors.New("the last admin user cannot be removed on the command line (root on the node can: softswitch cli-user del)")
	}
	if err := r.commitLocked(d.Clone(), c.by); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Key != "" {
			return fmt.Errorf("%s: %s", d.Describe(e.Key), e.Reason)
		}
		return err
	}
	now := r.cur.Load()
	c.base, c.baseDoc, c.doc, c.lines = now.Revision, now.Doc.Clone(), now.Doc.Clone(), nil
	return nil
}

// replayable refuses to apply this session's lines to cur, committed by
// another since the session began, where they could do other than the
// user meant: a line naming an entry by position in a list that changed
// (it would name another entry), or a line naming an item that was
// removed meanwhile (it would bring it back half made).
func (c *Candidate) replayable(cur *State) error {
	for _, ch := range c.lines {
		was, positional, existed := c.baseDoc.ItemOf(ch.words)
		if was == nil {
			continue
		}
		now, _, exists := cur.Doc.ItemOf(ch.words)
		switch {
		case positional && !reflect.DeepEqual(was, now):
			return fmt.Errorf("the list of %q changed since configure began (revision %d by %s): entries named by position may now be others; abort and configure again",
				strings.Join(ch.words[:min(2, len(ch.words))], " "), cur.Revision, cur.By)
		case existed && !exists:
			return fmt.Errorf("%q was removed since configure began (revision %d by %s); abort and configure again",
				strings.Join(ch.words[:min(2, len(ch.words))], " "), cur.Revision, cur.By)
		}
	}
	return nil
}

func admins(d *provision.Doc) int {
	n := 0
	for _, u := range d.Users {
		if u.Level == "admin" {
			n++
		}
	}
	return n
}
