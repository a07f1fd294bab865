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
