package config

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.SIP.Listen != "0.0.0.0:5060" || c.Data.Dir != "./data" || len(c.Subscribers) != 0 {
		t.Fatalf("defaults changed: %+v", c)
	}
}

func TestParseOverrides(t *testing.T) {
	c, err := Parse("x.toml", []byte(`
[sip]
listen = "127.0.0.1:5070"
[call]
no_answer_timeout = "3s"
[[subscriber]]
number = "1001"
password = "secret1001"
[[gateway]]
name = "gw"
address = "127.0.0.1:5080"
[[group]]
name = "g"
[[group.member]]
gateway = "gw"
[[route]]
name = "r"
group = "g"
[[analysis]]
prefix = "9"
action = "route"
route = "r"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.Listen != "127.0.0.1:5070" || c.Call.NoAnswerTimeout.Seconds() != 3 || c.Registrar.MinExpires != 60 {
		t.Fatalf("got %+v", c)
	}
}

func TestErrorsCarryFileAndLine(t *testing.T) {
	cases := []struct {
		src  string
		line int
		want string
	}{
		{"[sip]\nlisten = 5060\n", 2, "listen"},
		{"[sip]\nlisten = \"127.0.0.1:5060\"\nbogus = 1\n", 3, "bogus"},
		{"[registrar]\nmin_expires = 0\n", 2, "min_expires"},
		{"[log]\n\nlevel = \"loud\"\n", 3, "log.level"},
		{"[call]\nno_answer_timeout = \"soon\"\n", 2, "duration"},
		{"[runtime]\ngc_percent = 0\n", 2, "runtime.gc_percent"},
		{"[runtime]\n\nmemory_limit_mb = -5\n", 3, "runtime.memory_limit_mb"},
		{"[sip\n", 1, ""},
		{"[billing.pull]\nftp_listen = \"127.0.0.1:2121\"\nftp_tls = \"maybe\"\n", 3, "billing.pull.ftp_tls"},
		{"[billing.pull]\nftp_listen = \"127.0.0.1:2121\"\npassive_ports = \"30050-30000\"\n", 3, "billing.pull.passive_ports"},
		{"[billing.pull]\nftp_listen = \"127.0.0.1:2121\"\n", 1, "billing.pull.user"},
		{"[billing.pull]\nftp_listen = \"2121\"\n", 2, "billing.pull.ftp_listen"},
	}
	for _, c := range cases {
		_, err := Parse("bad.toml", []byte(c.src))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: error %v is not a config error", c.src, err)
			continue
		}
		if ce.File != "bad.toml" || ce.Line != c.line || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %q (line %d), want line %d mentioning %q", c.src, err, ce.Line, c.line, c.want)
		}
	}
}
