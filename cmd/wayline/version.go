package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/nats-io/nats-server/v2/server"
)

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "version", `
Prints this binary's version: the module version it was built as, the
commit it was built from (and whether the work tree had changes), the Go
toolchain, and the version of the NATS server it embeds.`, stdout, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	version, commit, when, modified := "(unknown)", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	fmt.Fprintf(stdout, "wayline %s\n", version)
	if commit != "" {
		if modified {
			commit += " with changes not committed"
		}
		fmt.Fprintf(stdout, "commit %s (%s)\n", commit, when)
	}
	fmt.Fprintf(stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "nats-server %s (embedded)\n", server.VERSION)
	return nil
}
