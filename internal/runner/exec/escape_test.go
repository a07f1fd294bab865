package exec

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/runner"
)

// Called directly (not through the API's name validation), the runner and
// the journal still refuse names that would write outside their
// directories, and nothing appears outside them.
func TestNamesCannotEscapeDirectories(t *testing.T) {
	root := t.TempDir()
	base := filepath.Join(root, "a", "b")
	j, err := journal.Open(filepath.Join(base, "journal"), journal.Options{Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	r, err := New(Options{Journal: j, UnitsDir: filepath.Join(base, "units"), Hostname: "h", MachineID: "m",
		DisableCgroups: true, StateDir: filepath.Join(base, "state")})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	opts := []fleet.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/true"}}
	for _, name := range []string{"../escape.service", "../../escape.service", "/tmp/abs.service", "a/b.service", "..", ".", "x\x00.service", ""} {
		if err := r.Load(context.Background(), runner.Unit{Name: name, Options: opts}); err == nil {
			t.Errorf("runner loaded %q", name)
		}
		if err := j.Log(name, "x", 1, "line"); err == nil {
			t.Errorf("journal wrote %q", name)
		}
		if _, err := j.Tail(name, 1); err == nil {
			t.Errorf("journal read %q", name)
		}
	}
	for _, dir := range []string{root, filepath.Join(root, "a"), base} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			switch e.Name() {
			case "a", "b", "journal", "units", "state":
			default:
				t.Errorf("unexpected %s in %s", e.Name(), dir)
			}
		}
	}
}
