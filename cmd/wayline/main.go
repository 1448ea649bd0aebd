// Command wayline runs Wayline: brokers, a whole network in one process,
// and benchmarks.
//
//	wayline demo [--topology FILE]                 every broker of a network in one process
//	wayline broker --topology FILE --address ADDR  one broker of a network
//	wayline links --broker URL                     a broker's links and their figures
//	wayline routes --broker URL                    a broker's routes, per cost profile
//	wayline emulate --broker URL --link ID --down  change a link's emulated conditions
//	wayline monitor --broker URL --interval 250ms  control link measurement
//	wayline aggregator --domain D --broker URL     collect a domain's reports
//	wayline query XPATH                            query an aggregator
//	wayline bench overlay [--duration 5s]          Wayline against NATS, side by side
//	wayline version                                this binary's version
//
// Run `wayline <command> --help` for the flags of each.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "run every broker of a network in one process", runDemo},
		{"broker", "run one broker of a network", runBroker},
		{"links", "show a broker's links and their measurements", runLinks},
		{"routes", "show a broker's routes, per cost profile", runRoutes},
		{"emulate", "change a link's emulated wide-area conditions", runEmulate},
		{"monitor", "start or stop link measurement, or change its interval", runMonitor},
		{"aggregator", "collect a domain's performance reports, answer queries, apply rules", runAggregator},
		{"query", "run an XPath query on an aggregator", runQuery},
		{"bench", "measure Wayline against NATS on this machine", runBench},
		{"version", "print the version of this binary and of what it is built with", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "wayline:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError is a mistake on the command line; the process exits with 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return flag.ErrHelp
	case "-version", "--version":
		return runVersion(ctx, nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Wayline routes publish/subscribe messages across a network of brokers.")
	fmt.Fprintln(w, "\nUsage: wayline <command> [flags]\n\nCommands:")
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'wayline <command> --help' for a command's flags.")
}

// newFlags makes a command's flag set, with a usage text that starts with
// the command's synopsis and description. The usage goes to stdout when
// asked for (-h, --help) and to stderr after a mistake.
func newFlags(name, synopsis, description string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(&flagOutput{stdout: stdout, stderr: stderr})
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wayline %s\n\n%s\n\nFlags:\n", synopsis, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

// flagOutput is where a flag set of newFlags writes. While it parses, what
// it writes is held, and then goes to stdout when it was the usage asked
// for, or to stderr after a mistake; at other times it goes to stderr.
type flagOutput struct {
	stdout, stderr io.Writer
	held           *bytes.Buffer
}

func (o *flagOutput) Write(b []byte) (int, error) {
	if o.held != nil {
		return o.held.Write(b)
	}
	return o.stderr.Write(b)
}

// parseFlags parses args, which hold flags only, and turns a flag mistake
// into a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// parseArgs parses args, flags then arguments, and turns a flag mistake
// into a usage error.
func parseArgs(fs *flag.FlagSet, args []string) error {
	o, _ := fs.Output().(*flagOutput)
	if o == nil {
		return fs.Parse(args)
	}
	o.held = new(bytes.Buffer)
	err := fs.Parse(args)
	held := o.held
	o.held = nil
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = held.WriteTo(o.stdout)
		return err
	case err != nil:
		_, _ = held.WriteTo(o.stderr)
		return usageError{err.Error()}
	}
	return nil
}

// logFlags are the --log-level and --log-format flags every command takes.
type logFlags struct {
	level, format *string
	stderr        io.Writer
}

func addLogFlags(fs *flag.FlagSet, stderr io.Writer) *logFlags {
	return &logFlags{
		level:  fs.String("log-level", "info", "log level: debug, info, warn or error"),
		format: fs.String("log-format", "text", "log format: text or json"),
		stderr: stderr,
	}
}

// parse parses the command line and returns the logger it asks for.
func (lf *logFlags) parse(fs *flag.FlagSet, args []string) (*slog.Logger, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(*lf.level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", *lf.level)}
	}
	opts := &slog.HandlerOptions{Level: l}
	switch *lf.format {
	case "text":
		return slog.New(slog.NewTextHandler(lf.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(lf.stderr, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %q: want text or json", *lf.format)}
}
