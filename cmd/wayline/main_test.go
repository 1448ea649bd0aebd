package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/internal/testutil"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wayline-cmd-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "wayline")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePorts returns n loopback ports free for both tcp and udp.
func freePorts(t *testing.T, n int) []int {
	var ports []int
	for range n {
		ports = append(ports, testutil.FreePort(t))
	}
	return ports
}

// chainFile writes a topology of brokers a-b-c in a chain over transport.
func chainFile(t *testing.T, transport string) (path string, clients []string) {
	t.Helper()
	p := freePorts(t, 9)
	var b strings.Builder
	b.WriteString("name: chain\n")
	dir := t.TempDir()
	if transport == "tls" {
		cert, key, ca := testutil.WriteTestCA(t, dir, "na.cgl.c1.a", "na.cgl.c1.b", "na.cgl.c1.c")
		fmt.Fprintf(&b, "tls: {cert: %s, key: %s, ca: %s}\n", cert, key, ca)
	}
	b.WriteString("brokers:\n")
	names := []string{"na.cgl.c1.a", "na.cgl.c1.b", "na.cgl.c1.c"}
	for i, n := range names {
		fmt.Fprintf(&b, "  - address: %s\n    listen: [%s://127.0.0.1:%d]\n    client: 127.0.0.1:%d\n    http: 127.0.0.1:%d\n", n, transport, p[3*i], p[3*i+1], p[3*i+2])
		clients = append(clients, fmt.Sprintf("nats://127.0.0.1:%d", p[3*i+1]))
	}
	fmt.Fprintf(&b, "links:\n  - {a: %s, b: %s, transport: %s}\n  - {a: %s, b: %s, transport: %s}\n", names[0], names[1], transport, names[1], names[2], transport)
	path = filepath.Join(dir, "chain.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, clients
}

// proc is a running wayline process.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	lines  chan string
	exited chan error
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), lines: make(chan string, 1000), exited: make(chan error, 1)}
	// Its working directory is its own: the demo's aggregator keeps its
	// data in wayline.db there.
	p.cmd.Dir = t.TempDir()
	stdout, _ := p.cmd.StdoutPipe()
	p.cmd.Stderr = &lockedWriter{p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("stderr of %v:\n%s", args, p.stderr())
		}
	})
	return p
}

type lockedWriter struct{ p *proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitLine waits for a stdout line matching re.
func (p *proc) waitLine(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("process ended before printing %q", re)
			}
			if rx.MatchString(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line matching %q", re)
		}
	}
}

func (p *proc) stop(t *testing.T, sig os.Signal) error {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("process did not stop")
		return nil
	}
}

func connect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// exercise checks pub/sub, request/reply and queue groups across a chain
// whose client URLs are given in order a, b, c.
func exercise(t *testing.T, clients []string) {
	t.Helper()
	sub := connect(t, clients[2])
	ch := make(chan *nats.Msg, 10)
	sub.ChanSubscribe("orders.>", ch)
	sub.Subscribe("svc.time", func(m *nats.Msg) { m.Respond([]byte("reply:" + string(m.Data))) })
	var qmu sync.Mutex
	got := 0
	for _, u := range clients {
		connect(t, u).QueueSubscribe("jobs", "workers", func(*nats.Msg) { qmu.Lock(); got++; qmu.Unlock() })
	}
	sub.Flush()
	pub := connect(t, clients[0])
	// Wait until interest has crossed the chain.
	deadline := time.Now().Add(15 * time.Second)
	for {
		pub.Publish("orders.eu.1", []byte("hello"))
		pub.Flush()
		select {
		case m := <-ch:
			if string(m.Data) != "hello" || m.Subject != "orders.eu.1" {
				t.Fatalf("got %q on %s", m.Data, m.Subject)
			}
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("message never reached C")
			}
			continue
		}
		break
	}
	for i := range 5 {
		nc := connect(t, clients[0])
		m, err := nc.Request("svc.time", []byte(fmt.Sprint(i)), 3*time.Second)
		if err != nil || string(m.Data) != fmt.Sprintf("reply:%d", i) {
			t.Fatalf("request %d: %v %v", i, m, err)
		}
		nc.Close()
	}
	mid := connect(t, clients[1])
	time.Sleep(300 * time.Millisecond) // queue interest everywhere
	for range 50 {
		mid.Publish("jobs", nil)
	}
	mid.Flush()
	time.Sleep(500 * time.Millisecond)
	qmu.Lock()
	defer qmu.Unlock()
	if got != 50 {
		t.Fatalf("queue group got %d deliveries for 50 messages", got)
	}
}

