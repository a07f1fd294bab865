package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A component that fails while fleetd runs shuts fleetd down: the failure
// is logged, and it is what Run returns. The units keep running
// (stop_units_on_exit=false), the lease is left to expire.
func TestComponentFailureStopsFleetd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts an embedded etcd")
	}
	boom := errors.New("boom")
	trigger := make(chan struct{})
	f := runFleetdWith(t, []component{{"doomed", func(ctx context.Context) error {
		select {
		case <-trigger:
			return boom
		case <-ctx.Done():
			return nil
		}
	}}}, "--stop-units-on-exit=false")
	close(trigger)
	var err error
	select {
	case err = <-f.done:
		f.done <- err // for the cleanup
	case <-time.After(45 * time.Second):
		t.Fatalf("fleetd did not stop after a component failed:\n%s", f.log)
	}
	if !errors.Is(err, boom) {
		t.Errorf("Run = %v; want %v", err, boom)
	}
	out := f.log.String()
	for _, want := range []string{"component doomed failed: boom", "fleetd shutting down", "leaving units running"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "did not stop within the stop timeout") {
		t.Errorf("components were left behind:\n%s", out)
	}
	// Released, not revoked: a restarted fleetd takes the lease over.
	if _, err := os.Stat(filepath.Join(f.dataDir, leaseFileName)); err != nil {
		t.Errorf("lease file: %v", err)
	}
}
