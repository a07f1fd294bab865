package testcluster

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleetd/fleet/internal/orphans"
)

// becomeSubreaper makes this test process adopt the orphans of fleetd
// processes it kills with SIGKILL (their units keep running, as fleet's do),
// so killOrphans can clean them up.
func becomeSubreaper() {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// killOrphans kills every process whose parent is this process, then reaps
// them. It returns how many it killed.
func killOrphans() int {
	killed := orphans.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range killed {
		orphans.Reap(pid, deadline)
	}
	return len(killed)
}