func TestDemoWithTopology(t *testing.T) {
	path, clients := chainFile(t, "tcp")
	p := start(t, "demo", "--topology", path)
	p.waitLine(t, `Press Ctrl-C`)
	exercise(t, clients)
	if err := p.stop(t, os.Interrupt); err != nil {
		t.Fatalf("demo exited with %v", err)
	}
}

func TestBrokersAsSeparateProcesses(t *testing.T) {
	for _, tr := range []string{"tcp", "tls", "udp", "ws", "quic"} {
		t.Run(tr, func(t *testing.T) {
			path, clients := chainFile(t, tr)
			var procs []*proc
			for _, a := range []string{"na.cgl.c1.a", "na.cgl.c1.b", "na.cgl.c1.c"} {
				p := start(t, "broker", "--topology", path, "--address", a)
				p.waitLine(t, "^broker "+regexp.QuoteMeta(a))
				procs = append(procs, p)
			}
			exercise(t, clients)
			// SIGTERM: clients are told and the peers see the links close.
			closed := make(chan struct{})
			connect(t, clients[1], nats.ClosedHandler(func(*nats.Conn) { close(closed) }), nats.NoReconnect())
			if err := procs[1].stop(t, syscall.SIGTERM); err != nil {
				t.Fatalf("broker exited with %v", err)
			}
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("client of the stopped broker was not told")
			}
			time.Sleep(200 * time.Millisecond)
			if !strings.Contains(procs[0].stderr(), "link closed by peer") {
				t.Fatalf("A did not see B close its link:\n%s", procs[0].stderr())
			}
		})
	}
}

// TestDefaultDemo runs the built-in network on free ports, as a second
// demo beside the one a user may run: messages cross it; the expected
// start-up retries are not logged as news; its data is in a temporary
// directory, said in the banner, that goes when it stops.
func TestDefaultDemo(t *testing.T) {
	p := start(t, "demo", "--free-ports")
	var urls []string
	for range 8 {
		l := p.waitLine(t, `clients nats://`)
		urls = append(urls, regexp.MustCompile(`nats://\S+`).FindString(l))
	}
	m := regexp.MustCompile(`^Data: kept in (\S+), removed when the demo stops`).FindStringSubmatch(p.waitLine(t, `^Data: `))
	if m == nil {
		t.Fatal("the banner does not say where the data is")
	}
	if _, err := os.Stat(m[1]); err != nil {
		t.Fatalf("the demo's data directory: %v", err)
	}
	p.waitLine(t, `sample traffic: na.cgl.c1.a publishes demo.ticks`)
	p.waitLine(t, `Press Ctrl-C`)
	sub := connect(t, urls[7])
	ch := make(chan *nats.Msg, 1)
	sub.ChanSubscribe("demo.>", ch)
	sub.Flush()
	pub := connect(t, urls[0])
	deadline := time.Now().Add(15 * time.Second)
	for crossed := false; !crossed; {
		pub.Publish("demo.x", []byte("hi"))
		select {
		case <-ch:
			crossed = true
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("message did not cross the example network")
			}
		}
	}
	if err := p.stop(t, os.Interrupt); err != nil {
		t.Fatalf("demo exited with %v", err)
	}
	if _, err := os.Stat(m[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the demo's data directory is still there: %v", err)
	}
	if logs := p.stderr(); strings.Contains(logs, "connection refused") || strings.Contains(logs, "level=WARN msg=\"link") {
		t.Errorf("start-up retries logged as news:\n%s", logs)
	}
}

