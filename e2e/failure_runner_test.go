package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// failureDocker runs the docker client.
func failureDocker(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// failureRequireDocker skips without a Docker engine or a static busybox
// to build the image from (as e2e/multihost does).
func failureRequireDocker(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("skipping: no docker client in PATH (this test needs a Docker engine)")
	}
	if out, err := failureDocker(30*time.Second, "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("skipping: docker info failed, no usable Docker engine: %v", strings.TrimSpace(out))
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipping: /bin/busybox is missing (apt-get install busybox-static): the test image is built FROM scratch with it")
	}
	return bin
}

// When fleetd dies (kill -9), the unit's shim stops it after agent_ttl by
// running its ExecStop=: `docker stop` removes a `docker run --rm`
// container, which signalling the docker client alone would leave running.
func TestShimRunsExecStopWhenFleetdDies(t *testing.T) {
	dockerBin := failureRequireDocker(t)
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	run := "fleete2e-failure-" + hex.EncodeToString(rnd[:])
	img, ctr := run+"-busybox", run+"-web"

	ctxDir := t.TempDir()
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	// sleep, PID 1 in the container, ignores the SIGTERM the docker client
	// passes on when it is signalled: only ExecStop= (docker stop, which
	// sends the image's STOPSIGNAL at once) ends the container.
	df := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nSTOPSIGNAL SIGKILL\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = failureDocker(time.Minute, "rmi", "-f", img) })
	if out, err := failureDocker(2*time.Minute, "build", "-q", "--force-rm", "-t", img, ctxDir); err != nil {
		t.Fatalf("build image: %v\n%s", err, out)
	}

	const ttl = 3 * time.Second
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{AgentTTL: ttl})
	// Runs before the cluster's cleanup (cleanups run in reverse).
	t.Cleanup(func() { _, _ = failureDocker(time.Minute, "rm", "-f", ctr) })

	running := func() bool {
		out, err := failureDocker(30*time.Second, "ps", "-q", "--filter", "name=^/"+ctr+"$")
		return err == nil && strings.TrimSpace(out) != ""
	}
	dir := t.TempDir()
	unit := writeUnit(t, dir, "dockerweb.service", fmt.Sprintf(`[Service]
ExecStartPre=-%[1]s rm -f %[2]s
ExecStart=%[1]s run --rm --name %[2]s %[3]s sleep 1000
ExecStop=%[1]s stop %[2]s
`, dockerBin, ctr, img))
	c.MustFleetctl("start", unit)
	c.AwaitActive(60*time.Second, "dockerweb.service")
	c.Await("container running", 60*time.Second, func() (bool, string) {
		return running(), journalText(c.Machines[0], "dockerweb.service")
	})

	c.Kill(0)
	killed := time.Now()
	deadline := killed.Add(ttl + 15*time.Second)
	for running() {
		if time.Now().After(deadline) {
			t.Fatalf("container %s still running %v after fleetd was killed (agent_ttl %v)\n%s",
				ctr, time.Since(killed).Round(time.Millisecond), ttl, journalText(c.Machines[0], "dockerweb.service"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("container gone %v after kill -9 of fleetd (agent_ttl %v)", time.Since(killed).Round(time.Millisecond), ttl)
	text := journalText(c.Machines[0], "dockerweb.service")
	if !strings.Contains(text, "has not renewed the machine's lease") {
		t.Errorf("no heartbeat line in the journal:\n%s", text)
	}
}
