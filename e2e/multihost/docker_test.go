// Package multihost holds end-to-end tests on real containers: Docker units
// (docker run/stop under fleetd), multi-host clusters of fleetd containers
// on a private Docker network (embedded etcd members, agents, a member
// added at run time), the docker compose example, and failure tests (kill
// -9, network partition, etcd leader loss) that print the times they
// measured.
//
// The clusters run with fleetd's secure defaults, as docs/multihost.md
// sets them up: one cluster token file per cluster (a temporary file,
// mounted read-only into every container), https etcd URLs between the
// containers, and fleetctl calls from the test with a machine's admin
// token (anonymous callers from beyond loopback may do nothing).
//
// Everything is built locally (no registry): static fleetd and fleetctl,
// and images FROM scratch with Debian's busybox-static. Without a Docker
// engine or /bin/busybox the tests skip with the reason. Every container,
// network and image a test creates carries the run's unique name and is
// removed by t.Cleanup, also when the test fails.
package multihost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// repoRoot is the module's root directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// docker runs the docker client and returns its combined output.
func docker(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// mustDocker runs docker and fails the test on error.
func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := docker(2*time.Minute, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireDocker skips the test, with the reason, when there is no usable
// Docker engine or no static busybox to build images from.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("skipping: no docker client in PATH (these tests need a Docker engine)")
	}
	if out, err := docker(30*time.Second, "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("skipping: docker info failed, no usable Docker engine: %v", strings.TrimSpace(out))
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipping: /bin/busybox is missing (apt-get install busybox-static): the test images are built FROM scratch with it")
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// artifacts are what one test run builds: static binaries and images.
type artifacts struct {
	run      string // unique lowercase name of this run: prefix of everything created
	binDir   string // fleetd, fleetctl, testweb (static)
	fleetd   string
	fleetImg string // fleetd + fleet-shim + fleetctl + busybox, FROM scratch (deploy/docker/Dockerfile)
	busybox  string // busybox alone, FROM scratch (seed 000's "busybox")
	web      string // testweb alone, FROM scratch
	// dockerBin is the docker client units call: /usr/bin/docker as in the
	// seeds when it exists, else the one in PATH.
	dockerBin string
}

// build makes the static binaries and the three images; the images are
// removed when t ends.
func build(t *testing.T) *artifacts {
	t.Helper()
	a := &artifacts{run: "fleete2e-" + randomHex(t, 3), binDir: t.TempDir()}
	a.fleetd = filepath.Join(a.binDir, "fleetd")
	a.fleetImg, a.busybox, a.web = a.run+"-fleetd", a.run+"-busybox", a.run+"-web"
	a.dockerBin = "/usr/bin/docker"
	if _, err := os.Stat(a.dockerBin); err != nil {
		p, err := exec.LookPath("docker")
		if err != nil {
			t.Fatal(err)
		}
		a.dockerBin = p
		t.Logf("no /usr/bin/docker: units call %s instead", p)
	}

	start := time.Now()
	cmd := exec.Command("go", "build", "-o", a.binDir+"/", "./cmd/fleetd", "./cmd/fleet-shim", "./cmd/fleetctl", "./e2e/multihost/testweb")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	t.Logf("static go build of fleetd, fleet-shim, fleetctl, testweb: %v", time.Since(start).Round(time.Millisecond))

	t.Cleanup(func() {
		// Images go last (cleanups run in reverse): containers first.
		_, _ = docker(time.Minute, "rmi", "-f", a.fleetImg, a.busybox, a.web)
	})
	start = time.Now()
	buildImage(t, a.busybox, busyboxDockerfile, map[string]string{"busybox": "/bin/busybox"})
	buildImage(t, a.web, webDockerfile, map[string]string{"testweb": filepath.Join(a.binDir, "testweb")})
	df, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	buildImage(t, a.fleetImg, string(df), map[string]string{
		"bin/busybox":    "/bin/busybox",
		"bin/fleetd":     a.fleetd,
		"bin/fleet-shim": filepath.Join(a.binDir, "fleet-shim"),
		"bin/fleetctl":   filepath.Join(a.binDir, "fleetctl"),
	})
	t.Logf("docker build of 3 images FROM scratch: %v", time.Since(start).Round(time.Millisecond))
	return a
}

const busyboxDockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
`

const webDockerfile = `FROM scratch
COPY testweb /testweb
EXPOSE 8080
ENTRYPOINT ["/testweb"]
`

// buildImage builds tag from a Dockerfile and a context of files
// (name in the context → source path).
func buildImage(t *testing.T, tag, dockerfile string, files map[string]string) {
	t.Helper()
	ctxDir := t.TempDir()
	for name, src := range files {
		dst := filepath.Join(ctxDir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, "build", "-q", "--force-rm", "-t", tag, ctxDir)
}

// TestDocker builds the binaries and images once and runs every Docker test
// on them: go test -run 'TestDocker/units' (or multihost, compose) picks one.
func TestDocker(t *testing.T) {
	requireDocker(t)
	a := build(t)
	t.Run("units", func(t *testing.T) { testDockerUnits(t, a) })
	t.Run("multihost", func(t *testing.T) { testMultiHost(t, a) })
	t.Run("compose", func(t *testing.T) { testCompose(t, a) })
}
