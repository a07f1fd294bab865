// Package testcluster starts real fleetd processes on one real etcd for
// end-to-end tests: the first machine runs the embedded etcd, the others
// join it with --etcd-servers. Drive it with Fleetctl (fleetctl's own code,
// in process) and wait with Await helpers that poll with generous deadlines.
package testcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/cli"
	"github.com/fleetd/fleet/internal/procutil"
)

// Binary builds cmd/fleetd once into dir, with cmd/fleet-shim next to it
// (fleetd's unit shims), and returns fleetd's path. Call it from TestMain
// with a directory that outlives the tests.
func Binary(dir string) (string, error) {
	return procutil.BuildFleetd(context.Background(), dir)
}

// Options shape a cluster.
type Options struct {
	// Metadata per machine index (optional).
	Metadata []string
	// AgentTTL for every fleetd (default 3s).
	AgentTTL time.Duration
	// ExtraArgs appended to every fleetd command line.
	ExtraArgs []string
	// MachineArgs are appended to machine i's command line (after
	// ExtraArgs), e.g. {{"--disable-engine"}} keeps machine 0, which runs
	// etcd, from leading the engine.
	MachineArgs [][]string
	// EtcdProxy puts a Proxy between every machine but the first (which
	// runs etcd) and etcd, so tests can cut a machine off (PauseEtcd).
	EtcdProxy bool
	// APIHost is the address every fleetd's API listens on (default
	// 127.0.0.1); a non-loopback one needs credentials (ExtraArgs).
	APIHost string
	// FleetctlArgs are global flags put before every Fleetctl* call's
	// arguments (e.g. "--token", "...").
	FleetctlArgs []string
	// DataDirs are the data dirs of the machines by index (e.g. on a
	// small file system the test fills); a missing or empty one is a
	// fresh temporary directory.
	DataDirs []string
}

// Cluster is a set of fleetd processes sharing one etcd.
type Cluster struct {
	t        testing.TB
	bin      string
	opts     Options
	EtcdURL  string
	Machines []*Machine
	// TokenFile is the cluster token file machine 0 generated: the other
	// machines join with it (--cluster-token-file), and so must any
	// other etcd client (fleetd lb, fleetd confd).
	TokenFile string
	// Admin is the admin API token machine 0 wrote; Fleetctl sends it.
	Admin string
}

// Machine is one fleetd process.
type Machine struct {
	Index   int
	ID      string
	DataDir string
	APIURL  string
	// Socket is the path of its API's unix socket.
	Socket string
	// EtcdV2 is the address ("127.0.0.1:PORT", a free port) its etcd v2
	// API listens on (--etcd-v2-listen): never the fixed 4001.
	EtcdV2   string
	Metadata string
	// Proxy stands between this machine and etcd (Options.EtcdProxy).
	Proxy *Proxy
	args  []string
	proc  *procutil.Proc
	log   procutil.Log
}

