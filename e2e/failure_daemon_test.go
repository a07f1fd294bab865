package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// TestFailureSIGTERMWithoutEtcd: a fleetd whose etcd is gone (its machine
// was killed) still ends on SIGTERM within its stop timeout, and its retry
// logs name the etcd it cannot reach.
func TestFailureSIGTERMWithoutEtcd(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 2, testcluster.Options{})
	c.Kill(0) // the embedded etcd goes with it
	// Let machine 1 notice: its lease renewals and watches fail.
	time.Sleep(4 * time.Second)
	start := time.Now()
	if !c.Terminate(1, 45*time.Second) {
		t.Fatalf("fleetd did not exit within 45 s of SIGTERM without etcd:\n%s", c.Machines[1].Log())
	}
	t.Logf("fleetd exited %v after SIGTERM (etcd gone)", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(c.Machines[1].Log(), c.EtcdURL) {
		t.Errorf("no log line names the unreachable etcd %s:\n%s", c.EtcdURL, c.Machines[1].Log())
	}
}
