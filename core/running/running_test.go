package running

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/softswitch/softswitch/core/config"

	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/core/routing"
	"github.com/softswitch/softswitch/core/store"
)

func open(t *testing.T, dir string, file provision.Doc) (*Running, *[]*Checked, func()) {
	t.Helper()
	db, err := store.Open(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var applied []*Checked
	var tables *routing.Tables
	r, err := Open(Config{DB: db, Realm: "test", PasswordCost: 4, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Prev:  func() *routing.Tables { return tables },
		Apply: func(c *Checked) { applied = append(applied, c); tables = c.Tables }}, file, "test.toml")
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return r, &applied, func() { db.Close() }
}

func fileDoc(subscribers ...string) provision.Doc {
	d := provision.Default()
	for _, n := range subscribers {
		d.Subscribers = append(d.Subscribers, provision.Subscriber{Number: n, Password: "password-" + n})
	}
	return d
}

// A commit survives a restart with the same file; an edited file is
// imported (users, and parts it does not declare, kept); an unchanged
// file on SIGHUP changes nothing.
func TestStoreIsTheRunningConfiguration(t *testing.T) {
	dir := t.TempDir()
	r, applied, closeDB := open(t, dir, fileDoc("1001"))
	if st := r.Current(); st.Revision != 1 || len(st.Doc.Subscribers) != 1 || st.Doc.Subscribers[0].Password != "" ||
		len(st.Doc.Subscribers[0].HA1MD5) != 32 || len((*applied)[0].Subscribers) != 1 {
		t.Fatalf("first start: %+v", st)
	}
	c := r.Candidate("alice from 192.0.2.1")
	for _, l := range [][]string{{"subscriber", "2002", "password", "secret-2002"}, {"user", "bob", "level", "admin"},
		{"user", "bob", "password", "long-enough-1"}, {"gateway", "gw1", "address", "192.0.2.7:5060"}} {
		if err := c.Set(l); err != nil {
			t.Fatalf("%v: %v", l, err)
		}
	}
	if err := c.Set([]string{"user", "eve", "password", "short"}); err == nil || !strings.Contains(err.Error(), "10 characters") {
		t.Fatalf("a short password: %v", err)
	}
	if err := c.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, l := range r.Current().Doc.Lines() {
		if strings.Contains(l, "secret-2002") || strings.Contains(l, "long-enough-1") {
			t.Fatalf("a clear password is kept: %s", l)
		}
	}
	closeDB()

	r, applied, closeDB = open(t, dir, fileDoc("1001"))
	st := r.Current()
	if st.Revision != 2 || len(st.Doc.Subscribers) != 2 || len(st.Doc.Users) != 1 || len(st.Doc.Gateways) != 1 || len((*applied)[0].Subscribers) != 2 {
		t.Fatalf("after a restart with the same file: revision %d, %d subscribers, %d users", st.Revision, len(st.Doc.Subscribers), len(st.Doc.Users))
	}
	if imported, err := r.Reload(fileDoc("1001"), nil, "test.toml"); err != nil || imported || len(r.Current().Doc.Subscribers) != 2 {
		t.Fatalf("SIGHUP with the same file: %v %v", imported, err)
	}
	closeDB()

	r, _, closeDB = open(t, dir, fileDoc("1001", "3003"))
	defer closeDB()
	st = r.Current()
	// The file declares subscribers (they replace the running ones) and no
	// routing table (the running ones are kept).
	if st.Revision != 3 || len(st.Doc.Subscribers) != 2 || st.Doc.Subscribers[1].Number != "3003" || len(st.Doc.Users) != 1 || len(st.Doc.Gateways) != 1 {
		t.Fatalf("after the file changed: %+v", st.Doc)
	}
}

// A refused commit changes nothing; two sessions' commits both land.
func TestCommitWholeOrNothing(t *testing.T) {
	r, applied, closeDB := open(t, t.TempDir(), fileDoc())
	defer closeDB()
	a, b := r.Candidate("a"), r.Candidate("b")
	if err := a.Set([]string{"analysis", "1", "prefix", "1"}); err != nil {
		t.Fatal(err)
	}
	a.Set([]string{"analysis", "1", "action", "route"})
	a.Set([]string{"analysis", "1", "route", "nowhere"})
	err := a.Commit()
	if err == nil || !strings.Contains(err.Error(), `analysis 1 route: no route named "nowhere"`) {
		t.Fatalf("commit of a route to nowhere: %v", err)
	}
	if r.Current().Revision != 1 || len(*applied) != 1 {
		t.Fatal("a refused commit changed the running configuration")
	}
	a.Set([]string{"analysis", "1", "action", "local"})
	a.Unset([]string{"analysis", "1", "route"})
	b.Set([]string{"subscriber", "1001", "password", "password-1"})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	d := r.Current().Doc
	if r.Current().Revision != 3 || len(d.Subscribers) != 1 || len(d.Analysis) != 1 || d.Analysis[0].Action != "local" {
		t.Fatalf("after both commits: %+v", d)
	}
}

// The file's provisioning refused at start is reported at its line.
func TestFileErrorsCarryLine(t *testing.T) {
	cases := []struct {
		src  string
		line int
		want string
	}{
		{"[[subscriber]]\nnumber = \"10a1\"\npassword = \"longenough\"\n", 2, "number"},
		{"[[subscriber]]\nnumber = \"1001\"\npassword = \"short\"\n", 3, "password"},
		{"[[gateway]]\nname = \"a\"\naddress = \"\"\n", 3, "gateway[0].address"},
		{"[[analysis]]\nprefix = \"1\"\naction = \"local\"\n\n[[analysis]]\nprefix = \"2\"\naction = \"route\"\nroute = \"nowhere\"\n", 8, "no route named"},
		{"[[gateway]]\nname = \"a\"\naddress = \"10.0.0.1\"\n[[group]]\nname = \"g\"\n[[group.member]]\ngateway = \"a\"\n[[group.member]]\ngateway = \"b\"\n", 9, "no gateway named"},
		{"[numbering]\nmax_called_digits = 40\n", 2, "max_called_digits"},
		{"[[snmp.community]]\nname = \"public\"\nsources = [\"10.0.0.0/8\"]\n", 2, "snmp.community[0].name"},
		{"[[snmp.community]]\nname = \"noc-community\"\n", 1, "snmp.community[0].sources"},
		{"[[snmp.user]]\nname = \"noc\"\nauth = \"MD5\"\nauth_password = \"12345678\"\n", 3, "snmp.user[0].auth"},
		{"[[aaa.radius]]\nname = \"r1\"\naddress = \"radius.example\"\nsecret = \"0123456789abcdef\"\n", 3, "aaa.radius[0].address"},
		{"[[aaa.radius]]\nname = \"r1\"\naddress = \"192.0.2.1\"\nsecret = \"testing123\"\n", 4, "at least 16"},
		{"[[aaa.radius]]\nname = \"r1\"\naddress = \"192.0.2.1\"\n", 1, "aaa.radius[0].secret"},
		{"[aaa]\naccounting = [\"r9\"]\n[[aaa.radius]]\nname = \"r1\"\naddress = \"192.0.2.1\"\nsecret = \"0123456789abcdef\"\n", 2, "peer is named \"r9\""},
		{"[[aaa.diameter]]\nname = \"d1\"\naddress = \"192.0.2.1:3868\"\n", 0, "aaa.origin_host"},
		{"[aaa]\norigin_host = \"ss1.test\"\norigin_realm = \"test\"\ncall_auth = [\"d1\"]\n[[aaa.diameter]]\nname = \"d1\"\naddress = \"192.0.2.1:3868\"\n", 4, "RADIUS only"},
		{"[[aaa.diameter]]\nname = \"d1\"\naddress = \"192.0.2.1\"\n", 3, "aaa.diameter[0].address"},
		{"[billing]\nenabled = false\n[aaa]\naccounting = [\"r1\"]\n[[aaa.radius]]\nname = \"r1\"\naddress = \"192.0.2.1\"\nsecret = \"0123456789abcdef\"\n", 4, "needs [billing] enabled"},
		{"[aaa]\ncredit_control_tx = \"100ms\"\n", 2, "aaa.credit_control_tx"},
		{"[auth]\nalgorithms = [\"SHA-256\"]\n[aaa]\ncall_auth = [\"r1\"]\n[[aaa.radius]]\nname = \"r1\"\naddress = \"192.0.2.1\"\nsecret = \"0123456789abcdef\"\n", 4, "need MD5"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "bad.toml")
		os.WriteFile(path, []byte(c.src), 0o600)
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("%q: the bootstrap part refused: %v", c.src, err)
		}
		err = Check(&cfg.Doc, nil, cfg.AAABootstrap())
		var re *Error
		if !errors.As(err, &re) {
			t.Errorf("%q: error %v", c.src, err)
			continue
		}
		err = config.At(path, re.Key, re.Reason)
		want := fmt.Sprintf("%s:%d: ", path, c.line)
		if c.line == 0 { // a key the file does not write
			want = path + ": "
		}
		if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %q, want %q... mentioning %q", c.src, err, want, c.want)
		}
	}
}