// New starts n fleetd processes built from bin.
func New(t testing.TB, bin string, n int, opts Options) *Cluster {
	t.Helper()
	if opts.AgentTTL == 0 {
		opts.AgentTTL = 3 * time.Second
	}
	procutil.BecomeSubreaper()
	c := &Cluster{t: t, bin: bin, opts: opts}
	// The kernel may hand a port it just gave out again once it is
	// closed: every address of the cluster is distinct.
	used := map[string]bool{}
	uniq := func(next func() string) string {
		for {
			if a := next(); !used[a] {
				used[a] = true
				return a
			}
		}
	}
	free := func() string { return freeAddr(t) }
	c.EtcdURL = "http://" + uniq(free)
	peerURL := "https://" + uniq(free) // certificates derived from the cluster token
	for i := range n {
		m := &Machine{
			Index:   i,
			ID:      randomID(t),
			DataDir: t.TempDir(),
			APIURL:  "http://" + uniq(func() string { return apiAddr(t, opts.APIHost) }),
			Socket:  filepath.Join(shortTempDir(t), "fleet.sock"),
			EtcdV2:  uniq(free),
		}
		if i < len(opts.Metadata) {
			m.Metadata = opts.Metadata[i]
		}
		if i < len(opts.DataDirs) && opts.DataDirs[i] != "" {
			m.DataDir = opts.DataDirs[i]
		}
		m.args = []string{
			"--machine-id", m.ID,
			"--data-dir", m.DataDir,
			// The unix socket is the trusted local channel: units reach
			// fleetd through it (fleetctl kv set in ExecStartPost=).
			"--api-addr", strings.TrimPrefix(m.APIURL, "http://") + ",unix://" + m.Socket,
			"--public-ip", fmt.Sprintf("127.0.0.%d", i+1),
			"--agent-ttl", opts.AgentTTL.String(),
			"--engine-reconcile-interval", "1s",
			"--etcd-v2-listen", m.EtcdV2,
		}
		if m.Metadata != "" {
			m.args = append(m.args, "--metadata", m.Metadata)
		}
		if i == 0 {
			m.args = append(m.args, "--etcd-listen-client", c.EtcdURL, "--etcd-listen-peer", peerURL)
		} else if opts.EtcdProxy {
			m.Proxy = NewProxy(t, strings.TrimPrefix(c.EtcdURL, "http://"))
			m.args = append(m.args, "--etcd-servers", "http://"+m.Proxy.Addr(), "--cluster-token-file", c.TokenFile)
		} else {
			m.args = append(m.args, "--etcd-servers", c.EtcdURL, "--cluster-token-file", c.TokenFile)
		}
		m.args = append(m.args, opts.ExtraArgs...)
		if i < len(opts.MachineArgs) {
			m.args = append(m.args, opts.MachineArgs[i]...)
		}
		c.Machines = append(c.Machines, m)
		c.start(m)
		if i == 0 {
			c.awaitAPI(m)
			c.TokenFile = filepath.Join(m.DataDir, "cluster-token")
			c.Admin = c.readSecret(filepath.Join(m.DataDir, "admin-token"))
		}
	}
	// Registered after the machines' directories (cleanups run last
	// first: fleetd stops before its directories go) and before the
	// waits, so that a cluster that fails to come up is stopped too and
	// its logs are printed.
	t.Cleanup(c.stopAll)
	for _, m := range c.Machines[1:] {
		c.awaitAPI(m)
	}
	c.AwaitMachines(n)
	return c
}

// T returns a view of the cluster that reports failures to t (use it in
// subtests).
func (c *Cluster) T(t testing.TB) *Cluster {
	cc := *c
	cc.t = t
	return &cc
}

func (c *Cluster) start(m *Machine) {
	fmt.Fprintf(&m.log, "--- start %s %s\n", c.bin, strings.Join(m.args, " "))
	p, err := procutil.StartFleetd(c.bin, m.args, &m.log)
	if err != nil {
		c.t.Fatalf("start fleetd %d: %v", m.Index, err)
	}
	m.proc = p
}

// Log returns what the machine's fleetd printed so far.
func (m *Machine) Log() string { return m.log.String() }

func (c *Cluster) awaitAPI(m *Machine) {
	c.t.Helper()
	err := m.proc.Await(context.Background(), 60*time.Second, 50*time.Millisecond, procutil.Listening(strings.TrimPrefix(m.APIURL, "http://")))
	switch {
	case errors.Is(err, procutil.ErrExited):
		c.t.Fatalf("fleetd %d exited early:\n%s", m.Index, m.Log())
	case err != nil:
		c.t.Fatalf("fleetd %d API did not come up:\n%s", m.Index, m.Log())
	}
}

// Kill sends SIGKILL to machine i's fleetd (and only fleetd: its units are
// in their own process groups).
func (c *Cluster) Kill(i int) { c.Machines[i].proc.Kill() }

// Stop sends SIGTERM and waits (killing it after 40 s).
func (c *Cluster) Stop(i int) { c.Machines[i].proc.Stop(40 * time.Second) }

// Terminate sends SIGTERM to machine i's fleetd and reports whether it
// exited within d (it is killed after that either way).
func (c *Cluster) Terminate(i int, d time.Duration) bool { return c.Machines[i].proc.Stop(d) }

