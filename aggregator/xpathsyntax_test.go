package aggregator

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestSyntaxErrors: a query that does not parse is answered with what is
// wrong and where, not with the XPath package's "expression must evaluate
// to a node-set"; and every query the tests and pages use still parses.
func TestSyntaxErrors(t *testing.T) {
	bad := []struct{ q, want string }{
		{"//link[@loss >", `the query ends early: an expression must follow ">", and "[" at character 7 is not closed`},
		{"foo(", `"(" at character 4 is not closed`},
		{"count(//link", `"(" at character 6 is not closed`},
		{"//link]", `unexpected "]" at character 7`},
		{"//link[@loss > 0.01]]", `unexpected "]" at character 21`},
		{"1 +", `the query ends early: an expression must follow "+"`},
		{"'abc", "the string at character 1 is not closed"},
		{"//link[@loss >> 2]", `unexpected ">" at character 15: an expression must follow ">"`},
		{"//link/@", `the query ends early: a name or * must follow "@"`},
		{"//", `the query ends early: a step must follow "//"`},
		{")", `unexpected ")" at character 1: the query must start with an expression`},
		{"//link[contains(@id, 'a']", `unexpected "]" at character 25: "(" at character 16 is not closed`},
		{"//link[@loss = ]", `unexpected "]" at character 16: an expression must follow "="`},
		{"//link[@a = 'é' and #]", "unexpected character '#' at character 21"},
		{"$", `a variable name must follow '$' at character 1`},
	}
	for _, tt := range bad {
		_, err := Compile(tt.q)
		if !errors.Is(err, ErrBadQuery) || !strings.Contains(err.Error(), "syntax error: "+tt.want) {
			t.Errorf("Compile(%q) = %v, want a syntax error %q", tt.q, err, tt.want)
		}
	}
	good := slices.Concat(axisQueries, rewriteQueries, []string{
		"/", "-1 - -2", "(//link)[1]/@id", "//link/node()", "//link[1]/..", "//link[@id=\"a\"]",
		"//link[@a='x' and not(@b='y') or @loss div 2 mod 3 > 0]", "//div[mod]", "//link[@loss > 0.01]   /  @id",
		"//link/ancestor::broker/@address", "count(//sample) > 3", "//broker[link/@transport = 'udp']/@address",
		"//link[samples/@sent > 0 and latency/@p99 > 500]", "//link[starts-with(@id, 'ab')]", "//*[local-name() = 'link']",
	})
	for _, q := range good {
		if err := checkSyntax(q); err != nil {
			t.Errorf("checkSyntax(%q) = %v", q, err)
		}
	}
}
