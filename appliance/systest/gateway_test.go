package systest

// Gateway groups, failover, limits, probing, trunk registration and RFC
// 3263 resolution (issue 3: R8, R10), with sipp instances as gateways and
// dnsmasq as the DNS server.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hunt is a group of gateways on 127.0.0.1 ports behind one route "out"
// that every number takes.
func huntTOML(groupExtra string, gws ...string) string {
	var b strings.Builder
	for _, g := range gws {
		b.WriteString(g)
	}
	b.WriteString("[[group]]\nname = \"out\"\n" + groupExtra + "\n")
	for _, g := range gws {
		name := strings.SplitN(strings.SplitN(g, "name = \"", 2)[1], "\"", 2)[0]
		prio, weight := "1", "1"
		for _, line := range strings.Split(g, "\n") {
			if v, ok := strings.CutPrefix(line, "# priority "); ok {
				prio = v
			}
			if v, ok := strings.CutPrefix(line, "# weight "); ok {
				weight = v
			}
		}
		fmt.Fprintf(&b, "[[group.member]]\ngateway = %q\npriority = %s\nweight = %s\n", name, prio, weight)
	}
	b.WriteString("\n[[route]]\nname = \"out\"\ngroup = \"out\"\n\n[[analysis]]\nprefix = \"\"\naction = \"route\"\nroute = \"out\"\n")
	return b.String()
}

// gw declares one gateway; priority and weight ride along as comments
// that huntTOML turns into the group membership.
func gw(name string, port, priority, weight int, extra string) string {
	return fmt.Sprintf("# priority %d\n# weight %d\n[[gateway]]\nname = %q\naddress = \"127.0.0.1:%d\"\n%s\n\n", priority, weight, name, port, extra)
}

// TestFailoverOn503AndTimeout: the first gateway answers 503, the second
// never answers (not even 100 Trying), the third takes the call. The
// caller sees one answered call; each gateway saw what it should.
func TestFailoverOn503AndTimeout(t *testing.T) {
	t.Parallel()
	p1, p3 := freePort(t), freePort(t)
	silent := startUDPSink(t)
	cfg := defaultConfig()
	cfg.Extra = huntTOML("invite_timeout = \"1s\"",
		gw("gw-503", p1, 1, 1, ""), gw("gw-silent", silent.Port, 2, 1, ""), gw("gw-ok", p3, 3, 1, ""))
	srv := startServer(t, cfg)

	g1 := startUAS(t, "gw-503", "uas_503.xml", sippOpts{Port: p1})
	g3 := startUAS(t, "gw-ok", "uas_answer.xml", sippOpts{Port: p3})
	a := trunkCall(t, srv, "hunted-call", "0301234", "0401111")
	r1, r3 := g1.wait(), g3.wait()
	a.requireOK(t)
	r1.requireOK(t)
	r3.requireOK(t)
	requireFinals(t, a, "INVITE", 200)
	gwInvite(t, r1, "0301234", "0401111")
	gwInvite(t, r3, "0301234", "0401111")

	var invites, cancels int
	for _, m := range silent.Messages() {
		switch {
		case strings.HasPrefix(m, "INVITE "):
			invites++
		case strings.HasPrefix(m, "CANCEL "):
			cancels++
		}
	}
	if invites == 0 {
		t.Error("the silent gateway was never tried")
	}
	if cancels != 0 {
		t.Error("a CANCEL went to a gateway that never sent a provisional response")
	}
	waitLog(t, srv, 5*time.Second, "gateway failover", "from=gw-503", "status=503", "to=gw-silent")
	waitLog(t, srv, 5*time.Second, "gateway failover", "from=gw-silent", "status=408", "to=gw-ok")
}

