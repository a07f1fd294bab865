// Command fleet-shim is the per-unit shim of fleetd's process runner: it
// starts a unit's main process, writes its output into the journal,
// records its exit status and outlives fleetd so that a restarted fleetd
// adopts the unit. fleetd starts it as `fleet-shim DIR`; it is the same
// code as the hidden `fleetd shim DIR`, in a binary that links nothing else
// (no etcd, gRPC, Prometheus...), so each running unit costs little memory.
// Install it next to fleetd (or in PATH); without it fleetd runs
// `fleetd shim`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	execrunner "github.com/fleetd/fleet/internal/runner/exec"
)

func main() {
	// As in fleetd's main, which `fleetd shim` runs under.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(execrunner.ShimMain(ctx, os.Args[1:], os.Stderr))
}
