package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// TestFailureRegistrySameHost: the three fleetd of the test cluster share
// one host (one hostname). A global unit with an [X-Service] runs on each,
// under the same unit name and port: each machine publishes its own key,
// with the machine ID in registrator's <host> slot, instead of all three
// fighting over one hostname-based key (whose value flapped between the
// three public IPs, so that balancers churned).
func TestFailureRegistrySameHost(t *testing.T) {
	bin := t.TempDir()
	kappa := buildHelper(t, bin, "kappa", "./testdata/kappa")
	dir := t.TempDir()
	c := testcluster.New(t, fleetdBin, 3, testcluster.Options{})
	port := strings.TrimPrefix(freePort(t), "127.0.0.1:")
	unit := writeUnit(t, dir, "kappa-global.service", fmt.Sprintf(`[Unit]
Description=one kappa per machine
[Service]
ExecStart=%s -listen ${FLEET_PUBLIC_IP}:%s -name %%H
[X-Service]
Name=kappa-global
Port=%s
[X-Fleet]
Global=true
`, kappa, port, port))
	c.MustFleetctl("start", "--no-block", unit)

	want := map[string]string{}
	for i, m := range c.Machines {
		want["/services/kappa-global/"+m.ID+":kappa-global.service:"+port] = fmt.Sprintf("127.0.0.%d:%s", i+1, port)
	}
	var got map[string]string
	c.Await("one endpoint per machine", 60*time.Second, func() (bool, string) {
		got = map[string]string{}
		out, _, code := c.Fleetctl("kv", "ls", "--recursive", "/services/kappa-global")
		if code != 0 {
			return false, out
		}
		for _, k := range strings.Fields(out) {
			if v, _, code := c.Fleetctl("kv", "get", k); code == 0 {
				got[k] = strings.TrimSpace(v)
			}
		}
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	})
	// Each published address reaches its machine's instance. The key is
	// published when the unit is active, which can be a moment before the
	// process has bound its port (the unit declares no health check), so
	// each address gets a few seconds to answer.
	for k, v := range got {
		c.Await(k+" answers at "+v, 15*time.Second, func() (bool, string) {
			resp, err := http.Get("http://" + v + "/")
			if err != nil {
				return false, err.Error()
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200, resp.Status
		})
	}
}
