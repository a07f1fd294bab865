package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/clusterauth"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/procutil"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// fleetdWorkdir makes a temporary directory for the bench called name and
// builds fleetd (and fleet-shim) into it, unless bin names a prebuilt
// fleetd; the caller removes dir.
func fleetdWorkdir(ctx context.Context, e *env, name, bin string) (dir, path string, err error) {
	dir, err = os.MkdirTemp("", "fleet-bench-"+name+"-")
	if err != nil {
		return "", "", err
	}
	if bin != "" {
		return dir, bin, nil
	}
	e.printf("building fleetd and fleet-shim ...\n")
	path, err = procutil.BuildFleetd(ctx, dir)
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
	proc     *procutil.Proc
	log      procutil.Log
}

func (p *fleetdProc) logText() string { return p.log.String() }

func (p *fleetdProc) start() error {
	proc, err := procutil.StartFleetd(p.bin, p.args, &p.log)
	if err != nil {
		return fmt.Errorf("start fleetd %d: %w", p.idx, err)
	}
	p.proc = proc
	return nil
}

func (p *fleetdProc) pid() int { return p.proc.Pid() }

func (p *fleetdProc) alive() bool { return !p.proc.Exited() }

func (p *fleetdProc) kill() { p.proc.Kill() }

// stop ends fleetd (also a stopped one: SIGCONT first), killing it after d.
func (p *fleetdProc) stop(d time.Duration) {
	if !p.alive() {
		return
	}
	p.proc.Signal(syscall.SIGCONT)
	p.proc.Stop(d)
}

func (p *fleetdProc) awaitAPI(ctx context.Context, d time.Duration) error {
	err := p.proc.Await(ctx, d, 50*time.Millisecond, procutil.Listening(strings.TrimPrefix(p.api, "http://")))
	switch {
	case errors.Is(err, procutil.ErrExited):
		return fmt.Errorf("fleetd %d exited early:\n%s", p.idx, tail(p.logText(), 3000))
	case err != nil:
		return fmt.Errorf("fleetd %d API did not come up:\n%s", p.idx, tail(p.logText(), 3000))
	}
	return nil
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
	// cli is a client of etcd (as root), closed by stop.
	cli *clientv3.Client
	// token is the cluster token (etcd's root password) every fleetd
	// shares; admin is the admin API token machine 0 wrote.
	token, admin string
}

// startCluster starts the fleetd processes, connects c.cli to their etcd
// and waits until every fleetd registered its machine.
func startCluster(ctx context.Context, bin, dir string, o clusterOpts) (*fleetdCluster, error) {
	procutil.BecomeSubreaper()
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
			// Not the fixed 127.0.0.1:4001: several fleetd run here.
			"--etcd-v2-listen", "127.0.0.1:0",
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
	if c.cli, err = newClient(c.etcd, c.token); err != nil {
		c.stop()
		return nil, err
	}
	if err := awaitMachines(ctx, store.New(etcdkv.New(c.cli), ""), o.n, 60*time.Second); err != nil {
		err = fmt.Errorf("%w; end of fleetd logs:\n%s", err, c.logTails(1500))
		c.stop()
		return nil, err
	}
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
	if c.cli != nil {
		c.cli.Close()
	}
	var wg sync.WaitGroup
	for _, p := range c.procs {
		if p.proc != nil {
			wg.Go(func() { p.stop(40 * time.Second) })
		}
	}
	wg.Wait()
	// fleetd leaves its units running when it stops.
	procutil.KillOrphans(10)
}

func (c *fleetdCluster) client(i int) (*client.Client, error) {
	return client.New(c.procs[i].api, client.Options{RequestTimeout: 30 * time.Second, Token: c.admin})
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
