package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/testcluster"
)

// TestFailureSemanticsCLI: fleetctl start of a Type=oneshot unit returns
// once it has run (0 for exit 0; non-zero naming the status otherwise),
// and a misspelt key is named at submit (fleetctl and the API) and by
// fleetctl verify. Every wait is bounded by --block-attempts, so a
// regression fails instead of hanging.
func TestFailureSemanticsCLI(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	dir := t.TempDir()
	on := c.Machines[0].ID[:8] + ".../127.0.0.1"

	t.Run("oneshot exit 0", func(t *testing.T) {
		c := c.T(t)
		p := writeUnit(t, dir, "once-ok.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c \"echo did it; exit 0\"\n")
		out, errOut, code := c.Fleetctl("start", "--block-attempts", "30", p)
		if code != 0 || !strings.Contains(out, "Unit once-ok.service ran on "+on+" (exit status 0)") {
			t.Fatalf("start: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		// without --block-attempts too (it used to wait forever)
		p = writeUnit(t, dir, "once-ok2.service", "[Service]\nType=oneshot\nExecStart=/bin/true\nExecStart=/bin/sh -c \"exit 0\"\n")
		out, errOut, code = c.Fleetctl("start", p)
		if code != 0 || !strings.Contains(out, "Unit once-ok2.service ran on "+on+" (exit status 0)") {
			t.Fatalf("start: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("oneshot exit 3", func(t *testing.T) {
		c := c.T(t)
		p := writeUnit(t, dir, "once-bad.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c \"echo it broke; exit 3\"\n")
		out, errOut, code := c.Fleetctl("start", "--block-attempts", "30", p)
		if code == 0 || !strings.Contains(errOut, "Unit once-bad.service failed on "+on+": exit status 3") {
			t.Fatalf("start: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if strings.Contains(errOut, "timed out") {
			t.Errorf("reported a timeout, not the failure:\n%s", errOut)
		}
		t.Logf("stderr:\n%s", errOut)

		// stopped and started again: the new run is reported, not the old
		c.MustFleetctl("stop", "--block-attempts", "30", "once-bad.service")
		out, errOut, code = c.Fleetctl("start", "--block-attempts", "30", "once-bad.service")
		if code == 0 || !strings.Contains(errOut, "Unit once-bad.service failed on "+on+": exit status 3") || strings.Contains(errOut, "timed out") {
			t.Fatalf("start again: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("oneshot started again after stop", func(t *testing.T) {
		c := c.T(t)
		c.MustFleetctl("stop", "--block-attempts", "30", "once-ok.service")
		out, errOut, code := c.Fleetctl("start", "--block-attempts", "30", "once-ok.service")
		if code != 0 || !strings.Contains(out, "Unit once-ok.service ran on "+on+" (exit status 0)") {
			t.Fatalf("start again: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		// starting a launched oneshot that already ran reports that run
		out, errOut, code = c.Fleetctl("start", "--block-attempts", "30", "once-ok.service")
		if code != 0 || !strings.Contains(out, "Unit once-ok.service ran on "+on+" (exit status 0)") {
			t.Fatalf("start launched: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("oneshot RemainAfterExit", func(t *testing.T) {
		c := c.T(t)
		p := writeUnit(t, dir, "once-stay.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
		out, errOut, code := c.Fleetctl("start", "--block-attempts", "30", p)
		if code != 0 || !strings.Contains(out, "Unit once-stay.service launched on "+on) || strings.Contains(out, " ran on ") {
			t.Fatalf("start: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	const typo = "[Service]\nExecStart=/bin/sh -c \"sleep 1000\"\nExecStrat=/bin/true\n"
	const named = "Unknown key name 'ExecStrat' in section 'Service', ignoring."

	t.Run("verify names ExecStrat", func(t *testing.T) {
		c := c.T(t)
		p := writeUnit(t, dir, "typo.service", typo)
		out, errOut, code := c.Fleetctl("verify", p)
		if code == 0 || !strings.Contains(errOut, "typo.service: "+named) {
			t.Fatalf("verify: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		good := writeUnit(t, dir, "good.service", helloUnit)
		if out, errOut, code := c.Fleetctl("verify", good); code != 0 || errOut != "" {
			t.Fatalf("verify good: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("submit names ExecStrat", func(t *testing.T) {
		c := c.T(t)
		p := writeUnit(t, dir, "typo.service", typo)
		out, errOut, code := c.Fleetctl("submit", p)
		if code != 0 || !strings.Contains(errOut, "WARNING: Unit typo.service: "+named) {
			t.Fatalf("submit: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if strings.Count(errOut, "ExecStrat") != 1 {
			t.Errorf("warning printed more than once:\n%s", errOut)
		}
	})

	t.Run("API PUT names ExecStrat", func(t *testing.T) {
		body := `{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"},` +
			`{"section":"Service","name":"ExecStrat","value":"/bin/true"}]}`
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut,
			c.Machines[0].APIURL+"/fleet/v1/units/raw.service?alt=json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.Admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Values("X-Fleet-Warning")
		if resp.StatusCode != http.StatusCreated || len(got) != 1 || got[0] != "raw.service: "+named {
			t.Fatalf("PUT: %d, warnings %q", resp.StatusCode, got)
		}
	})
}
