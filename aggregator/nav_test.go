package aggregator

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/antchfx/xmlquery"
	"github.com/antchfx/xpath"

	"github.com/wayline/wayline/schema"
)

// canonical writes the node a navigator is on, with its attributes and
// element descendants, the same way for any navigator.
func canonical(n xpath.NodeNavigator) string {
	var sb strings.Builder
	var walk func(n xpath.NodeNavigator)
	walk = func(n xpath.NodeNavigator) {
		switch n.NodeType() {
		case xpath.AttributeNode:
			fmt.Fprintf(&sb, "@%s=%q", n.LocalName(), n.Value())
			return
		case xpath.TextNode:
			return
		}
		fmt.Fprintf(&sb, "<%s", n.LocalName())
		a := n.Copy()
		for a.MoveToNextAttribute() {
			fmt.Fprintf(&sb, " %s=%q", a.LocalName(), a.Value())
		}
		sb.WriteString(">")
		c := n.Copy()
		if c.MoveToChild() {
			for {
				walk(c.Copy())
				if !c.MoveToNext() {
					break
				}
			}
		}
		sb.WriteString("</>")
	}
	walk(n)
	return sb.String()
}

// answer evaluates q on a navigator and writes the result canonically.
func answer(t testing.TB, q string, root xpath.NodeNavigator) []string {
	t.Helper()
	expr, err := Compile(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return canonicalAnswer(expr, root)
}

// canonicalAnswer evaluates expr on a navigator and writes the result
// canonically.
func canonicalAnswer(expr *xpath.Expr, root xpath.NodeNavigator) []string {
	v := expr.Evaluate(root)
	it, ok := v.(*xpath.NodeIterator)
	if !ok {
		return []string{valueText(v)}
	}
	var out []string
	for it.MoveNext() {
		out = append(out, canonical(it.Current().Copy()))
	}
	return out
}

// sameAnswers checks that queries read the same on the view as on a DOM
// that xmlquery parsed.
func sameAnswers(t *testing.T, v *view, doc []byte, queries []string) {
	t.Helper()
	parsed, err := xmlquery.Parse(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		got := answer(t, q, newNav(v))
		want := answer(t, q, xmlquery.CreateXPathNavigator(parsed))
		if len(got) != len(want) {
			t.Errorf("%s: %d results on the view, %d on the DOM\nview: %.300q\nDOM:  %.300q", q, len(got), len(want), got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s[%d]:\nview: %s\nDOM:  %s", q, i, got[i], want[i])
				break
			}
		}
	}
}

// axisQueries walk every axis, positions and values.
var axisQueries = []string{
	"/*", "//*", "//@*", "count(//*)", "count(//@*)", "//link/@*", "//link/*/@*", "//link/*", "//broker/@*",
	"//histogram/bucket/@*", "//link[2]", "//link[last()]/@id", "//broker[2]/link[1]/following-sibling::link/@id",
	"//cost/preceding-sibling::*", "//histogram/preceding-sibling::*[1]", "//bucket[1]/following-sibling::bucket",
	"//bucket/..", "//latency/../../@address", "//link[@loss > 0.01]/ancestor::*/@*", "//samples/following::link[1]/@id",
	"//link[3]/preceding::cost", "//link/*[position()=last()]", "//cost[@profile='latency']/@value",
	"sum(//samples/@sent)", "//link[latency/@p99 > 50 and @loss < 0.01]/@id", "/network/@*", "name(//link[1]/*[3])",
	"//broker[not(link)]/@address", "//link[not(histogram)]/@id", "//link[not(cost)]/*", "//*[last()]", "//*[1]",
	"//samples/preceding-sibling::*/following-sibling::*[2]", "//bucket[last()]/preceding-sibling::*[2]/@le",
	"//histogram/parent::*/@id", "//@loss/..", "//@id/../@b", "string(//broker[last()]/@address)",
	"//link[@id = //link[2]/@id]", "//link | //latency", "count(//link/descendant-or-self::*)",
	"//link[1]/descendant::*[3]", "//bucket/ancestor-or-self::*[2]/@missing",
}

// viewReports are reports with the shapes a view must handle: many links,
// a broker without links, links without costs or histogram.
func viewReports() []schema.Report {
	reps := schema.Synthetic(3, 4, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	reps = append(reps, schema.Report{Broker: "na.c9.empty", Domain: "na", Seq: 3, Time: reps[0].Time, Interval: time.Second})
	reps[1].Links[0].Costs = nil
	reps[0].Links[3].Costs = reps[0].Links[3].Costs[:1]
	reps[1].Links[1].Histogram = schema.Histogram{}
	reps[2].Links[2].Histogram = schema.Histogram{Missing: 3}
	return reps
}

func TestLatestViewReadsLikeTheSchemaDocument(t *testing.T) {
	reps := viewReports()
	at := reps[0].Time
	doc := schema.AppendSnapshotXML(nil, reps, at)
	sameAnswers(t, latestView(reps, at), doc, axisQueries)
}

func TestHistoryViewReadsLikeItsDocument(t *testing.T) {
	v := historyTestView()
	doc := appendElement(nil, *newNav(v))
	sameAnswers(t, v, doc, append(historyQueries, axisQueries...))
}

// historyQueries are queries on samples.
var historyQueries = []string{
	"//sample", "//link/sample[last()]/@time", "//sample[1]/preceding-sibling::*", "//sample/preceding-sibling::*[1]",
	"//link[count(sample) > 2]/@id", "//sample[@loss > 0.01]/../@id", "//histogram/following-sibling::sample[1]/@time",
	"//sample/latency/@p99", "//link[not(histogram)]/sample[1]/following-sibling::*", "//sample[2]/preceding-sibling::*[1]",
	"count(//link/*)", "//sample[last()]/preceding-sibling::sample[1]/@loss",
}

// historyTestView is a history of viewReports: link j of each broker has
// j samples.
func historyTestView() *view {
	reps := viewReports()
	v := &view{attrs: []kv{{"from", "2026-11-23T09:00:00Z"}, {"to", "2026-11-23T10:00:00Z"}}}
	for _, r := range reps {
		b := vBroker{attrs: []kv{{"address", r.Broker}, {"domain", r.Domain}}}
		for j := range r.Links {
			l := vLink{ar: &arena{}, fig: &r.Links[j]}
			for k := 0; k < j; k++ { // link j has j samples
				f := r.Links[j]
				f.Loss = float64(k) / 100
				l.samples = append(l.samples, l.ar.add(r.Time.Add(time.Duration(k)*time.Second), &f))
			}
			if len(l.samples) == 0 {
				continue
			}
			l.setLatest()
			b.links = append(b.links, l)
		}
		v.brokers = append(v.brokers, b)
	}
	return v
}

func TestNavigatorStaysOnItsView(t *testing.T) {
	a := newNav(latestView(viewReports(), time.Now()))
	b := newNav(latestView(viewReports(), time.Now()))
	b.MoveToChild()
	if a.MoveTo(b) {
		t.Fatal("a navigator moved to a node of another view")
	}
	c := a.Copy()
	c.MoveToChild()
	c.MoveToChild()
	if !a.MoveTo(c) || a.LocalName() != "broker" {
		t.Fatalf("MoveTo within a view: on %q", a.LocalName())
	}
	if a.MoveToRoot(); a.NodeType() != xpath.RootNode || a.MoveToParent() || a.MoveToNext() {
		t.Fatal("the root has a parent or a sibling")
	}
}

func TestDescendantSteps(t *testing.T) {
	for q, want := range map[string]string{
		"//link[@loss > 0.05]":                    "/descendant::link[@loss > 0.05]",
		"//link [ @loss>0.05 and latency/@p99>1]": "/descendant::link [ @loss>0.05 and latency/@p99>1]",
		"/network//link[@loss>0.05]/@id":          "/network/descendant::link[@loss>0.05]/@id",
		".//link[@a=1]":                           "./descendant::link[@a=1]",
		"//*[@a != 1]":                            "/descendant::*[@a != 1]",
		"//link[count(cost) = 2]":                 "/descendant::link[count(cost) = 2]",
		"//a[@x = '//b[c>1]']":                    "/descendant::a[@x = '//b[c>1]']",
		"count(//link[@a>1]) + count(//b[c<2])":   "count(/descendant::link[@a>1]) + count(/descendant::b[c<2])",
		"//broker[.//link[@loss > 1]]/@address":   "//broker[./descendant::link[@loss > 1]]/@address",
		// Left alone: positional or numeric predicates, more than one
		// predicate, axes, attributes, strings.
		"//link[1]":                  "//link[1]",
		"//link[last()]":             "//link[last()]",
		"//link[position() > 1]":     "//link[position() > 1]",
		"//link[@a > last ()]":       "//link[@a > last ()]",
		"//link[@a > 1][2]":          "//link[@a > 1][2]",
		"//link[(@a > 1)]":           "//link[(@a > 1)]",
		"//link[@a + 1]":             "//link[@a + 1]",
		"//child::link[@a > 1]":      "//child::link[@a > 1]",
		"//@loss[. > 1]":             "//@loss[. > 1]",
		"'//a[b > 1]'":               "'//a[b > 1]'",
		"//link[@a > 1":              "//link[@a > 1",
		"//link[@a = 'unterminated]": "//link[@a = 'unterminated]",
		"//node()":                   "//node()",
		// No predicate: the same too.
		"//link":                 "/descendant::link",
		"//sample/samples/@lost": "/descendant::sample/samples/@lost",
		"sum(//samples/@lost)":   "sum(/descendant::samples/@lost)",
		"//* | //link/..":        "/descendant::* | /descendant::link/..",
	} {
		if got := descendantSteps(q); got != want {
			t.Errorf("descendantSteps(%q) = %q, want %q", q, got, want)
		}
	}
}

// rewriteQueries are queries the rewrite applies to, or must leave alone.
var rewriteQueries = []string{
	"//link[@loss > 0.01]", "//link[@loss > 0.01]/@id", "//*[@loss > 0.01]", "//link[latency/@p99 > 50 and @loss < 0.01]",
	"//broker[.//link[@loss > 0.01]]/@address", "//sample[@loss > 0.005]/@time", "//bucket[@count > 20]",
	"//link[count(cost) = 2]/@id", "//link[1]", "//link[@loss > 0.01][1]", "//cost[position() = last()]",
	"count(//link[@loss > 0.01]) + count(//sample[@loss > 0])", "//link[@loss > 0.01]/following-sibling::link[1]",
	"(//link[@loss > 0.01])[2]", "//link[@loss > 0.01]/preceding::*[1]",
	"//link", "//latency/@p99", "count(//bucket)", "//*", "sum(//samples/@lost)", "//cost/../@id", "(//link)[3]/@id",
}

// TestRewriteKeepsAnswers checks the rewritten queries answer as written.
func TestRewriteKeepsAnswers(t *testing.T) {
	v := latestView(viewReports(), time.Now())
	for _, q := range rewriteQueries {
		if got, want := answer(t, q, newNav(v)), answerRaw(t, q, newNav(v)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: rewritten %d results, as written %d\n%.300q\n%.300q", q, len(got), len(want), got, want)
		}
	}
}

// answerRaw is answer without the rewrite.
func answerRaw(t testing.TB, q string, root xpath.NodeNavigator) []string {
	expr, err := xpath.Compile(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return canonicalAnswer(expr, root)
}

// TestLatestViewShowsContracts: the links a delay contract's route crosses
// hold a contract element, which every axis reaches as in a document that
// has it; a broker whose state no longer has the route takes its elements
// away.
func TestLatestViewShowsContracts(t *testing.T) {
	reps := viewReports()
	at := reps[0].Time
	l1, l2, l3 := reps[0].Links[0].ID, reps[0].Links[3].ID, reps[1].Links[1].ID
	a := &Aggregator{contracts: map[string][]linkContract{}, contractsOn: map[string][]vContract{}}
	a.setContractsLocked(schema.State{Broker: reps[0].Broker, Routes: []schema.Route{
		{Profile: "default", Destination: "na.x", Link: l3},
		{Profile: schema.ContractProfile, Destination: "na.x", Link: l1, Exits: []schema.RouteExit{{Broker: "na.y", Link: l2}},
			Contract: "trade.>", Prediction: &schema.Prediction{Status: "breached", Loss: 0.002}},
	}})
	a.setContractsLocked(schema.State{Broker: reps[1].Broker, Routes: []schema.Route{
		{Profile: schema.ContractProfile, Destination: "na.z", Link: l2, Exits: []schema.RouteExit{{Broker: "na.y", Link: l3}},
			Contract: "pay.*", Prediction: &schema.Prediction{Status: "met"}},
	}})
	contract := func(subject, origin, dest, status, loss string) string {
		return fmt.Sprintf(`<contract subject=%q origin=%q destination=%q status=%q loss=%q/>`, subject, origin, dest, status, loss)
	}
	on := map[string]string{
		l1: contract("trade.>", reps[0].Broker, "na.x", "breached", "0.002"),
		l2: contract("trade.>", reps[0].Broker, "na.x", "breached", "0.002") + contract("pay.*", reps[1].Broker, "na.z", "met", "0"),
		l3: contract("pay.*", reps[1].Broker, "na.z", "met", "0"),
	}
	doc := string(schema.AppendSnapshotXML(nil, reps, at))
	for id, elems := range on {
		start := strings.Index(doc, fmt.Sprintf(`<link id=%q`, id))
		if start < 0 {
			t.Fatalf("no link %s in the document", id)
		}
		end := start + strings.Index(doc[start:], "</link>")
		doc = doc[:end] + elems + doc[end:]
	}
	queries := append([]string{
		"//link[contract/@status = 'breached']/@id", "count(//contract)", "//contract/@*", "//link/*[last()]",
		"//contract/preceding-sibling::*[1]", "//contract/following-sibling::*", "//contract[1]/../@id",
		"//contract/ancestor::broker/@address", "//link[contract]/descendant::*[last()]",
	}, axisQueries...)
	sameAnswers(t, latestView(reps, at).withContracts(a), []byte(doc), queries)

	a.setContractsLocked(schema.State{Broker: reps[0].Broker})
	got := answer(t, "//link[contract]/@id", newNav(latestView(reps, at).withContracts(a)))
	if want := 2; len(got) != want {
		t.Fatalf("after the route went: links with contracts %q, want %d (%s and %s)", got, want, l2, l3)
	}
}
