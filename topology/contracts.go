package topology

import (
	"fmt"
	"strings"

	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/transports"
)

// ContractSpec is a delay contract in the routing block: the messages of
// the subjects matching Subject (NATS wildcards allowed) take the path
// most likely to bring P percent of them within Ms milliseconds, for each
// bound, and to lose at most MaxLoss.
//
//	routing:
//	  contracts:
//	    - subject: "trade.>"
//	      within: [{p: 50, ms: 20}, {p: 95, ms: 50}, {p: 99, ms: 100}]
//	      max_loss: 0.1%
type ContractSpec struct {
	Subject string      `yaml:"subject"`
	Within  []BoundSpec `yaml:"within"`
	// MaxLoss is a percentage ("0.1%") or a fraction ("0.001"); empty asks
	// nothing beyond the bounds.
	MaxLoss string `yaml:"max_loss,omitempty"`
}

// BoundSpec is one bound of a contract: P percent within Ms milliseconds.
type BoundSpec struct {
	P  float64 `yaml:"p"`
	Ms float64 `yaml:"ms"`
}

// SubjectContract is a parsed contract: its subject pattern and what it
// asks.
type SubjectContract struct {
	Subject string
	router.Contract
}

// contracts parses the contracts of the routing block; a subject given
// twice is refused, as the second would never be used.
func contracts(specs []ContractSpec) ([]SubjectContract, error) {
	var out []SubjectContract
	seen := map[string]bool{}
	for i, cs := range specs {
		where := fmt.Sprintf("contracts[%d]", i)
		if cs.Subject == "" {
			return nil, fmt.Errorf("%s: subject: required", where)
		}
		where += " (" + cs.Subject + ")"
		if !validPattern(cs.Subject) {
			return nil, fmt.Errorf("%s: subject: %q is not a subject or pattern", where, cs.Subject)
		}
		if seen[cs.Subject] {
			return nil, fmt.Errorf("%s: subject given twice", where)
		}
		seen[cs.Subject] = true
		c := SubjectContract{Subject: cs.Subject, Contract: router.Contract{MaxLoss: 1}}
		for _, b := range cs.Within {
			c.Within = append(c.Within, router.Bound{P: b.P / 100, Ms: b.Ms})
		}
		if cs.MaxLoss != "" {
			v, err := transports.ParsePercent(cs.MaxLoss)
			if err != nil {
				return nil, fmt.Errorf("%s: max_loss: %w", where, err)
			}
			c.MaxLoss = v
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// validPattern reports whether s is a NATS subject or wildcard pattern:
// dot-separated non-empty tokens without spaces, '*' only as a whole
// token, '>' only as the whole last one.
func validPattern(s string) bool {
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "" || strings.ContainsAny(t, " \t\r\n"):
			return false
		case t == ">" && i != len(toks)-1:
			return false
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			return false
		}
	}
	return true
}