// TestWeightedSplit: 1,000 calls over two gateways of equal priority,
// weights 75 and 25. Stated tolerance: the first gets 750 +- 60 (more than
// four standard deviations of a binomial of 1,000 at 0.75).
func TestWeightedSplit(t *testing.T) {
	t.Parallel()
	const calls = 1000
	pA, pB := freePort(t), freePort(t)
	cfg := defaultConfig()
	cfg.Extra = huntTOML("", gw("gw-75", pA, 1, 75, ""), gw("gw-25", pB, 1, 25, ""))
	srv := startServer(t, cfg)
	gA := startUAS(t, "gw-75", "uas_answer.xml", sippOpts{Port: pA, Calls: -1, Timeout: 60 * time.Second})
	gB := startUAS(t, "gw-25", "uas_answer.xml", sippOpts{Port: pB, Calls: -1, Timeout: 60 * time.Second})
	a := runSipp(t, sippOpts{
		Name: "weighted-calls", Scenario: "uac_trusted_call.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0301234", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"},
		Calls: calls, Rate: 200, Timeout: 60 * time.Second,
	})
	a.requireOK(t)
	gA.kill()
	gB.kill()
	nA := len(gA.res.ReceivedRequests("INVITE"))
	nB := len(gB.res.ReceivedRequests("INVITE"))
	t.Logf("weights 75/25 over %d calls: %d / %d", calls, nA, nB)
	if nA+nB != calls {
		t.Errorf("gateways saw %d + %d INVITEs, want %d calls in all", nA, nB, calls)
	}
	if nA < 690 || nA > 810 {
		t.Errorf("the weight-75 gateway got %d of %d calls, want 750 +- 60", nA, calls)
	}
}

// TestChannelLimit: gateway A takes one call at a time; a second call
// while the first rings goes to B.
func TestChannelLimit(t *testing.T) {
	t.Parallel()
	pA, pB := freePort(t), freePort(t)
	cfg := defaultConfig()
	cfg.Extra = huntTOML("", gw("gw-a", pA, 1, 1, "max_channels = 1"), gw("gw-b", pB, 2, 1, ""))
	srv := startServer(t, cfg)
	gA := startUAS(t, "gw-a", "uas_answer.xml", sippOpts{Port: pA, Pause: 2 * time.Second})
	gB := startUAS(t, "gw-b", "uas_answer.xml", sippOpts{Port: pB})
	first := startSipp(t, sippOpts{
		Name: "first-call", Scenario: "uac_trusted_call.xml", Remote: srv.Addr, LocalIP: trustedIP,
		Service: "0301111", Keys: map[string]string{"caller": "0401111", "max_forwards": "70"},
	})
	time.Sleep(500 * time.Millisecond) // the first call rings on A for 2 s
	second := trunkCall(t, srv, "second-call", "0302222", "0401111")
	rB := gB.wait()
	second.requireOK(t)
	rB.requireOK(t)
	gwInvite(t, rB, "0302222", "0401111")
	r1, rA := first.wait(), gA.wait()
	r1.requireOK(t)
	rA.requireOK(t)
	gwInvite(t, rA, "0301111", "0401111")
}

// TestProbeDownAndUp: a gateway whose OPTIONS go unanswered is marked down
// and skipped (calls go to the next one, it gets no INVITE); once it answers
// its probes it is marked up and takes calls again.
func TestProbeDownAndUp(t *testing.T) {
	t.Parallel()
	pP, pQ := freePort(t), freePort(t)
	sink := startUDPSinkOn(t, pP)
	cfg := defaultConfig()
	cfg.Extra = huntTOML("",
		gw("gw-probed", pP, 1, 1, "probe = true\nprobe_interval = \"200ms\"\nprobe_failures = 2\nprobe_recoveries = 2"),
		gw("gw-backup", pQ, 2, 1, ""))
	srv := startServer(t, cfg)
	waitLog(t, srv, 10*time.Second, "gateway state", "gateway=gw-probed", "state=down")

	gQ := startUAS(t, "gw-backup", "uas_answer.xml", sippOpts{Port: pQ})
	a := trunkCall(t, srv, "while-down", "0301234", "0401111")
	rQ := gQ.wait()
	a.requireOK(t)
	rQ.requireOK(t)
	for _, m := range sink.Messages() {
		if strings.HasPrefix(m, "INVITE ") {
			t.Fatal("a down gateway was sent an INVITE")
		}
		if !strings.HasPrefix(m, "OPTIONS ") {
			t.Errorf("the probed gateway got %q", strings.SplitN(m, "\n", 2)[0])
		}
	}
	if len(sink.Messages()) < 2 {
		t.Errorf("the probed gateway got %d OPTIONS", len(sink.Messages()))
	}

	sink.close()
	// One sipp answers the probes and, once the gateway is up, the call:
	// probes keep coming every 200 ms while the call is set up.
	gP := startUAS(t, "gw-probed", "uas_probed_answer.xml", sippOpts{Port: pP, Calls: -1, Timeout: 60 * time.Second})
	waitLog(t, srv, 10*time.Second, "gateway state", "gateway=gw-probed", "state=up")
	a = trunkCall(t, srv, "after-recovery", "0305678", "0401111")
	a.requireOK(t)
	// The caller's BYE is answered at once and goes on to the gateway in
	// the same moment: let it arrive before the gateway's sipp is stopped.
	waitFor(t, 5*time.Second, "the recovered gateway gets the BYE", func() bool {
		msgs, _ := readSippMessages(gP.res.MessageLog)
		return len(filterMsgs(msgs, func(m sipMsg) bool { return !m.Sent && m.Method == "BYE" })) > 0
	})
	gP.kill()
	rP := gP.res
	gwInvite(t, rP, "0305678", "0401111")
	if len(rP.ReceivedRequests("BYE")) != 1 || len(rP.ReceivedRequests("ACK")) != 1 {
		t.Errorf("the recovered gateway's call: %s", strings.Join(startLines(rP.Received()), " | "))
	}
}