// What a file declares is imported; what it leaves out is kept; a stored
// configuration with Telnet on starts without a Telnet address.
func TestDeclaredSections(t *testing.T) {
	dir := t.TempDir()
	parse := func(text string) provision.Doc { return parseDoc(t, text) }
	tables := "[[gateway]]\nname = \"gw1\"\naddress = \"192.0.2.7:5060\"\n"
	r, _, closeDB := open(t, dir, parse(tables+"[management]\ntelnet = true\n"))
	if !r.Current().Doc.Management.Telnet {
		t.Fatal("management telnet from the file not imported")
	}
	closeDB()
	// The tables are left out of the file now, numbering is new, Telnet is
	// turned off by the file.
	r, _, closeDB = open(t, dir, parse("[numbering]\ncountry_code = \"33\"\n[management]\ntelnet = false\n"))
	defer closeDB()
	d := r.Current().Doc
	if d.Numbering.CountryCode != "33" || len(d.Gateways) != 1 || d.Management.Telnet {
		t.Fatalf("numbering %+v, gateways %d, telnet %v", d.Numbering, len(d.Gateways), d.Management.Telnet)
	}
	// An unchanged file with other whitespace and comments is unchanged.
	if a, b := parse("[numbering]\ncountry_code = \"33\"\n"), parse("# note\n[numbering]\n  country_code = '33'\n"); a.FileDigest != b.FileDigest {
		t.Fatal("the same provisioning written otherwise has another digest")
	}
	// Telnet on by a commit needs an address.
	if err := r.Update("t", func(d *provision.Doc) error { d.Management.Telnet = true; return nil }); err == nil {
		t.Fatal("Telnet turned on with no telnet_listen")
	}
}

