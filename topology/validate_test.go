package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/router"
)

// two is a valid pair of brokers, a and b, for the bad cases to extend.
var two = "brokers: [" + brokerYAML("a", 1) + ", " + brokerYAML("b", 2) + "]\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{"empty", "", []string{"empty file"}},
		{"syntax", "name: x\n\tbrokers: []\n", []string{"line 2: found a tab character"}},
		{"unknown field", "brokers:\n  - address: a\n    clinet: 127.0.0.1:1\n", []string{"line 3", "field clinet not found"}},
		{"two documents", two + "---\n" + two, []string{"line 2: a second YAML document"}},
		{"no brokers", "name: x\n", []string{"brokers: at least one broker is required"}},
		{"monitoring windows", "monitoring: {window: 8, distribution_window: 100000}\n" + two,
			[]string{"monitoring: window: 8 probes: want 16 to 16384"}},
		{"distribution window too large", "monitoring: {distribution_window: 100000}\n" + two,
			[]string{"monitoring: distribution_window: 100000 probes: want 16 to 65536"}},
		{"distribution window below the window", "monitoring: {window: 1024, distribution_window: 512}\n" + two,
			[]string{"monitoring: distribution_window: 512 probes, below the window's 1024"}},
		{"short secret", "secret: s3cret\nbrokers: [" + brokerYAML("a", 1) + "]",
			[]string{"secret: 6 bytes; a network secret needs at least 16"}},
		{"address missing", "brokers: [{client: 127.0.0.1:1, http: 127.0.0.1:2}]",
			[]string{"brokers[0]: address: required"}},
		{"address invalid", "brokers: [{address: Na.b, client: 127.0.0.1:1, http: 127.0.0.1:2}]",
			[]string{`brokers[0] (Na.b): address: address "Na.b": label 1 ("Na"): character "N" at position 1`}},
		{"address duplicate", "brokers: [" + brokerYAML("a", 1) + ", {address: a, client: 127.0.0.1:9, http: 127.0.0.1:8}]",
			[]string{"brokers[1] (a): address: duplicate of brokers[0]"}},
		{"client and http missing", "brokers: [{address: a}]",
			[]string{"brokers[0] (a): client: required (host:port)", "brokers[0] (a): http: required (host:port)"}},
		{"bad ports", "brokers: [{address: a, client: 127.0.0.1, http: 127.0.0.1:0, leaf: 127.0.0.1:65536}]",
			[]string{`brokers[0] (a): client: "127.0.0.1": want host:port`,
				`brokers[0] (a): http: "127.0.0.1:0": port "0" is not a number from 1 to 65535`,
				`brokers[0] (a): leaf: "127.0.0.1:65536": port "65536"`}},
		{"bad listeners", `brokers: [{address: a, client: 127.0.0.1:1, http: 127.0.0.1:2,
  listen: [sctp://127.0.0.1:3, tcp:127.0.0.1:3, tcp://127.0.0.1, tcp://127.0.0.1:4/x, mem://, ws://u@127.0.0.1:5, "tcp://[::1"]}]`,
			[]string{`brokers[0] (a): listen[0]: "sctp://127.0.0.1:3": unknown scheme "sctp" (want one of tcp, tls, udp, ws, quic, mem)`,
				`brokers[0] (a): listen[1]: "tcp:127.0.0.1:3": want scheme://host:port`,
				`brokers[0] (a): listen[2]: "tcp://127.0.0.1": "127.0.0.1": want host:port`,
				`brokers[0] (a): listen[3]: "tcp://127.0.0.1:4/x": only ws listeners take a path`,
				`brokers[0] (a): listen[4]: "mem://": want mem://name`,
				`brokers[0] (a): listen[5]: "ws://u@127.0.0.1:5": user info, query and fragment are not allowed`,
				`brokers[0] (a): listen[6]: parse "tcp://[::1"`}},
		{"two listeners of one scheme", "brokers: [{address: a, client: 127.0.0.1:1, http: 127.0.0.1:2, listen: [udp://127.0.0.1:3, udp://127.0.0.1:4]}]",
			[]string{"brokers[0] (a): listen[1]: a second udp listener (the first is listen[0])"}},
		{"tls listener without files", "brokers: [{address: a, client: 127.0.0.1:1, http: 127.0.0.1:2, listen: [tls://127.0.0.1:3], tls: {cert: c.pem}}]",
			[]string{"brokers[0] (a): listen[0]: a tls listener needs the broker's tls cert, key and ca (missing key, ca)"}},
		{"port used twice", "brokers: [" + brokerYAML("na.cgl.c1.a", 1) + `, {address: na.cgl.c1.c, client: 127.0.0.1:4201, http: 127.0.0.1:9}]`,
			[]string{"brokers[1] (na.cgl.c1.c): client: 127.0.0.1:4201 is already used by brokers[0] (na.cgl.c1.a) client"}},
		{"port used by a listener and a socket", "brokers: [{address: a, client: 127.0.0.1:1, http: 127.0.0.1:2, listen: [ws://127.0.0.1:1/x, udp://127.0.0.1:2]}]",
			[]string{"brokers[0] (a): client: 127.0.0.1:1 is already used by brokers[0] (a) listen[0]"}},
		{"wildcard overlaps", "brokers: [{address: a, client: 127.0.0.1:1, http: 0.0.0.0:1, leaf: '[::]:2', listen: ['tcp://:2']}]",
			[]string{"brokers[0] (a): http: 0.0.0.0:1 overlaps 127.0.0.1:1 of brokers[0] (a) client",
				"brokers[0] (a): leaf: [::]:2 is already used by brokers[0] (a) listen[0]"}},
		{"mem name used twice", "brokers: [{address: a, client: 127.0.0.1:1, http: 127.0.0.1:2, listen: [mem://x]}, {address: b, client: 127.0.0.1:3, http: 127.0.0.1:4, listen: [mem://x]}]",
			[]string{"brokers[1] (b): listen[0]: mem://x is already used by brokers[0] (a) listen[0]"}},
		{"link ends", two + "links: [{b: a, transport: tcp}, {a: a, b: na.x.y, transport: tcp}, {a: b, b: b, transport: tcp}]",
			[]string{"links[0] ( -> a): a: required",
				`links[1] (a -> na.x.y): b: unknown broker "na.x.y"`,
				"links[2] (b -> b): b: same broker as a"}},
		{"link transports", two + "links: [{a: a, b: b, transport: sctp}, {a: a, b: b}, {a: a, b: b, transport: udp}]",
			[]string{`links[0] (a -> b): transport: unknown transport "sctp" (want one of tcp, tls, udp, ws, quic, mem)`,
				"links[1] (a -> b): transport: required (want one of",
				"links[2] (a -> b): transport: broker b has no udp listener"}},
		{"tls link without dialer files", `brokers:
  - {address: a, client: 127.0.0.1:1, http: 127.0.0.1:2}
  - {address: b, client: 127.0.0.1:3, http: 127.0.0.1:4, listen: [tls://127.0.0.1:5], tls: {cert: c, key: k, ca: ca}}
links: [{a: a, b: b, transport: tls}]`,
			[]string{"links[0] (a -> b): transport: broker a needs its tls cert, key and ca to dial (missing cert, key, ca)"}},
		{"quic and udp on one port", "brokers: [{address: a, client: 127.0.0.1:1, http: 127.0.0.1:2, listen: [udp://127.0.0.1:3, quic://127.0.0.1:3, tcp://127.0.0.1:4, quic://127.0.0.1:4/x]}]",
			[]string{"brokers[0] (a): listen[1]: 127.0.0.1:3 is already used by brokers[0] (a) listen[0]",
				`brokers[0] (a): listen[3]: "quic://127.0.0.1:4/x": only ws listeners take a path`}},
		{"quic link with tls files at one end", `brokers:
  - {address: a, client: 127.0.0.1:1, http: 127.0.0.1:2, tls: {cert: c, key: k}}
  - {address: b, client: 127.0.0.1:3, http: 127.0.0.1:4, listen: [quic://127.0.0.1:5], tls: {cert: c, key: k, ca: ca}}
links: [{a: a, b: b, transport: quic}]`,
			[]string{"links[0] (a -> b): transport: quic links use tls files at both ends or at neither: b has its cert, key and ca, a does not (missing ca)"}},
		{"link ids", two + `links:
  - {a: a, b: b, transport: tcp, id: not-a-uuid}
  - {a: a, b: b, transport: tcp, id: 6F9619FF-8B86-D011-B42D-00C04FC964FF}
  - {a: b, b: a, transport: mem, id: 6f9619ff-8b86-d011-b42d-00c04fc964ff}`,
			[]string{`links[0] (a -> b): id: "not-a-uuid" is not a UUID`,
				"links[2] (b -> a): id: 6f9619ff-8b86-d011-b42d-00c04fc964ff is also the id of links[1]"}},
		{"routing margin 100%", two + "routing: {margin: 100%}",
			[]string{"routing: margin: 100%: want more than 0% and less than 100%"}},
		{"routing loss window", two + "routing: {loss_window: -1}",
			[]string{"routing: loss_window: -1 probes: want 1 to 4096"}},
		{"routing margin", two + "routing: {margin: 0%}",
			[]string{"routing: margin: 0%: want more than 0% and less than 100%"}},
		{"contract without subject", two + "routing: {contracts: [{within: [{p: 99, ms: 100}]}]}",
			[]string{"routing: contracts[0]: subject: required"}},
		{"contract bad subject", two + "routing: {contracts: [{subject: 'a.>.b', within: [{p: 99, ms: 100}]}]}",
			[]string{`routing: contracts[0] (a.>.b): subject: "a.>.b" is not a subject or pattern`}},
		{"contract without bounds", two + "routing: {contracts: [{subject: t.>}]}",
			[]string{"routing: contracts[0] (t.>): no bound: give within"}},
		{"contract p of 100", two + "routing: {contracts: [{subject: t.>, within: [{p: 100, ms: 100}]}]}",
			[]string{"routing: contracts[0] (t.>): within[0]: p 100% is not between 0 and 100"}},
		{"contract falling bounds", two + "routing: {contracts: [{subject: t.>, within: [{p: 50, ms: 100}, {p: 99, ms: 50}]}]}",
			[]string{"routing: contracts[0] (t.>): within[1]: bounds must rise"}},
		{"contract loss", two + "routing: {contracts: [{subject: t.>, within: [{p: 50, ms: 10}], max_loss: 150%}]}",
			[]string{"routing: contracts[0] (t.>): max_loss:"}},
		{"contract twice", two + "routing: {contracts: [{subject: t.>, within: [{p: 50, ms: 10}]}, {subject: t.>, within: [{p: 50, ms: 10}]}]}",
			[]string{"routing: contracts[1] (t.>): subject given twice"}},
		{"contract unknown field", two + "routing: {contracts: [{subject: t.>, within: [{p: 50, ms: 10, q: 1}]}]}",
			[]string{"q"}},
		{"profile named contract", two + "routing: {profiles: [{name: contract, latency: 1}]}",
			[]string{`"contract" names the routes of delay contracts`}},
		{"priority class", two + `routing: {priorities: [{subject: "alerts.>", class: urgent}]}`,
			[]string{`routing: priorities[0] (alerts.>): class: unknown priority class "urgent" (want high, normal or low)`}},
		{"priority subject", two + `routing: {priorities: [{subject: "alerts.>", class: high}, {subject: "a.>.b", class: low}]}`,
			[]string{`routing: priorities[1]: subject: "a.>.b" is not a subject pattern`}},
		{"priority no subject", two + `routing: {priorities: [{class: low}]}`,
			[]string{`routing: priorities[0]: subject: "" is not a subject pattern`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", f)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

// TestErrorsJoined checks that every problem is reported, one per line,
// and that causes stay reachable with errors.Is.
func TestErrorsJoined(t *testing.T) {
	_, err := Parse([]byte("brokers: [{address: A, client: x}, {address: b}]\nlinks: [{a: b, b: c, transport: tcp}]"))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 6 {
		t.Errorf("%d lines, want 6:\n%v", n, err)
	}
	if !errors.Is(err, router.ErrBadAddress) {
		t.Errorf("error does not wrap router.ErrBadAddress: %v", err)
	}
}

func TestLoadBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(two+"links: [{a: a, b: z, transport: tcp}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+`: links[0] (a -> z): b: unknown broker "z"`) {
		t.Errorf("Load: %v", err)
	}
}

// udpPair is a file of two brokers and a udp link between them, the
// link's fields last, so that a test can add one.
const udpPair = `brokers:
  - {address: na.a, listen: [udp://127.0.0.1:7101], client: 127.0.0.1:4301, http: 127.0.0.1:8301}
  - {address: na.b, listen: [udp://127.0.0.1:7201], client: 127.0.0.1:4302, http: 127.0.0.1:8302}
links:
  - a: na.a
    b: na.b
    transport: udp
`

func TestEmulateField(t *testing.T) {
	base := udpPair + "    emulate: "
	f, err := Parse([]byte(base + "{delay: 45ms, jitter: 3ms, loss: 1%}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := f.Links[0].Emulation()
	if e == nil || e.Delay != 45*time.Millisecond || e.Jitter != 3*time.Millisecond || e.Loss != 0.01 {
		t.Fatalf("emulation %+v", e)
	}
	if f, _ := Parse([]byte(strings.Replace(base, "    emulate: ", "", 1) + "\n")); f == nil || f.Links[0].Emulation() != nil {
		t.Fatal("a link without emulate is emulated")
	}
	for bad, want := range map[string]string{
		"{delay: soon}": "links[0]", "{loss: 200%}": "links[0]", "{jitter_dist: cauchy}": "links[0]",
		"{latency: 4ms}": "line 8: field latency not found",
	} {
		_, err := Parse([]byte(base + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", bad, err, want)
		}
	}
}

func TestRateField(t *testing.T) {
	base := udpPair
	f, err := Parse([]byte(base + "    rate: 1Mbit\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.Links[0].RateBits(); r != 1_000_000 {
		t.Fatalf("rate %d bit/s, want 1000000", r)
	}
	if f, _ := Parse([]byte(base)); f == nil || f.Links[0].RateBits() != 0 {
		t.Fatal("a link without rate is paced")
	}
	for _, bad := range []string{"fast", "-1Mbit", "100bit"} {
		_, err := Parse([]byte(base + "    rate: " + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "links[0] (na.a -> na.b): rate") {
			t.Errorf("rate %s: error %v, want one naming the link's rate", bad, err)
		}
	}
}

// TestMonitorWindows: the windows of the file's monitoring block reach
// every link's monitor, and a link's own block overrides them.
func TestMonitorWindows(t *testing.T) {
	f, err := Parse([]byte("monitoring: {window: 512, distribution_window: 4096}\n" + two))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.MonitorConfig(Link{})
	if err != nil || cfg.Window != 512 || cfg.DistWindow != 4096 {
		t.Fatalf("monitor config %+v, %v: want windows 512 and 4096", cfg, err)
	}
	cfg, err = f.MonitorConfig(Link{Monitor: &Monitoring{Window: 128}})
	if err != nil || cfg.Window != 128 || cfg.DistWindow != 4096 {
		t.Fatalf("a link's window 128: monitor config %+v, %v", cfg, err)
	}
	if _, err := f.MonitorConfig(Link{Monitor: &Monitoring{Window: 8192}}); err == nil || !strings.Contains(err.Error(), "below the window's 8192") {
		t.Fatalf("a link's window above the file's distribution window: %v", err)
	}
	def, _ := (&File{}).MonitorConfig(Link{})
	if def.Window != 256 || def.DistWindow != 2048 {
		t.Fatalf("default windows %d and %d, want 256 and 2048", def.Window, def.DistWindow)
	}
}
