package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/router"
	"go.yaml.in/yaml/v3"
)

var uuidV5Shape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func load(t *testing.T, name string) *File {
	t.Helper()
	f, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadGood(t *testing.T) {
	tests := []struct {
		file           string
		name           string
		brokers, links int
	}{
		{"chain.yaml", "chain", 3, 3},
		{"tls.yaml", "secure", 2, 1},
		{"mem.yaml", DefaultName, 3, 4},
		{"quic.yaml", "ocean", 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f := load(t, tt.file)
			if f.Name != tt.name || len(f.Brokers) != tt.brokers || len(f.Links) != tt.links {
				t.Errorf("name %q, %d brokers, %d links; want %q, %d, %d",
					f.Name, len(f.Brokers), len(f.Links), tt.name, tt.brokers, tt.links)
			}
			for i, l := range f.Links {
				if _, err := l.DialURL(f); err != nil {
					t.Errorf("links[%d]: %v", i, err)
				}
			}
		})
	}
}

func TestChain(t *testing.T) {
	f := load(t, "chain.yaml")
	a, ok := f.Broker("na.cgl.c1.a")
	if !ok {
		t.Fatal("broker na.cgl.c1.a not found")
	}
	want := Broker{
		Address: "na.cgl.c1.a",
		Listen:  []string{"tcp://127.0.0.1:7101", "udp://127.0.0.1:7101", "ws://127.0.0.1:7102/overlay"},
		Client:  "127.0.0.1:4301",
		HTTP:    "127.0.0.1:8301",
	}
	if got, _ := yaml.Marshal(a); string(got) != string(must(yaml.Marshal(want))) {
		t.Errorf("broker a:\n%s\nwant\n%s", got, must(yaml.Marshal(want)))
	}
	if _, ok := f.Broker("na.cgl.c1.z"); ok {
		t.Error("found broker na.cgl.c1.z")
	}
	if u, ok := a.ListenURL("udp"); !ok || u != "udp://127.0.0.1:7101" {
		t.Errorf("ListenURL(udp) = %q, %v", u, ok)
	}
	if u, ok := a.ListenURL("tls"); ok {
		t.Errorf("ListenURL(tls) = %q, want none", u)
	}
	for i, want := range []string{"tcp://127.0.0.1:7201", "udp://127.0.0.1:7301", "ws://127.0.0.1:7102/overlay"} {
		if got, err := f.Links[i].DialURL(f); err != nil || got != want {
			t.Errorf("links[%d].DialURL() = %q, %v; want %q", i, got, err, want)
		}
	}
	if got := f.LinksOf("na.cgl.c1.b"); len(got) != 2 || got[0].B != "na.cgl.c1.b" || got[1].A != "na.cgl.c1.b" {
		t.Errorf("LinksOf(b) = %+v", got)
	}
	if got := f.LinksOf("na.cgl.c1"); len(got) != 0 {
		t.Errorf("LinksOf(na.cgl.c1) = %+v, want none", got)
	}
}

func testdataFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestLinkIDs(t *testing.T) {
	chain := load(t, "chain.yaml")
	again := load(t, "chain.yaml")
	for i, l := range chain.Links[:2] {
		if !uuidV5Shape.MatchString(l.ID) {
			t.Errorf("links[%d]: derived ID %q is not a version 5 UUID", i, l.ID)
		}
		if again.Links[i].ID != l.ID {
			t.Errorf("links[%d]: ID %q, then %q", i, l.ID, again.Links[i].ID)
		}
	}
	if got, want := chain.Links[2].ID, "6f9619ff-8b86-d011-b42d-00c04fc964ff"; got != want {
		t.Errorf("given ID = %q, want it lower-cased: %q", got, want)
	}
	mem := load(t, "mem.yaml")
	seen := make(map[string]bool)
	for i, l := range mem.Links {
		if seen[l.ID] {
			t.Errorf("links[%d]: ID %s used twice", i, l.ID)
		}
		seen[l.ID] = true
	}
	// The ID depends on the link, not on its place among other links.
	moved := `brokers: [` + brokerYAML("x", 1) + `, ` + brokerYAML("na.cgl.c1.a", 2) + `, ` + brokerYAML("na.cgl.c1.b", 3) + `]
links: [{a: x, b: na.cgl.c1.b, transport: tcp}, {a: na.cgl.c1.a, b: na.cgl.c1.b, transport: tcp}]`
	f, err := Parse([]byte(moved))
	if err != nil {
		t.Fatal(err)
	}
	if f.Links[1].ID != chain.Links[0].ID {
		t.Errorf("same link, other file: ID %s, want %s", f.Links[1].ID, chain.Links[0].ID)
	}
}

// brokerYAML returns a valid broker in flow style; n picks its ports.
func brokerYAML(addr string, n int) string {
	r := strings.NewReplacer("ADDR", addr, "N", string(rune('0'+n)))
	return r.Replace(`{address: ADDR, listen: [tcp://127.0.0.1:710N, mem://ADDR], client: 127.0.0.1:420N, http: 127.0.0.1:830N}`)
}

