package multihost

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
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

// etcdClientURL is the client URL of h's etcd member on the private
// network: https, with certificates fleetd derives from the cluster token.
func (h *host) etcdClientURL() string { return "https://" + h.IP + ":2379" }

// etcdPeerURL is the peer URL of h's etcd member.
func (h *host) etcdPeerURL() string { return "https://" + h.IP + ":2380" }

// Inside every container: the cluster token (bind-mounted read-only) and
// the admin API token fleetd writes into its data dir (the image's
// FLEET_DATA_DIR).
const (
	containerTokenFile = "/etc/fleet/cluster-token"
	containerAdminFile = "/var/lib/fleet/admin-token"
)

// newClusterTokenFile writes a new cluster token, as the docs make one
// (head -c 32 /dev/urandom | base64), into a file of mode 0600 in a
// temporary directory of t.
func newClusterTokenFile(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cluster-token")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

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
	// tokenFile is the cluster token on this host (etcd's root password,
	// the seed of etcd's certificates): mounted into every container.
	tokenFile string
	mu        *sync.Mutex
	down      map[string]bool // killed or partitioned: not asked
	// marks of the units started by startMarked: each must run once.
	marks map[string]bool
	// admin is an admin API token read from a container (guarded by mu;
	// "" until one was read); every fleetd of the cluster accepts it.
	admin *string
	// etcd are the test's own clients of the members.
	etcd *etcdClients
}

// newHostClusterView describes fleetd containers on subnet that something
// else started (docker compose) with the cluster token in tokenFile: add
// them with newHost.
func newHostClusterView(t *testing.T, a *artifacts, subnet, tokenFile string) *hostCluster {
	c := &hostCluster{t: t, a: a, subnet: subnet, tokenFile: tokenFile, mu: new(sync.Mutex),
		down: map[string]bool{}, marks: map[string]bool{}, admin: new(string), etcd: newEtcdClients(tokenFile)}
	t.Cleanup(c.etcd.close)
	return c
}

// newHostCluster creates a private network for fleetd containers; start
// them with newHost and run.
func newHostCluster(t *testing.T, a *artifacts, ttl time.Duration) *hostCluster {
	t.Helper()
	// Before the cleanups below: the token's directory goes after the
	// containers that mount it.
	c := newHostClusterView(t, a, "", newClusterTokenFile(t))
	c.net, c.ttl = a.run+"-net", ttl
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
		// One cluster token for every machine: members bootstrap etcd
		// with it (root password, derived certificates), agents and
		// `fleetd etcd` commands in the container log in with it.
		"-v", c.tokenFile + ":" + containerTokenFile + ":ro",
		"-e", "FLEET_CLUSTER_TOKEN_FILE=" + containerTokenFile,
	}
	if h.Member {
		// https beyond loopback; plain http on loopback only (for
		// `fleetd etcd` commands inside the container).
		args = append(args,
			"-e", "FLEET_ETCD_NAME="+h.Name,
			"-e", "FLEET_ETCD_LISTEN_CLIENT="+h.etcdClientURL()+",http://127.0.0.1:2379",
			"-e", "FLEET_ETCD_LISTEN_PEER="+h.etcdPeerURL())
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
		parts = append(parts, h.Name+"="+h.etcdPeerURL())
	}
	return strings.Join(parts, ",")
}

// etcdServers is the client URLs of the given member hosts.
func etcdServers(members ...*host) string {
	var urls []string
	for _, h := range members {
		urls = append(urls, h.etcdClientURL())
	}
	return strings.Join(urls, ",")
}

// learnIDs fills in the machine IDs (generated by each fleetd) from
// list-machines, matching the hosts by IP.
func (c *hostCluster) learnIDs(timeout time.Duration) {
	c.t.Helper()
	c.await("every host in list-machines", timeout, func() (bool, string) {
		for _, h := range c.hosts {
			if !reachable(h) {
				continue
			}
			out, errOut, code := c.fleetctl(h, "list-machines", "--no-legend", "--full")
			if code != 0 {
				return false, out + errOut
			}
			ids := map[string]string{}
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) >= 2 {
					ids[f[1]] = f[0]
				}
			}
			for _, h := range c.hosts {
				if ids[h.IP] == "" {
					return false, out
				}
			}
			for _, h := range c.hosts {
				h.ID = ids[h.IP]
			}
			return true, ""
		}
		return false, "no API reachable yet"
	})
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

