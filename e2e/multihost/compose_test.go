package multihost

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// seed002Web is seed 002's web@.service for the fleetd containers (no
// Docker inside them): busybox httpd serves "webNN on <host>" on port
// 180NN; the docker kill/rm/pull pre-steps are echoes, docker stop an echo.
const seed002Web = `[Unit]
Description=Web service %i
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/bin/sh -c "echo docker kill web%i; exit 1"
ExecStartPre=-/bin/sh -c "echo docker rm web%i; exit 1"
ExecStartPre=/bin/echo docker pull srirajan/web
ExecStart=/bin/sh -c "mkdir -p /tmp/web%i && echo web%i on %H > /tmp/web%i/index.html && exec httpd -f -v -p 180%i -h /tmp/web%i"
ExecStop=/bin/echo docker stop web%i
`

// composeCmd returns the compose command: the docker compose plugin, or
// docker-compose.
func composeCmd() []string {
	if out, err := docker(30*time.Second, "compose", "version"); err == nil && strings.Contains(out, "version") {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	return nil
}

// The docker compose example (deploy/docker/docker-compose.yml) starts a
// 5-machine cluster with one command (and a cluster token file, as
// cluster.sh makes one); seed 002's web@01..10 spread over it. Anonymous
// callers from this host can do nothing; the admin token of a machine
// can.
func testCompose(t *testing.T, a *artifacts) {
	if testing.Short() {
		t.Skip("-short: skipping the compose example (a second 5-machine cluster)")
	}
	cc := composeCmd()
	if cc == nil {
		t.Skip("skipping: neither `docker compose` nor docker-compose is installed")
	}
	file := filepath.Join(repoRoot(), "deploy", "docker", "docker-compose.yml")
	project := strings.ReplaceAll(a.run, "-", "") + "c"
	subnet := pickSubnet(t)
	// Not deploy/docker/cluster-token (cluster.sh's): this test's own,
	// removed after the containers (cleanups run last-registered first).
	tokenFile := newClusterTokenFile(t)
	env := append(os.Environ(), "FLEET_IMAGE="+a.fleetImg, "FLEET_SUBNET="+subnet, "FLEET_CLUSTER_TOKEN_PATH="+tokenFile)
	compose := func(timeout time.Duration, args ...string) (string, error) {
		full := append(append(slices.Clone(cc[1:]), "-p", project, "-f", file), args...)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, cc[0], full...)
		cmd.Env = env
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("%s %s: %w\n%s", cc[0], strings.Join(full, " "), err, out)
		}
		return string(out), nil
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := compose(time.Minute, "logs", "--no-color", "--tail", "60")
			t.Logf("compose logs:\n%s", out)
		}
		if out, err := compose(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
		// Belt and braces, should compose have failed half-way.
		out, _ := docker(time.Minute, "ps", "-a", "-q", "--filter", "label=com.docker.compose.project="+project)
		if ids := strings.Fields(out); len(ids) > 0 {
			_, _ = docker(2*time.Minute, append([]string{"rm", "-f"}, ids...)...)
		}
		_, _ = docker(time.Minute, "network", "rm", project+"_fleet")
	})

	start := time.Now()
	if out, err := compose(3*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	up := time.Since(start)
	c := newHostClusterView(t, a, subnet, tokenFile)
	for n := 1; n <= 5; n++ {
		h := c.newHost(n, n <= 3)
		// docker exec (the admin token) needs compose's container.
		out, err := docker(time.Minute, "ps", "-q", "--filter", "label=com.docker.compose.project="+project,
			"--filter", "label=com.docker.compose.service="+h.Name)
		if id := strings.Fields(out); err != nil || len(id) != 1 {
			t.Fatalf("the container of service %s: %v %q", h.Name, err, out)
		} else {
			h.CName = id[0]
		}
	}
	c.learnIDs(90 * time.Second)
	c.awaitMachines(90 * time.Second)
	t.Logf("TIME compose up -d of 5 machines (subnet %s.0/24): %v; all listed by every machine after %v",
		subnet, up.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// The seed's sequence: submit, start web@01, then web@{02..10}.
	path := c.writeUnit("web@.service", seed002Web)
	checkAnonymousRefused(t, c, path)
	c.mustFctl("submit", path)
	start = time.Now()
	c.mustFctl("start", "web@01.service")
	var units []string
	for i := 2; i <= 10; i++ {
		units = append(units, fmt.Sprintf("web@%02d.service", i))
	}
	c.mustFctl(append([]string{"start"}, units...)...)
	units = append([]string{"web@01.service"}, units...)
	where, _ := c.awaitActive(90*time.Second, units)
	t.Logf("TIME web@01..10 active %v after the first fleetctl start", time.Since(start).Round(time.Millisecond))
	load := map[string]int{}
	for _, h := range c.hosts {
		load[h.Name] = 0
	}
	for _, h := range where {
		load[h.Name]++
	}
	counts := slices.Sorted(func(yield func(int) bool) {
		for _, n := range load {
			if !yield(n) {
				return
			}
		}
	})
	t.Logf("web@01..10 per machine: %v", load)
	if counts[0] == 0 || counts[len(counts)-1]-counts[0] > 1 {
		t.Errorf("web@01..10 not spread over the 5 machines: %v", load)
	}
	out := c.mustFctl("list-units")
	t.Logf("fleetctl list-units:\n%s", out)

	// Every instance answers on its machine's IP, from this host.
	for _, u := range units {
		h := where[u]
		inst := strings.TrimSuffix(strings.TrimPrefix(u, "web@"), ".service")
		c.await("HTTP from "+u, 30*time.Second, func() (bool, string) {
			body, err := httpGet("http://" + h.IP + ":180" + inst + "/")
			return err == nil && strings.TrimSpace(body) == "web"+inst+" on "+h.Name, fmt.Sprint(body, err)
		})
	}
	// fleetctl inside a machine, through the compose command.
	out, err := compose(time.Minute, "exec", "-T", "m5", "fleetctl", "journal", "web@01")
	if err != nil || !strings.Contains(out, "docker pull srirajan/web") {
		t.Errorf("fleetctl journal web@01 inside m5: %v\n%s", err, out)
	}
	c.mustFctl(append(append([]string{"destroy"}, units...), "web@.service")...)
}

// checkAnonymousRefused checks that fleetctl from this host (beyond
// loopback for every machine) without a credential can neither submit
// unitFile nor read, on any machine, and that nothing was stored.
func checkAnonymousRefused(t *testing.T, c *hostCluster, unitFile string) {
	t.Helper()
	unit := filepath.Base(unitFile)
	for _, h := range c.up() {
		out, errOut, code := fleetctlMain("--endpoint", h.APIURL(), "submit", unitFile)
		if code == 0 {
			t.Errorf("anonymous fleetctl submit %s on %s (%s) succeeded:\n%s%s", unit, h.Name, h.APIURL(), out, errOut)
		} else if h.Name == "m1" {
			t.Logf("anonymous fleetctl submit on %s: exit %d: %s", h.Name, code, strings.TrimSpace(out+errOut))
		}
		out, errOut, code = fleetctlMain("--endpoint", h.APIURL(), "list-machines")
		if code == 0 {
			t.Errorf("anonymous fleetctl list-machines on %s (%s) succeeded:\n%s%s", h.Name, h.APIURL(), out, errOut)
		}
	}
	// Unit files are the cluster's: ask one machine, with the token.
	if out := c.mustFctl("list-unit-files", "--no-legend", "--full"); strings.Contains(out, unit) {
		t.Errorf("%s was stored after anonymous submits:\n%s", unit, out)
	}
}
