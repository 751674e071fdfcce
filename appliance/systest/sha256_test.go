package systest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestRegisterDigestSHA256 registers with SHA-256 digest (RFC 8760), which
// sipp 3.6.1 cannot compute, with the sipgo client over real UDP:
// algorithms = ["SHA-256", "MD5"] gives two challenges, SHA-256 first;
// SHA-256 credentials are accepted; a wrong password gets 401 again.
func TestRegisterDigestSHA256(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.Algorithms = []string{"SHA-256", "MD5"}
	srv := startServer(t, cfg)

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("1001"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	client, err := sipgo.NewClient(ua,
		sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientConnectionAddr(local),
		sipgo.WithClientLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		t.Fatal(err)
	}
	phone := freePort(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Right password, SHA-256.
	req := newRegister(srv, "1001", phone)
	res, err := client.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER: %v", err)
	}
	t.Logf("REGISTER answered:\n%s", res.String())
	if res.StatusCode != 401 {
		t.Fatalf("REGISTER without credentials answered %d, want 401", res.StatusCode)
	}
	checkChallenge(t, "401 to REGISTER", parseSIP(res.String()), "WWW-Authenticate", []string{"SHA-256", "MD5"})

	res2, err := client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "1001", Password: "secret1001"})
	if err != nil {
		t.Fatalf("REGISTER with SHA-256 credentials: %v", err)
	}
	if a := req.GetHeader("Authorization"); a == nil || !strings.Contains(a.Value(), "algorithm=SHA-256") {
		t.Fatalf("the client did not answer the SHA-256 challenge: Authorization %v", a)
	}
	t.Logf("sent Authorization: %s", req.GetHeader("Authorization").Value())
	if res2.StatusCode != 200 {
		t.Fatalf("REGISTER with SHA-256 credentials answered %d %s, want 200:\n%s", res2.StatusCode, res2.Reason, res2.String())
	}
	contacts := contactsWithExpires(parseSIP(res2.String()))
	want := fmt.Sprintf("sip:1001@127.0.0.1:%d", phone)
	if _, ok := contacts[want]; !ok {
		t.Errorf("200 to REGISTER lists %v, want %s", keys(contacts), want)
	}

	// Wrong password, SHA-256: 401 again, with a challenge.
	req = newRegister(srv, "1001", phone)
	res, err = client.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER: %v", err)
	}
	if res.StatusCode != 401 {
		t.Fatalf("REGISTER without credentials answered %d, want 401", res.StatusCode)
	}
	res2, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "1001", Password: "wrong"})
	if err != nil {
		t.Fatalf("REGISTER with wrong SHA-256 credentials: %v", err)
	}
	if res2.StatusCode != 401 {
		t.Fatalf("REGISTER with a wrong password answered %d %s, want 401:\n%s", res2.StatusCode, res2.Reason, res2.String())
	}
	checkChallenge(t, "401 to wrong SHA-256 credentials", parseSIP(res2.String()), "WWW-Authenticate", []string{"SHA-256", "MD5"})
}

// newRegister builds REGISTER sip:SERVER for user with Contact on port.
func newRegister(srv *server, user string, port int) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "127.0.0.1", Port: srv.Port})
	aor := sip.Uri{User: user, Host: "127.0.0.1"}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: user, Host: "127.0.0.1", Port: port}})
	exp := sip.ExpiresHeader(3600)
	req.AppendHeader(&exp)
	return req
}