func TestUUIDv5(t *testing.T) {
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	if got, want := uuidV5(dns, "python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d"; got != want {
		t.Errorf("uuidV5(DNS, python.org) = %s, want %s", got, want)
	}
	for _, s := range []string{"", "6f9619ff8b86d011b42d00c04fc964ff", "6f9619ff-8b86-d011-b42d-00c04fc964fg", "{6f9619ff-8b86-d011-b42d-00c04fc964ff}"} {
		if _, err := parseUUID(s); err == nil {
			t.Errorf("parseUUID(%q) succeeded", s)
		}
	}
}

func TestLoadResolvesTLSPaths(t *testing.T) {
	f := load(t, "tls.yaml")
	dir := filepath.Join("testdata", "certs")
	want := map[router.Address]TLSFiles{
		"eu.x": {Cert: filepath.Join(dir, "x.pem"), Key: filepath.Join(dir, "x-key.pem"), CA: filepath.Join(dir, "ca.pem")},
		"eu.y": {Cert: "/etc/wayline/y.pem", Key: filepath.Join(dir, "y-key.pem"), CA: "/etc/wayline/ca.pem"},
	}
	for addr, w := range want {
		b, _ := f.Broker(addr)
		if *b.TLS != w {
			t.Errorf("%s: tls %+v, want %+v", addr, *b.TLS, w)
		}
	}
	parsed, err := Parse(must(testdataFile("tls.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := parsed.Broker("eu.x"); b.TLS.CA != "certs/ca.pem" {
		t.Errorf("Parse resolved a path: %+v", *b.TLS)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join("testdata", "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Load(missing.yaml): %v", err)
	}
}

func TestReports(t *testing.T) {
	base := "brokers:\n  - {address: na.c1.a, client: 127.0.0.1:4222, http: 127.0.0.1:8222}\n"
	f, err := Parse([]byte("reports: {interval: 2s, max_queued: 10, max_queued_bytes: 4096}\n" + base))
	if err != nil {
		t.Fatal(err)
	}
	if every, n, size, err := f.Reports.ReportSettings(); err != nil || every != 2*time.Second || n != 10 || size != 4096 {
		t.Errorf("reports: %v %d %d %v", every, n, size, err)
	}
	f, err = Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if every, n, size, err := f.Reports.ReportSettings(); err != nil || every != 0 || n != 0 || size != 0 {
		t.Errorf("no reports block: %v %d %d %v", every, n, size, err)
	}
	for _, bad := range []string{"{interval: 10ms}", "{interval: 2h}", "{interval: soon}", "{max_queued: -1}", "{every: 5s}"} {
		if _, err := Parse([]byte("reports: " + bad + "\n" + base)); err == nil {
			t.Errorf("reports %s: no error", bad)
		}
	}
}

func TestRoutingSettings(t *testing.T) {
	f, err := Parse([]byte(two + "routing: {margin: 15%, loss_window: 512, hold_down: 2s, delay_shift: 5%}"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Routing.Settings()
	if err != nil || s.Margin != 0.15 || s.LossWindow != 512 || s.HoldDown != 2*time.Second || s.DelayShift != 0.05 {
		t.Fatalf("settings %+v %v", s, err)
	}
	for _, bad := range []string{"0%", "100%", "-3%", "three"} {
		f, err := Parse([]byte(two + "routing: {delay_shift: " + bad + "}"))
		if err == nil {
			_, err = f.Routing.Settings()
		}
		if err == nil || !strings.Contains(err.Error(), "delay_shift") {
			t.Errorf("delay_shift %s: error %v", bad, err)
		}
	}
	f, err = Parse([]byte(two + `routing:
  contracts:
    - subject: "trade.>"
      within: [{p: 50, ms: 20}, {p: 95, ms: 50}, {p: 99, ms: 100}]
      max_loss: 0.1%
    - {subject: "ops.*", within: [{p: 90, ms: 500}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err = f.Routing.Settings()
	want := []SubjectContract{
		{Subject: "trade.>", Contract: router.Contract{Within: []router.Bound{{P: 0.5, Ms: 20}, {P: 0.95, Ms: 50}, {P: 0.99, Ms: 100}}, MaxLoss: 0.001}},
		{Subject: "ops.*", Contract: router.Contract{Within: []router.Bound{{P: 0.9, Ms: 500}}, MaxLoss: 1}},
	}
	if err != nil || fmt.Sprint(s.Contracts) != fmt.Sprint(want) {
		t.Fatalf("contracts %+v %v, want %+v", s.Contracts, err, want)
	}
}

func TestRoutingPriorities(t *testing.T) {
	f, err := Parse([]byte(two + `routing:
  priorities:
    - {subject: "alerts.>", class: high}
    - {subject: "metrics.*", class: low}
    - {subject: "metrics.keep", class: normal}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Routing.Settings()
	want := []SubjectClass{{"alerts.>", sendq.High}, {"metrics.*", sendq.Low}, {"metrics.keep", sendq.Normal}}
	if err != nil || !slices.Equal(s.Priorities, want) {
		t.Fatalf("priorities %v %v", s.Priorities, err)
	}
}