// TestDemoBesideAnother: a second demo of a network whose ports a first
// one holds stops with a way out; with --free-ports it runs, and prints
// where. (--port-offset is TestOffsetPorts': the ports it moves to may
// not be free.)
func TestDemoBesideAnother(t *testing.T) {
	path, clients := chainFile(t, "tcp")
	first := start(t, "demo", "--topology", path, "--no-sample-traffic")
	first.waitLine(t, `Press Ctrl-C`)
	out, err := exec.Command(binary, "demo", "--topology", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") || !strings.Contains(string(out), "--free-ports") {
		t.Fatalf("a second demo on the same ports: %v\n%s", err, out)
	}
	second := start(t, "demo", "--topology", path, "--free-ports", "--no-sample-traffic")
	var urls []string
	for range 3 {
		urls = append(urls, regexp.MustCompile(`nats://\S+`).FindString(second.waitLine(t, `clients nats://`)))
	}
	second.waitLine(t, `Press Ctrl-C`)
	if slices.ContainsFunc(urls, func(u string) bool { return slices.Contains(clients, u) }) {
		t.Fatalf("the second demo's clients %v share ports with the first's %v", urls, clients)
	}
	exercise(t, urls)
	if err := second.stop(t, os.Interrupt); err != nil {
		t.Fatalf("second demo exited with %v", err)
	}
	first.stop(t, os.Interrupt)
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	good := "name: x\nbrokers:\n  - {address: na.a, listen: [tcp://127.0.0.1:7101], client: 127.0.0.1:4301, http: 127.0.0.1:8301}\n  - {address: na.b, listen: [tcp://127.0.0.1:7201, mem://b], client: 127.0.0.1:4302, http: 127.0.0.1:8302}\n"
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown transport", []string{"broker", "--topology", write("t1.yaml", good+"links:\n  - {a: na.a, b: na.b, transport: sctp}\n"), "--address", "na.a"}, 1, []string{"links[0]", "transport", "sctp"}},
		{"link to unknown broker", []string{"demo", "--topology", write("t2.yaml", good+"links:\n  - {a: na.a, b: na.zz, transport: tcp}\n")}, 1, []string{"links[0]", "na.zz"}},
		{"duplicate address", []string{"demo", "--topology", write("t3.yaml", good+"  - {address: na.a, client: 127.0.0.1:4309, http: 127.0.0.1:8309}\n")}, 1, []string{"brokers[2]", "address", "duplicate"}},
		{"port given twice", []string{"demo", "--topology", write("t4.yaml", good+"  - {address: na.c, client: 127.0.0.1:4301, http: 127.0.0.1:8309}\n")}, 1, []string{"brokers[2]", "client", "127.0.0.1:4301"}},
		{"mem across processes", []string{"broker", "--topology", write("t5.yaml", good+"links:\n  - {a: na.a, b: na.b, transport: mem}\n"), "--address", "na.a"}, 1, []string{"mem transport", "wayline demo"}},
		{"broker not in file", []string{"broker", "--topology", write("t6.yaml", good), "--address", "na.q"}, 1, []string{"na.q", "not in topology"}},
		{"missing file", []string{"demo", "--topology", filepath.Join(dir, "nope.yaml")}, 1, []string{"nope.yaml"}},
		{"unknown command", []string{"fly"}, 2, []string{"unknown command"}},
		{"missing flags", []string{"broker"}, 2, []string{"--topology and --address are required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, tc.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// TestHelp: --help prints to stdout and exits 0, the command list is
// aligned, only commands that change something take --token, and the
// token in the environment is never printed.
func TestHelp(t *testing.T) {
	help := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "WAYLINE_ADMIN_TOKEN=not-to-be-shown")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || !strings.Contains(string(out), "Usage: wayline") || strings.Contains(string(out), "not-to-be-shown") {
			t.Fatalf("%v: %v; stdout:\n%s\nstderr:\n%s", args, err, out, stderr.String())
		}
		return string(out)
	}
	for _, args := range [][]string{{"demo", "--help"}, {"broker", "--help"}, {"bench", "overlay", "--help"}, {"bench", "--help"}, {"query", "--help"}, {"aggregator", "--help"}, {"version", "--help"}} {
		help(args...)
	}
	top := help("--help")
	col := -1
	for l := range strings.Lines(top[strings.Index(top, "Commands:"):]) {
		if !strings.HasPrefix(l, "  ") {
			continue
		}
		name := strings.Fields(l)[0]
		at := strings.Index(l[len("  ")+len(name):], strings.Fields(l)[1]) + len("  ") + len(name)
		if col >= 0 && at != col {
			t.Errorf("the command list is not aligned at %q:\n%s", name, top)
		}
		col = at
	}
	for cmd, token := range map[string]bool{"links": false, "routes": false, "emulate": true, "monitor": true, "query": true, "aggregator": true} {
		if got := strings.Contains(help(cmd, "--help"), "-token"); got != token {
			t.Errorf("%s --help offers --token: %v, want %v", cmd, got, token)
		}
	}
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "wayline ") || !strings.Contains(string(out), "nats-server 2.") {
		t.Errorf("version: %v\n%s", err, out)
	}
	// A mistake goes to stderr, with the usage, and exits 2.
	cmd := exec.Command(binary, "links", "--bogus")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || len(out) > 0 || !strings.Contains(stderr.String(), "Usage: wayline links") {
		t.Errorf("a bad flag: %v; stdout %q; stderr:\n%s", err, out, stderr.String())
	}
	cmd = exec.Command(binary, "bench", "overlay", "--slices", "-1")
	stderr.Reset()
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || len(out) > 0 || !strings.Contains(stderr.String(), "--slices must not be negative") {
		t.Errorf("bench overlay --slices -1: %v; stdout %q; stderr:\n%s", err, out, stderr.String())
	}
	// bench contracts checks --probe and --window as the topology checks
	// the monitoring block's interval and distribution_window.
	for _, c := range []struct{ flag, value, want string }{
		{"--window", "100", "below the window's 256"},
		{"--window", "70000", "want 16 to 65536"},
		{"--probe", "5ms", "interval: \"5ms\" is not a duration from 10ms"},
	} {
		cmd = exec.Command(binary, "bench", "contracts", "--model-only", c.flag, c.value)
		stderr.Reset()
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || len(out) > 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("bench contracts %s %s: %v; stdout %q; stderr:\n%s", c.flag, c.value, err, out, stderr.String())
		}
	}
}

