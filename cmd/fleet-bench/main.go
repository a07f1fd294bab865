// Command fleet-bench measures fleet: go run ./cmd/fleet-bench SCENARIO
// [flags]. Each scenario prints a human summary and, as its last line, one
// JSON object with its figures and a baseline measured in the same run. See
// docs/benchmarks.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/fleetd/fleet/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
