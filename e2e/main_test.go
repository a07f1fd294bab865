// Package e2e holds end-to-end tests: several real fleetd processes on one
// real (embedded) etcd, driven through fleetctl's own code.
package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/fleetd/fleet/internal/testcluster"
)

var fleetdBin string

func TestMain(m *testing.M) {
	// fleetd started by hand here (not through testcluster, which gives
	// each machine a free --etcd-v2-listen port) must not all take the
	// fixed 127.0.0.1:4001: any free port will do.
	if os.Getenv("FLEET_ETCD_V2_LISTEN") == "" {
		os.Setenv("FLEET_ETCD_V2_LISTEN", "127.0.0.1:0")
	}
	dir, err := os.MkdirTemp("", "fleet-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fleetdBin, err = testcluster.Binary(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