// TestKilledBrokerRecovers kills the middle broker outright (no goodbye on
// its links), checks that its neighbours notice, restarts it, and checks
// that traffic flows again.
func TestKilledBrokerRecovers(t *testing.T) {
	path, clients := chainFile(t, "tcp")
	var procs []*proc
	var https []string
	for _, a := range []string{"na.cgl.c1.a", "na.cgl.c1.b", "na.cgl.c1.c"} {
		p := start(t, "broker", "--topology", path, "--address", a)
		l := p.waitLine(t, "^broker "+regexp.QuoteMeta(a))
		https = append(https, regexp.MustCompile(`http://\S+`).FindString(l))
		procs = append(procs, p)
	}
	exercise(t, clients)
	procs[1].cmd.Process.Kill()
	<-procs[1].exited
	waitHTTP(t, https[0]+"/api/routes", "[]")
	procs[1] = start(t, "broker", "--topology", path, "--address", "na.cgl.c1.b")
	procs[1].waitLine(t, "^broker na.cgl.c1.b")
	sub := connect(t, clients[2])
	ch := make(chan *nats.Msg, 100)
	sub.ChanSubscribe("after.kill", ch)
	sub.Flush()
	pub := connect(t, clients[0])
	deadline := time.Now().Add(20 * time.Second)
	for {
		pub.Publish("after.kill", []byte("back"))
		select {
		case <-ch:
			return
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("traffic did not recover after the restart")
			}
		}
	}
}

