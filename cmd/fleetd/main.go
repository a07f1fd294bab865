// Command fleetd is the fleet daemon: run one on every machine.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/fleetd/fleet/internal/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(daemon.Main(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