// Freeze stops machine i's fleetd with SIGSTOP (and, for machine 0, the
// embedded etcd it holds) until Thaw; its units run on.
func (c *Cluster) Freeze(i int) { c.Machines[i].proc.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen fleetd (SIGCONT).
func (c *Cluster) Thaw(i int) { c.Machines[i].proc.Signal(syscall.SIGCONT) }

// PauseEtcd cuts machine i off etcd (Options.EtcdProxy): nothing flows
// until ResumeEtcd.
func (c *Cluster) PauseEtcd(i int) { c.Machines[i].Proxy.Pause() }

// ResumeEtcd ends PauseEtcd.
func (c *Cluster) ResumeEtcd(i int) { c.Machines[i].Proxy.Resume() }

// Restart starts machine i again with the same arguments.
func (c *Cluster) Restart(i int) {
	c.start(c.Machines[i])
	c.awaitAPI(c.Machines[i])
}

func (c *Cluster) stopAll() {
	for i := len(c.Machines) - 1; i >= 0; i-- {
		if p := c.Machines[i].proc; p != nil && !p.Exited() {
			c.Stop(i)
		}
	}
	// fleetd leaves units running when it stops (their shims, then the
	// units, are re-parented to this process): kill them, level by level.
	procutil.KillOrphans(6)
	for _, m := range c.Machines {
		if m.Proxy != nil {
			m.Proxy.Close()
		}
	}
	if c.t.Failed() {
		for _, m := range c.Machines {
			c.t.Logf("=== fleetd %d (%s) log:\n%s", m.Index, m.ID[:8], m.Log())
		}
	}
}

// Fleetctl runs fleetctl against machine 0's API, in process.
func (c *Cluster) Fleetctl(args ...string) (stdout, stderr string, code int) {
	return c.FleetctlOn(0, args...)
}

// FleetctlOn runs fleetctl against machine i's API.
func (c *Cluster) FleetctlOn(i int, args ...string) (string, string, int) {
	return c.FleetctlCtx(context.Background(), i, args...)
}

// FleetctlCtx runs fleetctl with a context (for journal -f).
func (c *Cluster) FleetctlCtx(ctx context.Context, i int, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	full := append([]string{"--endpoint", c.Machines[i].APIURL, "--token", c.Admin}, c.opts.FleetctlArgs...)
	full = append(full, args...)
	code := cli.Main(ctx, full, nil, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// readSecret waits for a token file fleetd writes at start and returns its
// content.
func (c *Cluster) readSecret(path string) string {
	c.t.Helper()
	var b []byte
	c.Await(path, 30*time.Second, func() (bool, string) {
		var err error
		b, err = os.ReadFile(path)
		return err == nil && len(bytes.TrimSpace(b)) > 0, fmt.Sprint(err)
	})
	return string(bytes.TrimSpace(b))
}

// MustFleetctl runs fleetctl and fails the test on a non-zero exit.
func (c *Cluster) MustFleetctl(args ...string) string {
	c.t.Helper()
	out, errs, code := c.Fleetctl(args...)
	if code != 0 {
		c.t.Fatalf("fleetctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// Await polls cond until it returns true or the deadline passes.
func (c *Cluster) Await(what string, timeout time.Duration, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("timed out after %v waiting for %s; last seen:\n%s", timeout, what, last)
}

// AwaitMachines waits until list-machines shows n machines.
func (c *Cluster) AwaitMachines(n int) {
	c.t.Helper()
	c.Await(fmt.Sprintf("%d machines", n), 60*time.Second, func() (bool, string) {
		out, _, code := c.Fleetctl("list-machines", "--no-legend")
		return code == 0 && countLines(out) == n, out
	})
}

// UnitRows returns list-units rows as field slices (unit, machine, active, sub).
func (c *Cluster) UnitRows() [][]string {
	out, _, _ := c.Fleetctl("list-units", "--no-legend", "--full")
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

// AwaitActive waits until each named unit is active/running somewhere and
// returns the machine ID (full) of each.
func (c *Cluster) AwaitActive(timeout time.Duration, units ...string) map[string]string {
	c.t.Helper()
	where := map[string]string{}
	c.Await(fmt.Sprintf("units %v active", units), timeout, func() (bool, string) {
		out, _, _ := c.Fleetctl("list-units", "--full")
		rows := c.UnitRows()
		clear(where)
		for _, r := range rows {
			if len(r) >= 4 && r[2] == "active" {
				where[r[0]] = strings.SplitN(r[1], "/", 2)[0]
			}
		}
		for _, u := range units {
			if _, ok := where[u]; !ok {
				return false, out
			}
		}
		return true, out
	})
	return where
}

// MachineIndex returns the index of the machine with this full ID, or -1.
func (c *Cluster) MachineIndex(id string) int {
	for i, m := range c.Machines {
		if m.ID == id {
			return i
		}
	}
	return -1
}

func countLines(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// apiAddr is a free address on host (127.0.0.1 if empty).
func apiAddr(t testing.TB, host string) string {
	if host == "" {
		return freeAddr(t)
	}
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomID(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// shortTempDir is a temporary directory with a short path: a unix socket's
// path must stay under 108 bytes, and t.TempDir's carry the test's name.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