// waitHTTP polls url until its body, with white space removed, is want.
func waitHTTP(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = strings.Join(strings.Fields(string(b)), "")
			if last == want {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %q, want %q", url, last, want)
}

// TestLinksEmulateMonitor drives a demo network's link measurement from
// the command line: the declared conditions show in `wayline links`, an
// outage set with `wayline emulate` takes the link down, and `wayline
// monitor` changes the probe interval.
func TestLinksEmulateMonitor(t *testing.T) {
	p := freePorts(t, 6)
	topo := fmt.Sprintf(`name: wan
monitoring: {interval: 50ms}
brokers:
  - {address: na.a, listen: [udp://127.0.0.1:%d], client: 127.0.0.1:%d, http: 127.0.0.1:%d}
  - {address: eu.b, listen: [udp://127.0.0.1:%d], client: 127.0.0.1:%d, http: 127.0.0.1:%d}
links:
  - {a: na.a, b: eu.b, transport: udp, emulate: {delay: 45ms, jitter: 3ms, loss: 1%%}}
`, p[0], p[1], p[2], p[3], p[4], p[5])
	path := filepath.Join(t.TempDir(), "wan.yaml")
	os.WriteFile(path, []byte(topo), 0o644)
	demo := start(t, "demo", "--topology", path)
	tokenLine := demo.waitLine(t, "Admin token for this run")
	token := tokenLine[strings.LastIndex(tokenLine, " ")+1:]
	demo.waitLine(t, "Press Ctrl-C")
	broker := fmt.Sprintf("http://127.0.0.1:%d", p[2])
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var row []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := run("links", "--broker", broker)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.HasPrefix(lines[0], "LINK") || len(lines) != 2 {
			t.Fatalf("links printed:\n%s", out)
		}
		row = strings.Fields(lines[1])
		// LINK PEER TRANSPORT STATE RTT LATENCY P99 JITTER LOSS SAMPLES ...
		if n, _ := strconv.Atoi(row[9]); n >= 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("too few samples:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	lat, _ := strconv.ParseFloat(row[5], 64)
	if row[1] != "eu.b" || row[2] != "udp" || row[3] != "up" || lat < 40 || lat > 50 {
		t.Fatalf("link row %v, want eu.b udp up with about 45 ms", row)
	}
	var links []struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(run("links", "--broker", broker, "--json")), &links)
	id := links[0].ID

	// The demo's brokers take the token it printed, and no other.
	for _, tok := range []string{"", "wrong"} {
		out, err := exec.Command(binary, "emulate", "--broker", broker, "--link", id, "--down", "--token", tok).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "401") {
			t.Fatalf("emulate with token %q: %v\n%s", tok, err, out)
		}
	}
	// The 8 characters 'wayline links' prints name the link.
	out := run("emulate", "--broker", broker, "--link", id[:8], "--down", "--token", token)
	if !strings.Contains(out, `"down":true`) {
		t.Fatalf("emulate printed %s", out)
	}
	waitHTTP(t, broker+"/healthz", "ok")
	waitFor(t, func() bool { return strings.Contains(run("links", "--broker", broker), " down ") })
	run("emulate", "--broker", broker, "--link", id, "--up", "--delay", "10ms", "--token", token)
	waitFor(t, func() bool { return strings.Contains(run("links", "--broker", broker), " up ") })

	out = run("routes", "--broker", broker)
	if !strings.Contains(out, "default  eu.b ") || !strings.Contains(out, "na.a > eu.b") {
		t.Fatalf("routes printed:\n%s", out)
	}
	if _, err := exec.Command(binary, "routes", "--broker", broker, "--profile", "nope").CombinedOutput(); err == nil {
		t.Fatal("an unknown profile was accepted")
	}

	out = run("monitor", "--broker", broker, "--link", id[:8], "--interval", "250ms", "--token", token)
	if !strings.Contains(out, "every 250ms") {
		t.Fatalf("monitor printed %s", out)
	}
	bad := exec.Command(binary, "monitor", "--broker", broker, "--interval", "1ms", "--token", token)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "outside") {
		t.Fatalf("an interval of 1ms was accepted: %s", out)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 15s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAggregatorAndQuery runs an aggregator as its own process against a
// network's broker, with a rules file, and asks it questions with
// 'wayline query': on the latest reports, on stored history, and a query
// that does not parse.
func TestAggregatorAndQuery(t *testing.T) {
	path, clients := chainFile(t, "tcp")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "admin: {token: agg-cli-token}\nreports: {interval: 200ms}\n")
	f.Close()
	demo := start(t, "demo", "--topology", path)
	demo.waitLine(t, `Press Ctrl-C`)

	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte("retention: 1h\nrules:\n  - when: \"//link[@loss > 0.9]\"\n    do: {interval: 250ms}\n    undo: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	agg := start(t, "aggregator", "--domain", "*", "--broker", clients[0], "--token", "agg-cli-token",
		"--db", "sqlite:"+filepath.Join(dir, "agg.db"), "--http", addr, "--config", rules)
	agg.waitLine(t, `^aggregator \*: http http://`+regexp.QuoteMeta(addr))

	// The aggregator is not --public: queries need the token.
	query := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append([]string{"query", "--aggregator", "http://" + addr, "--token", "agg-cli-token"}, args...)...).CombinedOutput()
		return string(out), err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := query("count(//broker)")
		if err == nil && strings.Contains(out, `type="number">3<`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the aggregator never heard all three brokers: %v\n%s\n%s", err, out, agg.stderr())
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := query("//link/@id")
	if err != nil || strings.Count(out, "<attribute name=\"id\"") != 4 { // two links, each reported by both ends
		t.Fatalf("link ids: %v\n%s", err, out)
	}
	out, err = query("--from", "1m", "count(//sample) > 3")
	if err != nil || !strings.Contains(out, `type="boolean">true<`) {
		t.Fatalf("history: %v\n%s", err, out)
	}
	out, err = query("//link[")
	if err == nil || !strings.Contains(out, "400") {
		t.Fatalf("a query that does not parse: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "query", "--aggregator", "http://"+addr, "--token", "", "count(//broker)").CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Fatalf("a query without the token: %v\n%s", err, out)
	}
	if err := agg.stop(t, os.Interrupt); err != nil {
		t.Fatalf("aggregator exited with %v", err)
	}
	demo.stop(t, os.Interrupt)
}

func TestParseRetention(t *testing.T) {
	for s, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "168h": 168 * time.Hour, "90m": 90 * time.Minute, "1d": 24 * time.Hour} {
		if got, err := parseRetention(s); err != nil || got != want {
			t.Errorf("parseRetention(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "0d", "-1d", "xd", "7", "0s", "-5h", "40000d", "d"} {
		if _, err := parseRetention(bad); err == nil {
			t.Errorf("parseRetention(%q): no error", bad)
		}
	}
}

// TestDemoChaos: with --chaos the demo takes the link between two clusters
// down and brings it back, again and again, and the sample traffic
// between them comes back each time.
func TestDemoChaos(t *testing.T) {
	p := freePorts(t, 6)
	topo := fmt.Sprintf(`name: chaos
monitoring: {preset: wan, interval: 50ms}
brokers:
  - {address: na.c1.a, listen: [tcp://127.0.0.1:%d], client: 127.0.0.1:%d, http: 127.0.0.1:%d}
  - {address: na.c2.a, listen: [tcp://127.0.0.1:%d], client: 127.0.0.1:%d, http: 127.0.0.1:%d}
links:
  - {a: na.c1.a, b: na.c2.a, transport: tcp}
`, p[0], p[1], p[2], p[3], p[4], p[5])
	path := filepath.Join(t.TempDir(), "chaos.yaml")
	if err := os.WriteFile(path, []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	demo := start(t, "demo", "--topology", path, "--chaos", "--chaos-every", "1s")
	demo.waitLine(t, `sample traffic: na.c1.a publishes demo.ticks`)
	for range 2 {
		demo.waitLine(t, `chaos: link \S+ \(na.c1.a - na.c2.a\) down`)
		demo.waitLine(t, `chaos: link \S+ \(na.c1.a - na.c2.a\) up again`)
	}
	sub := connect(t, fmt.Sprintf("nats://127.0.0.1:%d", p[4]))
	ch := make(chan *nats.Msg, 64)
	sub.ChanSubscribe("demo.ticks", ch)
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		t.Fatal("no sample traffic reached the second cluster")
	}
	if err := demo.stop(t, os.Interrupt); err != nil {
		t.Fatalf("demo exited with %v", err)
	}
}
