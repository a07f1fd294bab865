package exec

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// TestUnloadReleasesJournalFiles: 100 unit names loaded, run, stopped and
// unloaded one after the other leave the runner's process with the fds it
// had (each name's journal file and lock are closed on unload).
func TestUnloadReleasesJournalFiles(t *testing.T) {
	h := newHarness(t, true)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("no /proc/self/fd: %v", err)
		}
		return len(ents)
	}
	// One warm-up unit: lazily created shared fds are not leaks.
	cycle := func(name string) {
		h.load(name, "[Service]\nType=oneshot\nExecStart=/bin/echo "+name+"\n")
		h.start(name)
		h.waitOutput(name, name)
		if err := h.r.Unload(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	cycle("warmup.service")
	before := fds()
	for i := range 100 {
		cycle(fmt.Sprintf("churn-%03d.service", i))
	}
	if after := fds(); after > before+5 {
		t.Fatalf("%d fds open after 100 units came and went, %d before: a leak per unit name", after, before)
	}
}
