package exec

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/runner"
)

// BenchmarkStartToActive measures the runner's part of a start: Load and
// Start of a Type=simple unit under a shim, until States() says
// active/running (the state the agent publishes). The shim is the real
// fleet-shim binary, built once, as fleetd runs it.
func BenchmarkStartToActive(b *testing.B) {
	for _, cg := range []struct {
		name string
		off  bool
	}{{"cgroups", false}, {"process-groups", true}} {
		b.Run(cg.name, func(b *testing.B) { benchStartToActive(b, cg.off) })
	}
}

func benchStartToActive(b *testing.B, noCgroups bool) {
	dir := b.TempDir()
	shim := filepath.Join(dir, "fleet-shim")
	build := osexec.Command("go", "build", "-o", shim, "github.com/fleetd/fleet/cmd/fleet-shim")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build fleet-shim: %v\n%s", err, out)
	}
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Hostname: "benchhost"})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	r, err := New(Options{
		Journal: j, UnitsDir: filepath.Join(dir, "units"),
		Hostname: "benchhost", MachineID: "machine1", BootID: "boot1",
		DisableCgroups: noCgroups,
		StateDir:       filepath.Join(dir, "state"), Shim: []string{shim},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	defer func() {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_ = r.StopAll(ctx)
		_ = r.Close(ctx)
	}()
	opts := parseUnit(b, "[Service]\nExecStart=/bin/sleep infinity\n")
	if err := os.MkdirAll(filepath.Join(dir, "units"), 0o755); err != nil {
		b.Fatal(err)
	}
	var names []string
	ch := r.Changed()
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("b-%06d.service", i)
		names = append(names, name)
		if err := r.Load(ctx, runner.Unit{Name: name, Hash: "h", Options: opts}); err != nil {
			b.Fatal(err)
		}
		if err := r.Start(ctx, name); err != nil {
			b.Fatal(err)
		}
		for {
			if st := r.States()[name]; st.ActiveState == "active" {
				break
			} else if st.ActiveState == "failed" {
				b.Fatalf("%s failed", name)
			}
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				b.Fatalf("%s not active after 10s", name)
			}
		}
		// Keep the number of live units small: stop earlier ones off the clock.
		if len(names) >= 50 {
			b.StopTimer()
			for _, n := range names {
				_ = r.Stop(ctx, n)
			}
			names = names[:0]
			b.StartTimer()
		}
	}
}
