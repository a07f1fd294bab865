package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/auth/authtest"
	"github.com/fleetd/fleet/internal/cli"
	"github.com/fleetd/fleet/internal/testcluster"
)

const (
	secAdminToken    = "e2e-admin-0123456789abcdef0123"
	secReadonlyToken = "e2e-readonly-0123456789abcdef01"
)

// fleetctlAs runs fleetctl against endpoint with env (FLEETCTL_TOKEN=...).
func fleetctlAs(ctx context.Context, endpoint string, env []string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := cli.Main(ctx, append([]string{"--endpoint", endpoint}, args...), env, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// Two fleetd whose APIs listen on a non-loopback address with a shared
// tokens file: fleetctl without a token is told to pass one, a read-only
// token can look but not start, an admin token runs the unit, and status
// and journal of a unit on the other machine are proxied with the peer
// token.
func TestSecurityTokensAcrossMachines(t *testing.T) {
	ip := authtest.NonLoopbackIP()
	if ip == "" {
		t.Skip("no non-loopback IPv4 address on this machine to listen on")
	}
	tokens := authtest.TokensFile(t, t.TempDir(), "admin "+secAdminToken, "readonly "+secReadonlyToken)
	c := testcluster.New(t, fleetdBin, 2, testcluster.Options{
		APIHost:      ip,
		Metadata:     []string{"node=a", "node=b"},
		ExtraArgs:    []string{"--api-tokens-file", tokens},
		FleetctlArgs: []string{"--token", secAdminToken},
	})
	ep := c.Machines[0].APIURL
	if !strings.Contains(ep, ip) {
		t.Fatalf("API URL %s is not on %s", ep, ip)
	}
	ctx := t.Context()
	dir := t.TempDir()
	path := writeUnit(t, dir, "sec.service", helloUnit+"\n[X-Fleet]\nMachineMetadata=node=b\n")

	// No token: every call is refused, with a hint.
	_, errOut, code := fleetctlAs(ctx, ep, nil, "list-units")
	if code == 0 || !strings.Contains(errOut, "fleetd at "+ep+" requires a credential: pass --token, --token-file or FLEETCTL_TOKEN") {
		t.Errorf("list-units without a token: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = fleetctlAs(ctx, ep, nil, "start", "--no-block", path)
	if code == 0 || !strings.Contains(errOut, "requires a credential") {
		t.Errorf("start without a token: exit %d, stderr %q", code, errOut)
	}
	// A wrong token.
	_, errOut, code = fleetctlAs(ctx, ep, []string{"FLEETCTL_TOKEN=wrong-wrong-wrong-wrong"}, "list-machines")
	if code == 0 || !strings.Contains(errOut, "refused the credential") {
		t.Errorf("wrong token: exit %d, stderr %q", code, errOut)
	}
	// Read-only: reading works, start is refused with the server's reason.
	ro := []string{"FLEETCTL_TOKEN=" + secReadonlyToken}
	out, errOut, code := fleetctlAs(ctx, ep, ro, "list-machines", "--no-legend")
	if code != 0 || testcountLines(out) != 2 {
		t.Errorf("list-machines with a read-only token: exit %d\n%s%s", code, out, errOut)
	}
	_, errOut, code = fleetctlAs(ctx, ep, ro, "start", "--no-block", path)
	if code == 0 || !strings.Contains(errOut, "permission denied: read-only credential cannot PUT /fleet/v1/units/sec.service") {
		t.Errorf("start with a read-only token: exit %d, stderr %q", code, errOut)
	}
	if out := c.MustFleetctl("list-unit-files", "--no-legend"); strings.TrimSpace(out) != "" {
		t.Fatalf("units stored after refused calls:\n%s", out)
	}

	// Admin (--token, through the cluster's FleetctlArgs) starts it on b.
	c.MustFleetctl("start", path)
	states := c.AwaitActive(20*time.Second, "sec.service")
	if c.MachineIndex(states["sec.service"]) != 1 {
		t.Fatalf("sec.service runs on %v, want machine 1", states)
	}
	// Status and journal asked of machine 0 come from machine 1, proxied
	// with the peer token; the read-only token is enough.
	c.Await("proxied journal", 15*time.Second, func() (bool, string) {
		out, errOut, _ := fleetctlAs(ctx, ep, ro, "journal", "--lines", "3", "sec.service")
		return strings.Count(out, "Hello World") >= 3, out + errOut
	})
	out, errOut, code = fleetctlAs(ctx, ep, ro, "status", "sec.service")
	if code != 0 || !strings.Contains(out, "Active: active (running)") {
		t.Errorf("proxied status: exit %d\n%s%s", code, out, errOut)
	}
	// The read-only token cannot stop it either.
	_, errOut, code = fleetctlAs(ctx, ep, ro, "stop", "--no-block", "sec.service")
	if code == 0 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("stop with a read-only token: exit %d, stderr %q", code, errOut)
	}
}

func testcountLines(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}