// Lines replayed on a newer running configuration are refused where they
// would name other entries, or bring back an item another session removed.
func TestReplayRefusedWhereItWouldMislead(t *testing.T) {
	r, _, closeDB := open(t, t.TempDir(), fileDoc("1001", "1002"))
	defer closeDB()
	seed := r.Candidate("seed")
	for _, p := range []string{"1", "2", "3"} {
		n := map[string]string{"1": "1", "2": "2", "3": "3"}[p]
		seed.Set([]string{"analysis", n, "prefix", p})
		seed.Set([]string{"analysis", n, "action", "local"})
	}
	if err := seed.Commit(); err != nil {
		t.Fatal(err)
	}
	a, b := r.Candidate("a"), r.Candidate("b")
	a.Set([]string{"analysis", "3", "action", "refuse"})
	a.Set([]string{"analysis", "3", "status", "403"})
	b.Unset([]string{"analysis", "1"})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err == nil || !strings.Contains(err.Error(), "by position") {
		t.Fatalf("a positional line replayed on a changed list: %v", err)
	}
	c, d := r.Candidate("c"), r.Candidate("d")
	c.Set([]string{"subscriber", "1002", "account", "x"})
	d.Unset([]string{"subscriber", "1002"})
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(); err == nil || !strings.Contains(err.Error(), "was removed") {
		t.Fatalf("a line on an item removed meanwhile: %v", err)
	}
	if len(r.Current().Doc.Subscribers) != 1 || len(r.Current().Doc.Analysis) != 2 {
		t.Fatalf("after the refused commits: %+v", r.Current().Doc)
	}
}

