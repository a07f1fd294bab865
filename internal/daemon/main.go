package daemon

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleetd/fleet/internal/config"
	"github.com/fleetd/fleet/internal/lb"
	execrunner "github.com/fleetd/fleet/internal/runner/exec"
	"github.com/fleetd/fleet/internal/tmpl"
	"github.com/fleetd/fleet/internal/version"
)

// Main is fleetd's entry point: it parses configuration (flags, FLEET_*
// environment, fleet.conf), sets up logging and runs the daemon until ctx
// ends. It returns the process exit code.
func Main(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "confd":
			return tmpl.Main(ctx, args[1:], env, stdout, stderr)
		case "shim": // hidden: started by the runner for each unit's main process
			return execrunner.ShimMain(ctx, args[1:], stderr)
		case "lb":
			return lb.Main(ctx, args[1:], env, stdout, stderr)
		case "etcd":
			return etcdMain(ctx, args[1:], env, stdout, stderr)
		}
	}
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprint(stdout, usageHeader)
			config.Usage(stdout)
			return 0
		}
	}
	cfg, err := config.Load(args, env, os.ReadFile, os.Stat)
	if err != nil {
		fmt.Fprintf(stderr, "fleetd: %v\nRun 'fleetd --help' for usage.\n", err)
		return 1
	}
	if cfg.Version {
		fmt.Fprintf(stdout, "fleetd version %s\n", version.Version)
		return 0
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.Verbosity)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	// The shims and the embedded etcd are handed these paths: make them
	// absolute so a relative --data-dir works.
	for _, p := range []*string{&cfg.DataDir, &cfg.UnitsDirectory} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		fmt.Fprintf(stderr, "fleetd: data_dir %s: %v\n", cfg.DataDir, err)
		return 1
	}
	if err := cfg.ResolveMachineID(os.ReadFile, writeFile, rand.Reader); err != nil {
		fmt.Fprintf(stderr, "fleetd: %v\n", err)
		return 1
	}
	src := config.SystemNetSources()
	src.Warnf = func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) }
	cfg.ResolvePublicIP(src)
	if err := Run(ctx, cfg, log); err != nil {
		fmt.Fprintf(stderr, "fleetd: %s\n", strings.TrimPrefix(err.Error(), "fleetd: "))
		return 1
	}
	return 0
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

func newLogger(w io.Writer, format string, verbosity int) *slog.Logger {
	level := slog.LevelInfo
	if verbosity > 0 {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

const usageHeader = `Subcommands:
  fleetd confd [flags]   render config files from etcd, confd-style (fleetd confd --help)
  fleetd lb [flags]      load balancer over the endpoints registered in /services (fleetd lb --help)
  fleetd etcd COMMAND    list, add or remove etcd members (fleetd etcd --help)

`