// TestTrunkRegistration: the switch registers to a sipp registrar that
// challenges with 401, authenticates (checked by the registrar), and
// refreshes before the granted 10 s run out.
func TestTrunkRegistration(t *testing.T) {
	t.Parallel()
	rp := freePort(t)
	reg := startUAS(t, "upstream-registrar", "uas_registrar.xml", sippOpts{Port: rp, Timeout: 30 * time.Second,
		Keys: map[string]string{"user": "switch-a", "password": "trunk-secret-1", "expires": "10"}})
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf(`[[registration]]
name = "carrier-up"
registrar = "127.0.0.1:%d"
domain = "carrier.test"
user = "switch-a"
password = "trunk-secret-1"
expires = 10
`, rp)
	srv := startServer(t, cfg)
	r := reg.wait()
	r.requireOK(t)
	regs := r.ReceivedRequests("REGISTER")
	if len(regs) != 4 {
		t.Fatalf("registrar got %d REGISTERs, want 4 (two rounds of challenge and answer)", len(regs))
	}
	for _, i := range []int{1, 3} {
		if !strings.Contains(regs[i].Header("Authorization"), "Digest") {
			t.Errorf("REGISTER %d has no digest credentials", i+1)
		}
	}
	if !strings.Contains(regs[0].Header("To"), "switch-a@carrier.test") {
		t.Errorf("REGISTER To %q, want the AOR switch-a@carrier.test", regs[0].Header("To"))
	}
	log, _ := os.ReadFile(srv.LogPath)
	if strings.Contains(string(log), "trunk-secret-1") {
		t.Error("the trunk password is in the log")
	}
	waitLog(t, srv, 5*time.Second, "trunk registration", "name=carrier-up", "state=registered")
}

// TestSRVFailover: a gateway given by domain name resolves by NAPTR and
// SRV at a real DNS server (dnsmasq on a loopback port); the priority-10
// target answers 503, the call goes on to the priority-20 target.
func TestSRVFailover(t *testing.T) {
	t.Parallel()
	pA, pB, pDNS := freePort(t), freePort(t), freePort(t)
	startDNS(t, pDNS,
		`--naptr-record=carrier.test,10,10,s,SIP+D2U,,_sip._udp.carrier.test`,
		fmt.Sprintf("--srv-host=_sip._udp.carrier.test,a.carrier.test,%d,10,1", pA),
		fmt.Sprintf("--srv-host=_sip._udp.carrier.test,b.carrier.test,%d,20,1", pB),
		"--host-record=a.carrier.test,127.0.0.1",
		"--host-record=b.carrier.test,127.0.0.1",
	)
	cfg := defaultConfig()
	cfg.Extra = fmt.Sprintf("[dns]\nservers = [\"127.0.0.1:%d\"]\n\n", pDNS) +
		huntTOML("", "# priority 1\n[[gateway]]\nname = \"carrier\"\naddress = \"carrier.test\"\n\n")
	srv := startServer(t, cfg)
	gA := startUAS(t, "srv-target-a", "uas_503.xml", sippOpts{Port: pA})
	gB := startUAS(t, "srv-target-b", "uas_answer.xml", sippOpts{Port: pB})
	a := trunkCall(t, srv, "srv-call", "0301234", "0401111")
	rA, rB := gA.wait(), gB.wait()
	a.requireOK(t)
	rA.requireOK(t)
	rB.requireOK(t)
	for _, r := range []*sippResult{rA, rB} {
		inv := gwInvite(t, r, "0301234", "0401111")
		if !strings.Contains(inv.RURI, "@carrier.test") {
			t.Errorf("%s: Request-URI %q, want the domain carrier.test", r.Name, inv.RURI)
		}
	}
}