// A store an older version wrote (its [aaa] read from the file at each
// start, not in the digest) takes the file's [aaa] alone: what was
// committed since the import stays.
func TestFileAAATakenAlone(t *testing.T) {
	dir := t.TempDir()
	parse := func(text string) provision.Doc { return parseDoc(t, text) }
	base := "[[subscriber]]\nnumber = \"1001\"\npassword = \"longenough\"\n"
	r, _, closeDB := open(t, dir, parse(base))
	if err := r.Update("ops", func(d *provision.Doc) error {
		d.Subscribers = append(d.Subscribers, provision.Subscriber{Number: "1002", Password: "longenough2"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	closeDB()
	withAAA := parse(base + "[[aaa.radius]]\nname = \"r1\"\naddress = \"192.0.2.1\"\nsecret = \"0123456789abcdef\"\n")
	if !strings.Contains(withAAA.FileDigest, provision.AAADigestMark) {
		t.Fatalf("digest %q: [aaa] not apart", withAAA.FileDigest)
	}
	r, applied, closeDB := open(t, dir, withAAA)
	d := r.Current().Doc
	if len(d.Subscribers) != 2 || len(d.AAA.Radius) != 1 || d.AAA.Radius[0].Name != "r1" || len(*applied) != 1 {
		t.Fatalf("subscribers %d, aaa %+v, applied %d", len(d.Subscribers), d.AAA, len(*applied))
	}
	closeDB()
	// The next start with the same file: nothing imported again.
	r, _, closeDB = open(t, dir, withAAA)
	defer closeDB()
	if got := r.Current(); len(got.Doc.Subscribers) != 2 || got.By == "config file" {
		t.Fatalf("second start: by %q, subscribers %d", got.By, len(got.Doc.Subscribers))
	}
}

// parseDoc is the provisioning of a config file's text.
func parseDoc(t *testing.T, text string) provision.Doc {
	t.Helper()
	cfg, err := config.Parse("f.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Doc
}

// The standby adopts the active node's configuration, keeps its own SNMP
// listen address, and refuses commits of its own.
func TestAdoptAndStandby(t *testing.T) {
	active, _, closeA := open(t, t.TempDir(), fileDoc("1001"))
	defer closeA()
	standbyDoc := fileDoc("2001")
	standbyDoc.SNMP.Listen = "127.0.0.2:161"
	standby, applied, closeB := open(t, t.TempDir(), standbyDoc)
	defer closeB()
	if err := active.Update("ops", func(d *provision.Doc) error {
		d.Subscribers = append(d.Subscribers, provision.Subscriber{Number: "1002", Password: "longenough2"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	standby.SetStandby(true)
	if err := standby.Adopt(*active.Current()); err != nil {
		t.Fatal(err)
	}
	got := standby.Current()
	if got.Revision != active.Current().Revision || len(got.Doc.Subscribers) != 2 || got.Doc.SNMP.Listen != "127.0.0.2:161" ||
		got.FileDigest == active.Current().FileDigest || len(*applied) != 2 {
		t.Fatalf("adopted: revision %d, subscribers %d, snmp listen %q, applied %d", got.Revision, len(got.Doc.Subscribers),
			got.Doc.SNMP.Listen, len(*applied))
	}
	if err := standby.Adopt(*active.Current()); err != nil || len(*applied) != 2 {
		t.Fatalf("the same state again: %v, applied %d", err, len(*applied))
	}
	if err := standby.Update("ops", func(d *provision.Doc) error { return nil }); !errors.Is(err, ErrStandby) {
		t.Fatalf("a commit on the standby: %v", err)
	}
	standby.SetStandby(false)
	if err := standby.Update("ops", func(d *provision.Doc) error { return nil }); err != nil {
		t.Fatalf("a commit once active: %v", err)
	}
}
