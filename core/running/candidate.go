package running

import (
	"errors"
	"fmt"
	"strings"

	"github.com/softswitch/softswitch/core/provision"
)

// Candidate is one configure session's working copy: lines change it,
// Commit checks it whole and makes it the running configuration.
type Candidate struct {
	r     *Running
	by    string
	base  int64
	doc   *provision.Doc
	lines []change
}

type change struct {
	no    bool
	words []string
}

// Candidate starts a working copy of the running configuration for by
// ("alice from 192.0.2.9").
func (r *Running) Candidate(by string) *Candidate {
	cur := r.Current()
	return &Candidate{r: r, by: by, base: cur.Revision, doc: cur.Doc.Clone()}
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
	d := c.doc.Clone()
	if err := c.r.applyLine(d, ch); err != nil {
		return err
	}
	c.doc = d
	c.lines = append(c.lines, c.recorded(d, ch)...)
	return nil
}

// applyLine applies one line and turns a clear password into what is kept.
func (r *Running) applyLine(d *provision.Doc, ch change) error {
	var err error
	if ch.no {
		err = d.Unset(ch.words)
	} else {
		err = d.Set(ch.words)
	}
	if err != nil {
		return err
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
	if err := r.commitLocked(d.Clone(), c.by); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Key != "" {
			return fmt.Errorf("%s: %s", d.Describe(e.Key), e.Reason)
		}
		return err
	}
	now := r.cur.Load()
	c.base, c.doc, c.lines = now.Revision, now.Doc.Clone(), nil
	return nil
}
