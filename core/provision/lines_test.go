package provision_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/oam/cli"
)

const sample = `
[numbering]
country_code = "33"
national_prefix = ""
max_called_digits = 28

[[subscriber]]
number = "+331001"
ha1_md5 = "0123456789abcdef0123456789abcdef"
ha1_sha256 = "x"
account = "acme corp"

[[trusted_peer]]
name = "carrier-a"
address = "192.0.2.0/24"

[[analysis]]
prefix = "00"
action = "route"
route = "intl"
called_ops = ["delete 0 2", "e164"]
comment = "says \"international\" | with a bar? and a \\ backslash"

[[analysis]]
prefix = "112"
action = "local"
bypass_lists = true

[[gateway]]
name = "gw1"
address = "192.0.2.7:5060"
max_channels = 30
probe = true

[[gateway]]
name = "gw two"
address = "gw.example.net"

[[group]]
name = "g1"
failover_codes = [502, 504]
[[group.member]]
gateway = "gw1"
priority = 1
[[group.member]]
gateway = "gw two"
priority = 2
weight = 5

[[route]]
name = "intl"
group = "g1"

[[list]]
name = "block"
kind = "black"
match = "called"
scope = "global"
prefixes = ["0900", "0899"]

[rating]
default_tariff = "std"
holidays = ["2026-12-25"]
[[rating.band]]
name = "peak"
days = ["mon", "tue"]
from = "08:00"
to = "18:00"
[[rating.tariff]]
name = "std"
currency = "EUR"
[[rating.tariff.rate]]
prefix = "33"
price = "0.01"
unit = "60s"
increments = "60/60"
[[rating.assign]]
account = "acme corp"
tariff = "std"
`

func TestLinesRebuildTheDoc(t *testing.T) {
	want := provision.Default()
	if err := toml.Unmarshal([]byte(sample), &want); err != nil {
		t.Fatal(err)
	}
	want.Users = []provision.User{{Name: "alice", Level: "admin", Hash: "$2a$10$abc"}}
	lines := want.Lines()
	got := provision.Default()
	for _, l := range lines {
		ws, _, err := cli.Words(l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if err := got.Set(ws); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed lines give another doc:\n%s\n\ngot  %+v\nwant %+v", strings.Join(lines, "\n"), got, want)
	}
	t.Logf("\n%s", strings.Join(lines, "\n"))
}

func TestSetAndUnset(t *testing.T) {
	d := provision.Default()
	steps := []struct {
		line string
		no   bool
		err  string
	}{
		{line: "gateway gw1 address 192.0.2.1:5060"},
		{line: "gateway gw1 max_channels lots", err: "not a whole number"},
		{line: "gateway gw1 colour red", err: `"colour" is not a field`},
		{line: "gateway gw1 name other", err: `"name" is not a field`},
		{line: "analysis 2 prefix 1", err: "a new one is 1"},
		{line: "analysis 1 prefix 1"},
		{line: "analysis 2 prefix 2"},
		{line: "analysis 1", no: true},
		{line: "numbering country_code 44"},
		{line: "numbering", err: "name a field"},
		{line: "numbering country_code", no: true},
		{line: "nonsense", err: "not a section"},
		{line: "group g1 member gateway=gw1,priority=x", err: "priority"},
		{line: "group g1 member gateway=gw1,priority=1"},
		{line: "rating tariff std currency EUR"},
		{line: "gateway gw2 max_cps", no: true, err: "does not exist"},
	}
	for _, s := range steps {
		ws, _, _ := cli.Words(s.line)
		before := d.Clone()
		var err error
		if s.no {
			err = d.Unset(ws)
		} else {
			err = d.Set(ws)
		}
		if s.err == "" && err != nil {
			t.Fatalf("%s: %v", s.line, err)
		}
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Fatalf("%s: error %v, want %q", s.line, err, s.err)
			}
			if !reflect.DeepEqual(before, &d) {
				t.Fatalf("%s: refused but changed the doc", s.line)
			}
		}
	}
	if len(d.Analysis) != 1 || d.Analysis[0].Prefix != "2" || d.Numbering.CountryCode != "" ||
		len(d.Groups) != 1 || d.Groups[0].Members[0].Priority != 1 || d.Rating.Tariffs[0].Currency != "EUR" {
		t.Fatalf("doc after the steps: %+v", d)
	}
}

func TestDescribe(t *testing.T) {
	d := provision.Default()
	if err := toml.Unmarshal([]byte(sample), &d); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"gateway[1].address":             `gateway "gw two" address`,
		"analysis[1].route":              "analysis 2 route",
		"group[0].member[1].gateway":     "group g1 member (item 2) gateway",
		"rating.tariff[0].rate[0].price": "rating tariff std rate (item 1) price",
		"rating.assign[0].tariff":        "rating assign 1 tariff",
		"numbering.country_code":         "numbering country_code",
		"gateway[9].address":             "gateway[9].address",
	} {
		if got := d.Describe(key); got != want {
			t.Errorf("Describe(%q) = %q, want %q", key, got, want)
		}
	}
}

// What Lines could not print so that it reads back the same is refused.
func TestCheckLines(t *testing.T) {
	for src, want := range map[string]string{
		"[[gateway]]\nname = \"a\"\n[[gateway]]\nname = \"a\"\n":                                                             "gateway[1].name",
		"[[list]]\nname = \"\"\n":                                                                                            "list[0].name",
		"[[group]]\nname = \"g\"\n[[group.member]]\ngateway = \"a,b\"\n":                                                     "group[0].member[0].gateway",
		"[[analysis]]\nprefix = \"1\"\ncomment = \"two\\nlines\"\n":                                                          "analysis[0].comment",
		"[[trusted_peer]]\nname = \"t\"\naddress = \"192.0.2.1\"\n[[trusted_peer]]\nname = \"t\"\naddress = \"192.0.2.2\"\n": "",
	} {
		d := provision.Default()
		if err := toml.Unmarshal([]byte(src), &d); err != nil {
			t.Fatal(err)
		}
		err := d.CheckLines()
		if want == "" {
			if err != nil {
				t.Errorf("%q refused: %v", src, err)
			}
			continue
		}
		var ke *provision.KeyError
		if !errors.As(err, &ke) || ke.Key != want {
			t.Errorf("%q: %v, want a refusal at %s", src, err, want)
		}
	}
}