// startDNS runs dnsmasq on 127.0.0.1:port with only the given records (no
// upstream, no hosts file, no config file), stopped at the end of the test.
func startDNS(t *testing.T, port int, records ...string) {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		bin = "/usr/sbin/dnsmasq"
	}
	logPath := filepath.Join(t.TempDir(), "dnsmasq.log")
	args := append([]string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--no-poll", "--bind-interfaces", "--listen-address=127.0.0.1", "--port=" + strconv.Itoa(port),
		"--user=root", "--pid-file=", "--log-facility=" + logPath, "--log-queries", "--local-ttl=60"}, records...)
	cmd := exec.Command(bin, args...)
	out, _ := os.Create(filepath.Join(t.TempDir(), "dnsmasq.out"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("dnsmasq: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("dnsmasq log:\n%s", data)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for !udpPortBound(port) {
		select {
		case <-done:
			data, _ := os.ReadFile(out.Name())
			t.Fatalf("dnsmasq exited: %s", data)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dnsmasq did not bind its port within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTablesReloadIsAtomicAndStored: a SIGHUP with a broken table is
// refused and the running tables keep routing; a good one is swapped in;
// a restart with no tables in the file routes with the stored ones; a
// gateway locked by provisioning is reported and skipped.
func TestTablesReloadIsAtomicAndStored(t *testing.T) {
	t.Parallel()
	pA, pB := freePort(t), freePort(t)
	cfg := defaultConfig()
	tables := func(port int, extra string) string {
		return gatewayTOML("gw", port, extra) + "[[analysis]]\nprefix = \"9\"\naction = \"route\"\nroute = \"gw\"\n"
	}
	cfg.Extra = tables(pA, "")
	srv := startServer(t, cfg)
	callVia := func(name string, port int) {
		t.Helper()
		g := startUAS(t, name, "uas_answer.xml", sippOpts{Port: port})
		a := trunkCall(t, srv, name, "9123", "0401111")
		r := g.wait()
		a.requireOK(t)
		r.requireOK(t)
		gwInvite(t, r, "9123", "0401111")
	}
	callVia("first-tables", pA)

	// Broken: the entry names a route that does not exist.
	cfg.Extra = tables(pB, "") + "[[analysis]]\nprefix = \"8\"\naction = \"route\"\nroute = \"nowhere\"\n"
	writeConfig(t, srv.Config, cfg, srv.Addr)
	srv.signal(syscall.SIGHUP)
	waitLog(t, srv, 5*time.Second, "provisioning refused", "no route named")
	callVia("after-refused-reload", pA)

	cfg.Extra = tables(pB, "")
	writeConfig(t, srv.Config, cfg, srv.Addr)
	srv.signal(syscall.SIGHUP)
	waitLog(t, srv, 5*time.Second, "running configuration imported from the config file")
	callVia("after-good-reload", pB)

	// No tables in the file: the running ones are kept through the
	// import of the edited file, and route after a restart.
	cfg.Extra = ""
	writeConfig(t, srv.Config, cfg, srv.Addr)
	srv.restart()
	waitLog(t, srv, 5*time.Second, "imported from the config file", "routing tables")
	callVia("stored-tables", pB)

	// Locked by provisioning: reported, and the only gateway is skipped.
	cfg.Extra = tables(pB, "locked = true")
	writeConfig(t, srv.Config, cfg, srv.Addr)
	srv.signal(syscall.SIGHUP)
	waitLog(t, srv, 5*time.Second, "gateway state", "gateway=gw", "state=locked")
	res := trunkRefused(t, srv, "locked-gateway", "9123", "0401111")
	if res.Status != 503 {
		t.Errorf("only gateway locked: %d, want 503", res.Status)
	}
	checkReason(t, "no gateway left", res, 34)
}