// adminToken returns an admin API token of the cluster: the one fleetd
// wrote into the first running container that has one (read once, then
// kept; "" while there is none yet). Every fleetd of the cluster accepts
// it.
func (c *hostCluster) adminToken() string {
	c.mu.Lock()
	tok := *c.admin
	c.mu.Unlock()
	if tok != "" {
		return tok
	}
	for _, h := range c.up() {
		out, err := docker(30*time.Second, "exec", h.CName, "cat", containerAdminFile)
		if tok = strings.TrimSpace(out); err != nil || tok == "" {
			continue
		}
		c.mu.Lock()
		if *c.admin == "" {
			*c.admin = tok
			c.t.Logf("admin API token read from %s:%s", h.Name, containerAdminFile)
		}
		tok = *c.admin
		c.mu.Unlock()
		return tok
	}
	return ""
}

// fleetctl runs fleetctl (its own code, in process) against h's API, with
// the cluster's admin token: anonymous callers from beyond loopback may
// do nothing.
func (c *hostCluster) fleetctl(h *host, args ...string) (string, string, int) {
	full := []string{"--endpoint", h.APIURL()}
	if tok := c.adminToken(); tok != "" {
		full = append(full, "--token", tok)
	}
	return fleetctlMain(append(full, args...)...)
}

// fleetctlMain runs fleetctl in process with exactly args (global flags
// included): no credential unless args give one.
func fleetctlMain(args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Main(ctx, args, nil, strings.NewReader(""), &out, &errb)
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

// processes returns the command lines ("pid args") of the processes in
// every running container (busybox ps inside it: no network needed, so it
// also sees a partitioned host), by host name. A child that a unit's shell
// forked and that has not exec'd yet (sleep, each second) shows its
// parent's command line: it is left out, else it would look like a second
// copy of the unit.
func (c *hostCluster) processes() map[string][]string {
	procs := map[string][]string{}
	for _, h := range c.hosts {
		out, err := docker(time.Minute, "exec", h.CName, "ps", "-o", "pid,ppid,args")
		if err != nil {
			continue // not running
		}
		type proc struct{ pid, ppid, args string }
		var ps []proc
		argsOf := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) < 3 || f[0] == "PID" {
				continue
			}
			p := proc{f[0], f[1], strings.Join(f[2:], " ")}
			ps = append(ps, p)
			argsOf[p.pid] = p.args
		}
		for _, p := range ps {
			if strings.Contains(p.args, "fleetd") || strings.HasPrefix(p.args, "ps ") || argsOf[p.ppid] == p.args {
				continue
			}
			procs[h.Name] = append(procs[h.Name], p.pid+" "+p.args)
		}
	}
	return procs
}

// count returns how many of procs' command lines hold mark, in total and
// per host.
func count(procs map[string][]string, mark string) (int, map[string]int) {
	per := map[string]int{}
	total := 0
	for h, ls := range procs {
		for _, l := range ls {
			if strings.Contains(l, mark) {
				per[h]++
				total++
			}
		}
	}
	return total, per
}

// restarted returns the marked processes (pid and command line) of before
// that are gone from after, on hosts other than except: units that were
// stopped or restarted where nothing happened to their machine.
func restarted(before, after map[string][]string, marks []string, except *host) []string {
	var gone []string
	for h, ls := range before {
		if except != nil && h == except.Name {
			continue
		}
		for _, l := range ls {
			if !slices.ContainsFunc(marks, func(m string) bool { return strings.Contains(l, m) }) {
				continue
			}
			if !slices.Contains(after[h], l) {
				gone = append(gone, h+": "+l)
			}
		}
	}
	slices.Sort(gone)
	return gone
}

// moveEtcdLeader makes h's member the etcd leader.
func (c *hostCluster) moveEtcdLeader(h *host) error {
	leader, err := c.etcdLeader()
	if err != nil || leader == h {
		return err
	}
	names, err := c.memberNames()
	if err != nil {
		return err
	}
	var id uint64
	for i, n := range names {
		if n == h.Name {
			id = i
		}
	}
	if id == 0 {
		return fmt.Errorf("%s is not an etcd member", h.Name)
	}
	return c.etcd.moveLeader(leader.etcdClientURL(), id)
}

// copies counts the processes whose command line holds mark.
func (c *hostCluster) copies(mark string) (int, map[string]int) {
	return count(c.processes(), mark)
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
		st, err := c.etcd.status(h.etcdClientURL())
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
			eps = append(eps, h.etcdClientURL())
		}
	}
	return c.etcd.members(eps)
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
