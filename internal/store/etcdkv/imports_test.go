package etcdkv_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyTheSeamImportsTheEtcdClient: etcd is reached through this seam
// (internal/store/...). Besides the seam, only the embedded etcd server,
// the benchmarks and the test harness may import clientv3; any other
// package that does is reaching around the seam.
func TestOnlyTheSeamImportsTheEtcdClient(t *testing.T) {
	const clientv3 = "go.etcd.io/etcd/client/v3"
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/fleetd/fleet/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/fleetd/fleet/internal/store",      // and its subpackages
		"github.com/fleetd/fleet/internal/etcdserver", // and etcdtest
		"github.com/fleetd/fleet/internal/bench",
		"github.com/fleetd/fleet/cmd/fleet-bench",
		"github.com/fleetd/fleet/internal/testcluster",
	}
	var checked int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := fields[0]
		checked++
		ok := false
		for _, a := range allowed {
			if pkg == a || strings.HasPrefix(pkg, a+"/") {
				ok = true
			}
		}
		for _, imp := range fields[1:] {
			if imp == clientv3 && !ok {
				t.Errorf("%s imports %s: use internal/store/etcdkv (or internal/store) instead", pkg, clientv3)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("go list named only %d packages:\n%s", checked, out)
	}
}
