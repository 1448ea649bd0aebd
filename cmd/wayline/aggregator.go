package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wayline/wayline/aggregator"
)

// aggregatorFile is the aggregator's configuration file.
type aggregatorFile struct {
	Rules     []aggregator.Rule `yaml:"rules"`
	Retention string            `yaml:"retention,omitempty"`
}

func runAggregator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("aggregator", "aggregator --domain D --broker URL [--db DSN] [--http ADDR] [--config FILE] [flags]", `
Collects the performance reports of one domain's brokers: connects to a
broker as a NATS client, subscribes to $WL.perf.<domain>, stores every
report, keeps the latest view of every link, answers XPath queries
(GET /api/xpath, or 'wayline query'), and turns the threshold rules of its
config file into control messages to the brokers concerned.

--db is mysql://user:pw@tcp(host:port)/db for MySQL or MariaDB, or
sqlite:PATH for an embedded file store; without it the aggregator keeps
its data in wayline.db in the working directory.

The config file (YAML) holds the rules and the retention (raw
measurements are kept that long: days, 7d, or a duration, 168h):

  retention: 7d
  rules:
    - when: "//link[@loss > 0.05]"
      do: {interval: 250ms}
      undo: true
    - when: "//link[latency/@p99 > 500]"
      do: stop-measurement
    - when: "//link[@loss > 0.2]"
      do: exclude-from-routing
      undo: true

The pages and the API at --http need the admin token (sign in at /login,
or send Authorization: Bearer <token>) unless --public opens the read-only
ones to anyone; /healthz is always open. The admin page (/admin), which
takes links down and up, changes their emulated conditions and adds and
removes rules, always needs the token and is off without one.`, stdout, stderr)
	domain := fs.String("domain", "", "the domain whose brokers report here; required")
	brokerURL := fs.String("broker", "", "the NATS URL of a broker of the network; required")
	db := fs.String("db", "", "mysql://user:pw@tcp(host:port)/db, or sqlite:PATH (default sqlite:wayline.db)")
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the HTTP API; empty for none")
	config := fs.String("config", "", "configuration file (YAML) with rules and retention")
	token := tokenFlag(fs, "the network's admin token")
	public := fs.Bool("public", false, "serve the read-only pages and API without the admin token")
	queryTimeout := fs.Duration("query-timeout", 5*time.Second, "an XPath query is cut off after this long")
	queryMax := fs.Int("query-max-results", 10000, "an XPath query's answer is cut off after this many nodes")
	maxReport := fs.Int("max-report-bytes", 4<<20, "reports larger than this are refused")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	if *domain == "" || *brokerURL == "" {
		fs.Usage()
		return usageError{"--domain and --broker are required"}
	}
	if *queryTimeout <= 0 || *queryMax <= 0 || *maxReport <= 0 {
		return usageError{"--query-timeout, --query-max-results and --max-report-bytes must be positive"}
	}
	cfg := aggregator.Config{Domain: *domain, BrokerURL: *brokerURL, DB: *db, HTTP: *httpAddr, Token: token(), Public: *public, Logger: log,
		QueryTimeout: *queryTimeout, QueryMaxResults: *queryMax, MaxReportBytes: *maxReport}
	if *config != "" {
		if err := readAggregatorFile(*config, &cfg); err != nil {
			return err
		}
	}
	agg, err := aggregator.New(ctx, cfg)
	if err != nil {
		return err
	}
	if err := agg.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "aggregator %s: http http://%s (pages at /)\n", *domain, agg.HTTPAddr())
	<-ctx.Done()
	agg.Close()
	return nil
}

func readAggregatorFile(path string, cfg *aggregator.Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return decodeAggregatorFile(data, path, cfg)
}

func decodeAggregatorFile(data []byte, path string, cfg *aggregator.Config) error {
	var f aggregatorFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	cfg.Rules = f.Rules
	if f.Retention != "" {
		d, err := parseRetention(f.Retention)
		if err != nil {
			return fmt.Errorf("config %s: retention: %w", path, err)
		}
		cfg.Retention = d
	}
	return nil
}

// parseRetention reads a retention: a number of days ("7d") or a Go
// duration ("168h").
func parseRetention(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100*365 {
			return 0, fmt.Errorf("%q is not a number of days from 1 to 36500", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (168h) or a number of days (7d)", s)
	}
	return d, nil
}

func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("query", "query [--aggregator URL] [--from T] [--to T] XPATH", `
Runs an XPath query on an aggregator and prints the answer (XML). Without
--from it runs on the latest view: every broker's last report. With --from
(and optionally --to) it runs on the stored history of that time range;
times are RFC 3339 or durations back from now (--from 1h).

  wayline query '//link[@loss > 0.01]/@id'
  wayline query --from 1h 'count(//link[sample/@state = "down"])'`, stdout, stderr)
	agg := fs.String("aggregator", "http://127.0.0.1:8080", "the aggregator's HTTP address")
	from := fs.String("from", "", "start of the time range")
	to := fs.String("to", "", "end of the time range (default now)")
	token := tokenFlag(fs, "the admin token, for an aggregator whose pages are not public")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError{"one XPath query is required"}
	}
	v := url.Values{"q": {fs.Arg(0)}}
	if *from != "" {
		v.Set("from", *from)
	}
	if *to != "" {
		v.Set("to", *to)
	}
	base := strings.TrimRight(*agg, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/xpath?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	if tok := token(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("query: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = stdout.Write(body)
	return err
}
