package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/clusterauth"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/orphans"
)

// buildFleetd builds cmd/fleetd, and cmd/fleet-shim next to it (the unit
// shims), into dir (or returns path if given).
func buildFleetd(ctx context.Context, e *env, path, dir string) (string, error) {
	if path != "" {
		return path, nil
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	e.printf("building fleetd and fleet-shim ...\n")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/fleetd", "./cmd/fleet-shim")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fleetd ./cmd/fleet-shim: %v\n%s", err, b)
	}
	return filepath.Join(dir, "fleetd"), nil
}

// fleetdWorkdir makes a temporary directory for the bench called name and
// builds fleetd into it (unless bin is given); the caller removes dir.
func fleetdWorkdir(ctx context.Context, e *env, name, bin string) (dir, path string, err error) {
	dir, err = os.MkdirTemp("", "fleet-bench-"+name+"-")
	if err != nil {
		return "", "", err
	}
	path, err = buildFleetd(ctx, e, bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return dir, path, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// fleetdProc is one fleetd process.
type fleetdProc struct {
	idx      int
	id       string
	api      string // http://host:port
	etcd     string // client URL of its embedded etcd member ("" if none)
	etcdName string
	args     []string
	bin      string
	cmd      *exec.Cmd
	done     chan struct{}
	mu       sync.Mutex
	log      bytes.Buffer
}

func (p *fleetdProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *fleetdProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *fleetdProc) start() error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), "FLEET_LOG_FORMAT=text")
	cmd.Stdout, cmd.Stderr = p, p
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start fleetd %d: %w", p.idx, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.done) }()
	return nil
}

func (p *fleetdProc) pid() int { return p.cmd.Process.Pid }

func (p *fleetdProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *fleetdProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *fleetdProc) stop(d time.Duration) {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(d):
		p.kill()
	}
}

func (p *fleetdProc) awaitAPI(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !p.alive() {
			return fmt.Errorf("fleetd %d exited early:\n%s", p.idx, tail(p.logText(), 3000))
		}
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(p.api, "http://"), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("fleetd %d API did not come up:\n%s", p.idx, tail(p.logText(), 3000))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// clusterOpts shape a set of fleetd processes.
type clusterOpts struct {
	n        int
	agentTTL time.Duration // 0 = fleetd's default
	// members: every fleetd runs an embedded etcd member of one n-member
	// cluster; otherwise the first runs a one-member etcd and the others
	// are its clients.
	members bool
	extra   []string
}

// fleetdCluster is n fleetd processes on one etcd.
type fleetdCluster struct {
	dir   string
	procs []*fleetdProc
	etcd  []string // client URLs of the etcd members
	// token is the cluster token (etcd's root password) every fleetd
	// shares; admin is the admin API token machine 0 wrote.
	token, admin string
}

func startCluster(ctx context.Context, bin, dir string, o clusterOpts) (*fleetdCluster, error) {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	c := &fleetdCluster{dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(dir, clusterauth.TokenFileName)
	tok, _, _, err := clusterauth.EnsureToken(tokenFile, rand.Reader)
	if err != nil {
		return nil, err
	}
	c.token = tok
	var initial []string
	type urls struct{ client, peer, api string }
	us := make([]urls, o.n)
	for i := range us {
		for _, p := range []*string{&us[i].client, &us[i].peer, &us[i].api} {
			a, err := freePort()
			if err != nil {
				return nil, err
			}
			*p = a
		}
		initial = append(initial, fmt.Sprintf("m%d=http://%s", i, us[i].peer))
	}
	for i := range o.n {
		p := &fleetdProc{
			idx: i, bin: bin,
			id:  fmt.Sprintf("%032x", i+1+int(time.Now().UnixNano()%1e6)*16),
			api: "http://" + us[i].api,
		}
		data := filepath.Join(dir, fmt.Sprintf("m%d", i))
		p.args = []string{
			"--machine-id", p.id,
			"--data-dir", data,
			"--api-addr", us[i].api,
			"--public-ip", fmt.Sprintf("127.0.0.%d", i+1),
			"--cluster-token-file", tokenFile,
		}
		if o.agentTTL > 0 {
			p.args = append(p.args, "--agent-ttl", o.agentTTL.String())
		}
		switch {
		case o.members:
			p.etcd = "http://" + us[i].client
			p.etcdName = fmt.Sprintf("m%d", i)
			p.args = append(p.args, "--etcd-name", p.etcdName,
				"--etcd-initial-cluster", strings.Join(initial, ","),
				"--etcd-listen-client", p.etcd, "--etcd-listen-peer", "http://"+us[i].peer)
			c.etcd = append(c.etcd, p.etcd)
		case i == 0:
			p.etcd = "http://" + us[0].client
			p.args = append(p.args, "--etcd-listen-client", p.etcd, "--etcd-listen-peer", "http://"+us[0].peer)
			c.etcd = append(c.etcd, p.etcd)
		default:
			p.args = append(p.args, "--etcd-servers", "http://"+us[0].client)
		}
		p.args = append(p.args, o.extra...)
		c.procs = append(c.procs, p)
	}
	for _, p := range c.procs {
		if err := p.start(); err != nil {
			c.stop()
			return nil, err
		}
	}
	for _, p := range c.procs {
		if err := p.awaitAPI(ctx, 90*time.Second); err != nil {
			c.stop()
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "m0", "admin-token"))
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("admin token: %w", err)
	}
	c.admin = strings.TrimSpace(string(b))
	return c, nil
}

// logTails is the last n bytes of every fleetd's output, for errors.
func (c *fleetdCluster) logTails(n int) string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "=== fleetd %d:\n%s\n", p.idx, tail(p.logText(), n))
	}
	return b.String()
}

func (c *fleetdCluster) stop() {
	var wg sync.WaitGroup
	for _, p := range c.procs {
		if p.cmd != nil {
			wg.Go(func() { p.stop(40 * time.Second) })
		}
	}
	wg.Wait()
	killOrphans()
}

func (c *fleetdCluster) client(i int) (*client.Client, error) {
	return client.New(c.procs[i].api, client.Options{RequestTimeout: 30 * time.Second, Token: c.admin})
}

// killOrphans kills the processes this process adopted as a subreaper
// (units, and the exec runner's shims, of fleetd processes that were killed
// or stopped) and reaps them; it runs after every fleetd of ours has been
// waited for. A unit in its own process group is adopted when its shim
// dies, so it repeats until no orphan is left.
func killOrphans() {
	for range 10 {
		if killOrphansOnce() == 0 {
			return
		}
	}
}

func killOrphansOnce() int {
	killed := orphans.Kill()
	for _, pid := range killed {
		orphans.Reap(pid, time.Now().Add(5*time.Second))
	}
	return len(killed)
}

// sleepUnit is a trivial long-running unit for the exec runner.
func sleepUnit(name string) *client.Unit {
	return &client.Unit{
		Name: name,
		Options: []*client.UnitOption{
			{Section: "Unit", Name: "Description", Value: "fleet-bench " + name},
			{Section: "Service", Name: "ExecStart", Value: "/bin/sleep infinity"},
		},
		DesiredState: string(fleet.JobStateLaunched),
	}
}
