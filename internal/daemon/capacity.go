package daemon

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// machineCapacity is what this machine offers to units' reservations: the
// configured capacity, with a dimension left at zero detected (the CPUs Go
// may use, /proc/meminfo's MemTotal). A dimension that cannot be detected
// stays zero: unknown, no limit.
func machineCapacity(configured fleet.Resources) fleet.Resources {
	c := configured
	if c.CPUMilli == 0 {
		c.CPUMilli = int64(runtime.NumCPU()) * 1000
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = memTotal("/proc/meminfo")
	}
	return c
}

// memTotal reads MemTotal (in kB) from a meminfo file; 0 when unknown.
func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb <= 0 {
			return 0
		}
		return kb << 10
	}
	return 0
}
