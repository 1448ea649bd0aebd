package topology

import (
	"bytes"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse checks that Parse never panics, and that a file it accepts
// survives a round trip: marshalled back to YAML, it parses again into a
// file that marshals to the same bytes.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"chain.yaml", "tls.yaml", "mem.yaml", "quic.yaml"} {
		f.Add(must(testdataFile(name)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		out, err := yaml.Marshal(file)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("parse of\n%s\nfailed: %v", out, err)
		}
		if out2 := must(yaml.Marshal(again)); !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the file:\n%s\nthen\n%s", out, out2)
		}
	})
}
