// Package web renders what the aggregator knows as HTML pages, and sends
// the pages live updates over WebSocket (Hub).
package web

import (
	"strconv"
	"unicode/utf8"

	"github.com/wayline/wayline/schema"
)

// AppendLinkTable writes the links of a snapshot as an HTML table, one row
// per link in the order of the reports: the reporting broker, the link's
// id, peer, transport, state, its figures, and one column per cost
// profile. Profiles are those of the first report that has links; a link
// without one shows an empty cell. Delays are milliseconds, loss a
// percentage. Every name is escaped, so a broker address holding markup
// shows as text.
//
// It is written by hand, not with html/template, because the snapshot of a
// large network has hundreds of thousands of cells and must render in well
// under a tenth of a second.
func AppendLinkTable(b []byte, reports []schema.Report) []byte {
	var profiles []string
	for i := range reports {
		if len(reports[i].Links) > 0 {
			for _, c := range reports[i].Links[0].Costs {
				profiles = append(profiles, c.Profile)
			}
			break
		}
	}
	b = append(b, `<table class="links"><thead><tr><th>broker</th><th>link</th><th>peer</th><th>transport</th><th>state</th>`+
		`<th>monitor</th><th>rtt ms</th><th>p50 ms</th><th>p99 ms</th><th>jitter ms</th><th>loss %</th><th>sent</th><th>received</th>`...)
	for _, p := range profiles {
		b = append(b, `<th>cost `...)
		b = appendEscaped(b, p)
		b = append(b, `</th>`...)
	}
	b = append(b, "</tr></thead>\n<tbody>\n"...)
	for i := range reports {
		r := &reports[i]
		for j := range r.Links {
			l := &r.Links[j]
			b = append(b, `<tr class="`...)
			b = appendEscaped(b, l.State)
			b = append(b, `"><td>`...)
			b = appendEscaped(b, r.Broker)
			b = append(b, `</td><td><a href="/links/`...)
			b = appendEscaped(b, l.ID)
			b = append(b, `">`...)
			b = appendEscaped(b, l.ID)
			b = append(b, `</a></td><td>`...)
			b = appendEscaped(b, l.B)
			b = append(b, `</td><td>`...)
			b = appendEscaped(b, l.Transport)
			b = append(b, `</td><td>`...)
			b = appendEscaped(b, l.State)
			b = append(b, `</td><td>`...)
			b = appendEscaped(b, l.Monitor)
			b = append(b, `</td><td>`...)
			b = appendFixed(b, l.RTT, 2)
			b = append(b, `</td><td>`...)
			b = appendFixed(b, l.Latency.P50, 2)
			b = append(b, `</td><td>`...)
			b = appendFixed(b, l.Latency.P99, 2)
			b = append(b, `</td><td>`...)
			b = appendFixed(b, l.Jitter, 2)
			b = append(b, `</td><td>`...)
			b = appendFixed(b, 100*l.Loss, 2)
			b = append(b, `</td><td>`...)
			b = strconv.AppendUint(b, l.Samples.Sent, 10)
			b = append(b, `</td><td>`...)
			b = strconv.AppendUint(b, l.Samples.Received, 10)
			for k, p := range profiles {
				b = append(b, `</td><td>`...)
				if k < len(l.Costs) && l.Costs[k].Profile == p {
					b = appendFixed(b, l.Costs[k].Value, 2)
					continue
				}
				for _, c := range l.Costs {
					if c.Profile == p {
						b = appendFixed(b, c.Value, 2)
						break
					}
				}
			}
			b = append(b, "</td></tr>\n"...)
		}
	}
	return append(b, "</tbody></table>\n"...)
}

// appendFixed writes v with prec decimals; infinity as ∞, NaN as a dash.
func appendFixed(b []byte, v float64, prec int) []byte {
	switch {
	case v != v:
		return append(b, '-')
	case v > 1e300:
		return append(b, "∞"...)
	case v < -1e300:
		return append(b, "-∞"...)
	}
	return strconv.AppendFloat(b, v, 'f', prec, 64)
}

// appendEscaped writes s as HTML text or attribute value: the five
// characters that matter are escaped, and invalid UTF-8 becomes U+FFFD.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var rep string
		size := 1
		switch {
		case c == '<':
			rep = "&lt;"
		case c == '>':
			rep = "&gt;"
		case c == '&':
			rep = "&amp;"
		case c == '"':
			rep = "&#34;"
		case c == '\'':
			rep = "&#39;"
		case c == 0:
			rep = "\uFFFD"
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			size = n
			if r == utf8.RuneError && n == 1 {
				rep = "\uFFFD"
			}
		}
		if rep != "" {
			b = append(b, s[last:i]...)
			b = append(b, rep...)
			last = i + size
		}
		i += size
	}
	return append(b, s[last:]...)
}
