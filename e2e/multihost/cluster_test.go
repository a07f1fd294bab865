package multihost

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/cli"
)

// pickSubnet returns the first three octets of a 172.31.N.0/24 that no
// Docker network uses yet.
func pickSubnet(t testing.TB) string {
	t.Helper()
	used := map[string]bool{}
	if ids, err := docker(time.Minute, "network", "ls", "-q"); err == nil && strings.TrimSpace(ids) != "" {
		out, _ := docker(time.Minute, append([]string{"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, strings.Fields(ids)...)...)
		for _, s := range strings.Fields(out) {
			used[s] = true
		}
	}
	for range 200 {
		p := fmt.Sprintf("172.31.%d", 32+rand.IntN(220))
		if !used[p+".0/24"] {
			return p
		}
	}
	t.Fatal("no free 172.31.N.0/24 subnet")
	return ""
}

// host is one fleetd container.
type host struct {
	Name   string // m1, m2, ...: hostname and etcd member name
	CName  string // container name (unique per run)
	IP     string
	ID     string // machine ID
	Member bool   // runs an embedded etcd member
}

// APIURL is where fleetctl on this host (the root namespace) reaches it:
// a user-defined bridge network is an interface of this host.
func (h *host) APIURL() string { return "http://" + h.IP + ":49153" }

// hostCluster is fleetd containers on one private Docker network.
type hostCluster struct {
	t      *testing.T
	a      *artifacts
	net    string
	subnet string
	ttl    time.Duration
	// Env is added to every machine's environment (FLEET_* keys).
	Env   []string
	hosts []*host
	mu    *sync.Mutex
	down  map[string]bool // killed or partitioned: not asked
	// marks of the units started by startMarked: each must run once.
	marks map[string]bool
}

func newHostCluster(t *testing.T, a *artifacts, ttl time.Duration) *hostCluster {
	t.Helper()
	c := &hostCluster{t: t, a: a, net: a.run + "-net", ttl: ttl, mu: new(sync.Mutex), down: map[string]bool{}, marks: map[string]bool{}}
	var err error
	for range 5 {
		c.subnet = pickSubnet(t)
		if _, err = docker(time.Minute, "network", "create", "--subnet", c.subnet+".0/24", c.net); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("network %s: %s.0/24", c.net, c.subnet)
	// Cleanups run last-registered first: the containers go, then the
	// network.
	t.Cleanup(func() { _, _ = docker(time.Minute, "network", "rm", c.net) })
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range c.hosts {
				out, _ := docker(time.Minute, "logs", "--tail", "80", h.CName)
				t.Logf("=== %s (%s, %s) log tail:\n%s", h.Name, h.IP, h.ID[:8], out)
			}
		}
		removeContainers(a.run + "-m")
	})
	return c
}

// newHost describes machine n (1-based): IP .10+n, name mn.
func (c *hostCluster) newHost(n int, member bool) *host {
	h := &host{
		Name:   fmt.Sprintf("m%d", n),
		CName:  fmt.Sprintf("%s-m%d", c.a.run, n),
		IP:     fmt.Sprintf("%s.%d", c.subnet, 10+n),
		ID:     randomHex(c.t, 16),
		Member: member,
	}
	c.hosts = append(c.hosts, h)
	return h
}

// run starts h's container with its FLEET_* environment plus env.
func (c *hostCluster) run(h *host, env ...string) {
	c.t.Helper()
	role := "worker"
	if h.Member {
		role = "etcd"
	}
	args := []string{"run", "-d", "--name", h.CName, "--hostname", h.Name,
		"--network", c.net, "--ip", h.IP,
		"-e", "FLEET_MACHINE_ID=" + h.ID,
		"-e", "FLEET_PUBLIC_IP=" + h.IP,
		"-e", "FLEET_METADATA=host=" + h.Name + ",role=" + role,
		"-e", "FLEET_AGENT_TTL=" + c.ttl.String(),
		"-e", "FLEET_ENGINE_RECONCILE_INTERVAL=1s",
		// A private network of this host, no credentials: see
		// deploy/docker/docker-compose.yml.
		"-e", "FLEET_API_INSECURE=true",
	}
	if h.Member {
		args = append(args,
			"-e", "FLEET_ETCD_NAME="+h.Name,
			"-e", "FLEET_ETCD_LISTEN_CLIENT=http://"+h.IP+":2379,http://127.0.0.1:2379",
			"-e", "FLEET_ETCD_LISTEN_PEER=http://"+h.IP+":2380")
	}
	for _, e := range append(slices.Clone(c.Env), env...) {
		args = append(args, "-e", e)
	}
	args = append(args, c.a.fleetImg)
	mustDocker(c.t, args...)
}

// initialCluster is the static bootstrap of the member hosts.
func (c *hostCluster) initialCluster(members []*host) string {
	var parts []string
	for _, h := range members {
		parts = append(parts, h.Name+"=http://"+h.IP+":2380")
	}
	return strings.Join(parts, ",")
}

// etcdServers is the client URLs of the member hosts.
func (c *hostCluster) etcdServers() string {
	var urls []string
	for _, h := range c.hosts {
		if h.Member {
			urls = append(urls, "http://"+h.IP+":2379")
		}
	}
	return strings.Join(urls, ",")
}

func (c *hostCluster) host(name string) *host {
	for _, h := range c.hosts {
		if h.Name == name {
			return h
		}
	}
	c.t.Fatalf("no host %s", name)
	return nil
}

func (c *hostCluster) byID(id string) *host {
	for _, h := range c.hosts {
		if h.ID == id || (len(id) >= 8 && strings.HasPrefix(h.ID, id)) {
			return h
		}
	}
	return nil
}

func (c *hostCluster) setDown(h *host, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[h.Name] = down
}

// up returns the hosts that are neither killed nor partitioned.
func (c *hostCluster) up() []*host {
	c.mu.Lock()
	defer c.mu.Unlock()
	var hs []*host
	for _, h := range c.hosts {
		if !c.down[h.Name] {
			hs = append(hs, h)
		}
	}
	return hs
}

// fleetctl runs fleetctl (its own code, in process) against h's API.
func (c *hostCluster) fleetctl(h *host, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	full := append([]string{"--endpoint", h.APIURL()}, args...)
	code := cli.Main(ctx, full, nil, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// fctl runs fleetctl against the first host that is up.
func (c *hostCluster) fctl(args ...string) (string, string, int) {
	return c.fleetctl(c.up()[0], args...)
}

func (c *hostCluster) mustFctl(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.fctl(args...)
	if code != 0 {
		c.t.Fatalf("fleetctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// await polls cond every 200ms until it holds or timeout passes; it returns
// how long that took.
func (c *hostCluster) await(what string, timeout time.Duration, cond func() (bool, string)) time.Duration {
	c.t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("timed out after %v waiting for %s; last seen:\n%s", timeout, what, last)
	return 0
}

// awaitMachines waits until list-machines, asked from every host that is
// up, shows exactly the hosts that are up.
func (c *hostCluster) awaitMachines(timeout time.Duration) time.Duration {
	c.t.Helper()
	return c.await("list-machines to show the hosts that are up", timeout, func() (bool, string) {
		up := c.up()
		var want []string
		for _, h := range up {
			want = append(want, h.ID)
		}
		slices.Sort(want)
		for _, h := range up {
			out, errOut, code := c.fleetctl(h, "list-machines", "--no-legend", "--full")
			if code != 0 {
				return false, h.Name + ": " + out + errOut
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if f := strings.Fields(l); len(f) > 0 {
					got = append(got, f[0])
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return false, fmt.Sprintf("%s sees:\n%swant %v", h.Name, out, want)
			}
		}
		return true, ""
	})
}

// placement returns unit → host of the units list-units shows active.
func (c *hostCluster) placement(from *host) (map[string]*host, string) {
	out, _, _ := c.fleetctl(from, "list-units", "--no-legend", "--full")
	where := map[string]*host{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[2] == "active" {
			where[f[0]] = c.byID(strings.SplitN(f[1], "/", 2)[0])
		}
	}
	return where, out
}

// awaitActive waits until every unit is active on a host that is up, and
// not on any host in not.
func (c *hostCluster) awaitActive(timeout time.Duration, units []string, not ...*host) (map[string]*host, time.Duration) {
	c.t.Helper()
	var where map[string]*host
	d := c.await(fmt.Sprintf("%v active", units), timeout, func() (bool, string) {
		var out string
		where, out = c.placement(c.up()[0])
		for _, u := range units {
			h := where[u]
			if h == nil || slices.Contains(not, h) {
				return false, out
			}
		}
		return true, out
	})
	return where, d
}

// copies counts, in every running container, the processes whose command
// line holds mark (busybox ps in the container: no network needed, so it
// also sees a partitioned host).
func (c *hostCluster) copies(mark string) (int, map[string]int) {
	per := map[string]int{}
	total := 0
	for _, h := range c.hosts {
		out, err := docker(time.Minute, "exec", h.CName, "ps", "-o", "args")
		if err != nil {
			continue // not running
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, mark) && !strings.Contains(l, "fleetd") && !strings.HasPrefix(l, "ps") {
				per[h.Name]++
				total++
			}
		}
	}
	return total, per
}

// markUnit is a loop whose processes carry mark on their command line.
func markUnit(desc, mark string) string {
	return "[Unit]\nDescription=" + desc + "\n\n[Service]\n" +
		`ExecStart=/bin/sh -c "while true; do echo ` + mark + ` alive on %H; sleep 1; done"` + "\n"
}

// submitUnit writes a unit file into a temp dir and returns its path.
func (c *hostCluster) writeUnit(name, body string) string {
	c.t.Helper()
	p := c.t.TempDir() + "/" + name
	if err := writeFile(p, body); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// etcdLeader returns the member host that etcd reports as leader, asking
// the member hosts that are up.
func (c *hostCluster) etcdLeader() (*host, error) {
	members, err := c.memberNames()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, h := range c.up() {
		if !h.Member {
			continue
		}
		st, err := etcdStatus(h.IP + ":2379")
		if err != nil {
			lastErr = err
			continue
		}
		if st.leader == 0 {
			lastErr = fmt.Errorf("%s: no leader", h.Name)
			continue
		}
		if name, ok := members[st.leader]; ok {
			return c.host(name), nil
		}
		lastErr = fmt.Errorf("leader %x is not a known member", st.leader)
	}
	return nil, lastErr
}

func (c *hostCluster) memberNames() (map[uint64]string, error) {
	var eps []string
	for _, h := range c.up() {
		if h.Member {
			eps = append(eps, h.IP+":2379")
		}
	}
	return etcdMembers(eps)
}

// reachable reports whether h's API answers a TCP connect from here.
func reachable(h *host) bool {
	conn, err := net.DialTimeout("tcp", h.IP+":49153", time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
