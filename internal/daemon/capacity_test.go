package daemon

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
)

func TestMachineCapacity(t *testing.T) {
	got := machineCapacity(fleet.Resources{})
	if got.CPUMilli != int64(runtime.NumCPU())*1000 {
		t.Errorf("detected CPU %d milli, want %d", got.CPUMilli, runtime.NumCPU()*1000)
	}
	if got.MemoryBytes <= 0 && memTotal("/proc/meminfo") != 0 {
		t.Errorf("memory not detected: %+v", got)
	}
	over := machineCapacity(fleet.Resources{MemoryBytes: 1 << 30})
	if over.MemoryBytes != 1<<30 || over.CPUMilli != got.CPUMilli {
		t.Errorf("configured memory, detected CPU: %+v", over)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "meminfo")
	for content, want := range map[string]int64{
		"MemTotal:       24558148 kB\nMemFree: 1 kB\n": 24558148 << 10,
		"MemFree: 1 kB\n":  0,
		"MemTotal: x kB\n": 0,
	} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := memTotal(p); got != want {
			t.Errorf("memTotal(%q) = %d, want %d", content, got, want)
		}
	}
	if memTotal(filepath.Join(dir, "missing")) != 0 {
		t.Error("a missing file is not 0")
	}
}
