package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// kappaStory is seed 004's setup: kappa-test@.service, a tiny HTTP server
// answering its instance name on port <prefix>%i (free ports), declared in [X-Service], on
// a 3-machine cluster. Later steps (the load balancer) extend it.
type kappaStory struct {
	t        *testing.T
	c        *testcluster.Cluster
	dir      string
	kappa    string // the server binary
	fleetctl string // fleetctl binary, for ExecStartPost
	// prefix makes instance i's port prefix*10+i ("<prefix>%i" in the
	// unit): free on every machine's address when the story starts.
	prefix int
}

// port is instance i's port.
func (s *kappaStory) port(i int) int { return s.prefix*10 + i }

// freePortPrefix finds a 4-digit p such that ports p1..p3 are free on
// 127.0.0.1-3 (the test machines' public IPs): instance ports are written
// as "<p>%i" in a template, so they must share their leading digits.
func freePortPrefix(t *testing.T) int {
	t.Helper()
	for p := 2000 + rand.IntN(4000); ; p++ {
		if p > 6552 {
			p = 2000
		}
		free := true
		for i := 1; i <= 3 && free; i++ {
			for m := 1; m <= 3 && free; m++ {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", m, p*10+i))
				if err != nil {
					free = false
					break
				}
				l.Close()
			}
		}
		if free {
			return p
		}
	}
}

