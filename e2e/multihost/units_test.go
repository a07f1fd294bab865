package multihost

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// seed000Docker is seed 000's test.service as the tutorial wrote it, with
// the docker pull dropped (no registry: the busybox image is built
// locally), --rm added so that stop leaves nothing behind, and the
// container and image names made unique to this run.
const seed000Docker = `[Unit]
Description=MyTestApp
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-DOCKER kill NAME
ExecStartPre=-DOCKER rm NAME
ExecStart=DOCKER run --rm --name NAME IMAGE /bin/sh -c "while true; do echo Hello World; sleep 1; done"
ExecStop=DOCKER stop NAME
`

// webDocker runs our static web server (image FROM scratch), one per
// machine.
const webDocker = `[Unit]
Description=web %i in Docker
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-DOCKER kill NAME-%i
ExecStartPre=-DOCKER rm NAME-%i
ExecStart=DOCKER run --rm --name NAME-%i --hostname web-%i IMAGE
ExecStop=DOCKER stop NAME-%i

[X-Fleet]
Conflicts=web@*.service
`

func unitText(tmpl, docker, name, image string) string {
	return strings.NewReplacer("DOCKER", docker, "NAME", name, "IMAGE", image).Replace(tmpl)
}

// containers lists the containers (running or not) whose name starts with
// prefix.
func containers(t testing.TB, prefix string) []string {
	out, err := docker(time.Minute, "ps", "-a", "--format", "{{.Names}} {{.Status}}", "--filter", "name=^/"+prefix)
	if err != nil {
		t.Logf("%v", err)
		return []string{"(docker ps failed)"}
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			names = append(names, l)
		}
	}
	return names
}

func removeContainers(prefix string) {
	out, _ := docker(time.Minute, "ps", "-a", "-q", "--filter", "name=^/"+prefix)
	if ids := strings.Fields(out); len(ids) > 0 {
		_, _ = docker(2*time.Minute, append([]string{"rm", "-f"}, ids...)...)
	}
}

// Docker units as in the seeds, on two fleetd running on this host: the
// docker client is each unit's main process; journal shows the
// container's output; stop leaves no container behind.
func testDockerUnits(t *testing.T, a *artifacts) {
	prefix := a.run + "-u-"
	t.Cleanup(func() { removeContainers(prefix) }) // runs after the cluster stopped
	c := testcluster.New(t, a.fleetd, 2, testcluster.Options{
		Metadata: []string{
			"az=eu-central-1a,region=eu-central-1",
			"az=eu-central-1b,region=eu-central-1",
		},
	})
	dir := t.TempDir()
	name := prefix + "busybox1"
	path := filepath.Join(dir, "test.service")
	if err := os.WriteFile(path, []byte(unitText(seed000Docker, a.dockerBin, name, a.busybox)), 0o644); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	c.MustFleetctl("start", path)
	where := c.AwaitActive(60*time.Second, "test.service")
	idx := c.MachineIndex(where["test.service"])
	other := 1 - idx
	var status string
	c.Await("Hello World in status (asked from the other machine)", 60*time.Second, func() (bool, string) {
		out, errOut, _ := c.FleetctlOn(other, "status", "test.service")
		status = out
		return strings.Count(out, "Hello World") >= 2, out + errOut
	})
	t.Logf("test.service (docker run) active with output in %v on machine %d; status from machine %d:\n%s",
		time.Since(start).Round(time.Millisecond), idx, other, status)
	if !strings.Contains(status, "Main PID:") || !strings.Contains(status, "(docker)") {
		t.Errorf("status: the docker client is not the main process:\n%s", status)
	}
	if got := containers(t, name); len(got) != 1 || !strings.Contains(got[0], "Up") {
		t.Errorf("container %s: %q, want one running", name, got)
	}
	c.Await("journal test.service shows Hello World", 30*time.Second, func() (bool, string) {
		out, _, _ := c.FleetctlOn(other, "journal", "--lines", "5", "test.service")
		return strings.Count(out, "Hello World") >= 2, out
	})

	start = time.Now()
	c.MustFleetctl("stop", "test.service")
	c.Await("test.service inactive", 60*time.Second, func() (bool, string) {
		out, _, _ := c.Fleetctl("list-units", "--no-legend", "--full")
		return !strings.Contains(out, "test.service") || strings.Contains(out, "inactive") || strings.Contains(out, "failed"), out
	})
	c.Await("no container left after stop", 60*time.Second, func() (bool, string) {
		got := containers(t, name)
		return len(got) == 0, strings.Join(got, "\n")
	})
	t.Logf("stop: no container left after %v (ExecStop=docker stop; busybox sh as PID 1 ignores SIGTERM, so docker stop waits its 10 s grace)",
		time.Since(start).Round(time.Millisecond))
	c.MustFleetctl("destroy", "test.service")

	// Our web server image, one instance per machine (Conflicts=).
	path = filepath.Join(dir, "web@.service")
	if err := os.WriteFile(path, []byte(unitText(webDocker, a.dockerBin, prefix+"web", a.web)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.MustFleetctl("submit", path)
	start = time.Now()
	c.MustFleetctl("start", "--no-block", "web@1.service", "web@2.service")
	where = c.AwaitActive(60*time.Second, "web@1.service", "web@2.service")
	if where["web@1.service"] == where["web@2.service"] {
		t.Errorf("Conflicts=web@*: both on %s", where["web@1.service"])
	}
	for i := 1; i <= 2; i++ {
		cname := fmt.Sprintf("%sweb-%d", prefix, i)
		var body string
		c.Await("HTTP answer from "+cname, 60*time.Second, func() (bool, string) {
			ip, err := docker(time.Minute, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", cname)
			if err != nil || strings.TrimSpace(ip) == "" {
				return false, ip
			}
			// The default bridge is the host's own interface: reachable.
			body, err = httpGet("http://" + strings.TrimSpace(ip) + ":8080/hello")
			return err == nil && strings.Contains(body, fmt.Sprintf("hello from web-%d", i)), fmt.Sprint(body, err)
		})
		unit := fmt.Sprintf("web@%d.service", i)
		c.Await("journal "+unit+" shows the request", 30*time.Second, func() (bool, string) {
			out, _, _ := c.FleetctlOn(1-c.MachineIndex(where[unit]), "journal", unit)
			return strings.Contains(out, "GET /hello from"), out
		})
	}
	t.Logf("web@1, web@2 (our server FROM scratch) answering on two machines after %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	c.MustFleetctl("destroy", "web@1.service", "web@2.service", "web@.service")
	c.Await("no web container left after destroy", 60*time.Second, func() (bool, string) {
		got := containers(t, prefix+"web")
		return len(got) == 0, strings.Join(got, "\n")
	})
	t.Logf("destroy web@1, web@2: no container left after %v (the server exits on docker stop's SIGTERM)", time.Since(start).Round(time.Millisecond))
}

func httpGet(url string) (string, error) {
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}