// buildHelper builds a main package of this module into dir.
func buildHelper(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Dir(file)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func newKappaStory(t *testing.T) *kappaStory {
	t.Helper()
	bin := t.TempDir()
	s := &kappaStory{
		t:        t,
		dir:      t.TempDir(),
		kappa:    buildHelper(t, bin, "kappa", "./testdata/kappa"),
		fleetctl: buildHelper(t, bin, "fleetctl", "../cmd/fleetctl"),
		prefix:   freePortPrefix(t),
	}
	s.c = testcluster.New(t, fleetdBin, 3, testcluster.Options{AgentTTL: 3 * time.Second})
	// ExecStartPost uses fleetctl kv through FLEETCTL_ENDPOINT, set by fleetd.
	writeUnit(t, s.dir, "kappa-test@.service", fmt.Sprintf(`[Unit]
Description=kappa test %%i
[Service]
ExecStart=%s -listen ${FLEET_PUBLIC_IP}:%d%%i -name %%n -delay 50ms -health-file %s
ExecStartPost=%s kv set /kappa/%%i/unit %%n --ttl 600
[X-Service]
Name=kappa-test
Port=%d%%i
CheckHTTP=/health
CheckInterval=1s
[X-Fleet]
Conflicts=kappa-test@*.service
`, s.kappa, s.prefix, filepath.Join(s.dir, "unhealthy-%i"), s.fleetctl, s.prefix))
	return s
}

// unhealthyFile is the file whose existence fails instance i's health
// check (GET /health answers 503 while it exists).
func (s *kappaStory) unhealthyFile(i int) string {
	return filepath.Join(s.dir, fmt.Sprintf("unhealthy-%d", i))
}

func (s *kappaStory) unitPath(i int) string {
	return filepath.Join(s.dir, fmt.Sprintf("kappa-test@%d.service", i))
}

// key is instance i's endpoint key when it runs on machine (a full machine
// ID): registrator's layout with the machine ID in the <host> slot, so that
// the three fleetd of one host never write the same key.
func (s *kappaStory) key(i int, machine string) string {
	return fmt.Sprintf("/services/kappa-test/%s:kappa-test@%d.service:%d", machine, i, s.port(i))
}

// endpoints reads /services/kappa-test through fleetctl kv: key -> value.
func (s *kappaStory) endpoints() (map[string]string, string) {
	out, errOut, code := s.c.Fleetctl("kv", "ls", "--recursive", "/services/kappa-test")
	eps := map[string]string{}
	if code != 0 {
		return eps, out + errOut
	}
	for _, k := range strings.Fields(out) {
		v, _, code := s.c.Fleetctl("kv", "get", k)
		if code == 0 {
			eps[k] = strings.TrimSpace(v)
		}
	}
	return eps, fmt.Sprint(eps)
}

func (s *kappaStory) awaitEndpoints(what string, cond func(map[string]string) bool) map[string]string {
	s.t.Helper()
	var eps map[string]string
	s.c.Await(what, 60*time.Second, func() (bool, string) {
		var state string
		eps, state = s.endpoints()
		return cond(eps), state
	})
	return eps
}

func TestServiceDiscovery(t *testing.T) {
	s := newKappaStory(t)
	c := s.c
	c.MustFleetctl("start", "--no-block", s.unitPath(1), s.unitPath(2), s.unitPath(3))
	where := c.AwaitActive(60*time.Second, "kappa-test@1.service", "kappa-test@2.service", "kappa-test@3.service")

	eps := s.awaitEndpoints("3 kappa-test endpoints", func(eps map[string]string) bool { return len(eps) == 3 })
	for i := 1; i <= 3; i++ {
		m := c.MachineIndex(where[fmt.Sprintf("kappa-test@%d.service", i)])
		want := fmt.Sprintf("127.0.0.%d:%d", m+1, s.port(i))
		key := s.key(i, c.Machines[m].ID)
		if got := eps[key]; got != want {
			t.Errorf("%s = %q, want %q (the public IP of machine %d); endpoints: %v", key, got, want, m, eps)
		}
		// The endpoint answers with its instance.
		resp, err := http.Get("http://" + eps[key] + "/")
		if err != nil {
			t.Fatalf("GET endpoint %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != fmt.Sprintf("kappa-test@%d.service", i) {
			t.Errorf("endpoint %d answers %q", i, body)
		}
	}
	// ExecStartPost reached the local fleetd through FLEETCTL_ENDPOINT.
	if out := c.MustFleetctl("kv", "get", "/kappa/2/unit"); strings.TrimSpace(out) != "kappa-test@2.service" {
		t.Errorf("ExecStartPost kv set: %q", out)
	}

	t.Run("stop deregisters before the process dies", func(t *testing.T) {
		c := c.T(t)
		key := s.key(2, where["kappa-test@2.service"])
		c.MustFleetctl("stop", "kappa-test@2.service")
		eps, _ := s.endpoints()
		if _, ok := eps[key]; ok || len(eps) != 2 {
			t.Fatalf("after stop: %v", eps)
		}
		c.MustFleetctl("start", "kappa-test@2.service")
		back := c.AwaitActive(60*time.Second, "kappa-test@2.service")
		key = s.key(2, back["kappa-test@2.service"])
		s.awaitEndpoints("kappa-test@2 back", func(eps map[string]string) bool {
			_, ok := eps[key]
			return ok && len(eps) == 3
		})
	})

	t.Run("a dead machine's endpoints expire with its lease", func(t *testing.T) {
		c := c.T(t)
		where := c.AwaitActive(30*time.Second, "kappa-test@1.service", "kappa-test@2.service", "kappa-test@3.service")
		victim := -1
		for _, id := range where {
			if i := c.MachineIndex(id); i > 0 { // machine 0 holds etcd
				victim = i
				break
			}
		}
		if victim < 0 {
			t.Fatalf("no kappa unit outside machine 0: %v", where)
		}
		ip := fmt.Sprintf("127.0.0.%d:", victim+1)
		c.Kill(victim)
		start := time.Now()
		s.awaitEndpoints("endpoints of machine "+fmt.Sprint(victim)+" gone", func(eps map[string]string) bool {
			for _, v := range eps {
				if strings.HasPrefix(v, ip) {
					return false
				}
			}
			return len(eps) == 2
		})
		t.Logf("endpoints of the killed machine gone after %v", time.Since(start).Round(100*time.Millisecond))
	})
}
