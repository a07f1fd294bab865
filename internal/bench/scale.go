package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/agent"
	"github.com/fleetd/fleet/internal/clusterauth"
	"github.com/fleetd/fleet/internal/config"
	"github.com/fleetd/fleet/internal/etcdserver"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

type scaleOpts struct {
	machines, units int
	clients         int
	ttl             time.Duration
	batch           int
	submitters      int
	baseline        time.Duration
	timeout         time.Duration
	engineCPU       string
	engineMem       string
	dataDir         string
	// sized gives every unit [X-Fleet] Memory= and CPU= reservations and
	// every machine a capacity, so the scheduler checks room (issue 12).
	sized bool
}

func runScale(ctx context.Context, e *env, args []string) (map[string]any, error) {
	var o scaleOpts
	var prof profiles
	fs := newFlags(e, "scale", "N simulated machines (in-process agents, each with its own lease and watch) on one embedded etcd, one engine in a child process; submit and start M units; time until all are reported active")
	fs.IntVar(&o.machines, "machines", 1000, "simulated machines")
	fs.IntVar(&o.units, "units", 10000, "units to submit and start")
	fs.IntVar(&o.clients, "clients", 0, "etcd clients (gRPC connections) the agents are spread over; 0 = one per 64 machines, 4..20")
	fs.DurationVar(&o.ttl, "agent-ttl", config.DefaultAgentTTL, "machine lease TTL (fleetd's agent_ttl)")
	fs.IntVar(&o.batch, "batch", store.MaxTxnOps, "units per creation transaction")
	fs.IntVar(&o.submitters, "submitters", 4, "concurrent unit submitters")
	fs.DurationVar(&o.baseline, "baseline", 3*time.Second, "duration of the raw etcd put baseline (64 writers)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up waiting for convergence after this long")
	fs.StringVar(&o.engineCPU, "engine-cpuprofile", "", "write the engine process's CPU profile to `file`")
	fs.StringVar(&o.engineMem, "engine-memprofile", "", "write the engine process's heap profile to `file` (at convergence)")
	fs.StringVar(&o.dataDir, "data-dir", "", "etcd data directory (default: a temporary directory, removed afterwards)")
	fs.BoolVar(&o.sized, "sized", false, "units reserve memory and CPU ([X-Fleet] Memory=64M, CPU=0.1) and machines offer 8 CPUs and 16G, so placement checks room")
	prof.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.machines < 1 || o.units < 1 {
		return nil, errors.New("--machines and --units must be at least 1")
	}
	if o.clients <= 0 {
		o.clients = min(max(o.machines/64, 4), 20)
	}
	o.batch = min(max(o.batch, 1), store.MaxTxnOps)
	return scale(ctx, e, o, &prof)
}

// newClient connects to etcd; rootPassword is the cluster token of an etcd
// that a fleetd bootstrapped ("" for the scenarios' own etcd, which has no
// authentication).
func newClient(endpoints []string, rootPassword string) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	}
	if rootPassword != "" {
		cfg.Username, cfg.Password = clusterauth.RootUser, rootPassword
	}
	return clientv3.New(cfg)
}

func startEtcd(ctx context.Context, dir string) (*etcdserver.Server, error) {
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return etcdserver.Start(sctx, etcdserver.Config{
		Name:             "bench",
		DataDir:          dir,
		ListenClientURLs: []string{"http://127.0.0.1:0"},
		ListenPeerURLs:   []string{"http://127.0.0.1:0"},
		// 100,000 units with their schedule, placements and states, plus
		// their history until compaction, stay well below this.
		QuotaBackendBytes: 8 << 30,
	})
}

// benchUnitsSized returns n units named prefix-NNNNNN.service, launched;
// when sized, each reserves 64M and 0.1 CPU.
func benchUnitsSized(prefix string, n int, sized bool) []fleet.Unit {
	opts := []fleet.UnitOption{
		{Section: "Unit", Name: "Description", Value: "fleet-bench unit"},
		{Section: "Service", Name: "ExecStart", Value: "/bin/sleep infinity"},
	}
	if sized {
		opts = append(opts,
			fleet.UnitOption{Section: "X-Fleet", Name: "Memory", Value: "64M"},
			fleet.UnitOption{Section: "X-Fleet", Name: "CPU", Value: "0.1"})
	}
	hash := unitfile.Hash(opts)
	us := make([]fleet.Unit, n)
	for i := range us {
		us[i] = fleet.Unit{Name: fmt.Sprintf("%s-%06d.service", prefix, i), Options: opts, Hash: hash, DesiredState: fleet.JobStateLaunched}
	}
	return us
}

// counter follows every write under the prefix with one watch and counts
// them by kind; it tells when every unit is scheduled and reported active.
type counter struct {
	mu        sync.Mutex
	events    map[string]int // by first path element (units, schedule, ...)
	scheduled map[string]bool
	active    map[string]bool // states/<machine>/<unit> reported active
	nActive   int
	want      int
	firstAct  time.Time
	allSched  time.Time
	allActive time.Time
	done      chan struct{}
	closed    bool
}

func follow(ctx context.Context, cli *clientv3.Client, prefix string, rev int64, want int) *counter {
	c := &counter{events: map[string]int{}, scheduled: map[string]bool{}, active: map[string]bool{}, want: want, done: make(chan struct{})}
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	go func() {
		for resp := range wch {
			now := time.Now()
			c.mu.Lock()
			for _, ev := range resp.Events {
				rest := strings.TrimPrefix(string(ev.Kv.Key), prefix)
				kind, sub, _ := strings.Cut(rest, "/")
				c.events[kind]++
				switch kind {
				case "schedule":
					_, unit, _ := strings.Cut(sub, "/")
					if ev.Type == clientv3.EventTypePut && !c.scheduled[unit] {
						c.scheduled[unit] = true
						if len(c.scheduled) == c.want {
							c.allSched = now
						}
					}
				case "states":
					var st struct {
						ActiveState string `json:"activeState"`
					}
					isActive := ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &st) == nil && st.ActiveState == "active"
					was := c.active[sub]
					switch {
					case isActive && !was:
						c.active[sub] = true
						c.nActive++
						if c.firstAct.IsZero() {
							c.firstAct = now
						}
					case !isActive && was:
						delete(c.active, sub)
						c.nActive--
					}
					if c.nActive >= c.want && !c.closed {
						c.allActive = now
						c.closed = true
						close(c.done)
					}
				}
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *counter) progress() (sched, active int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.scheduled), c.nActive
}

type simMachine struct {
	lease atomic.Int64
	ag    *agent.Agent
}

func (sm *simMachine) keepRegistered(ctx context.Context, st *store.Store, m fleet.Machine, ttl time.Duration, pres *store.Presence, lost *atomic.Int64) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-pres.Done():
		}
		sm.lease.Store(0)
		lost.Add(1)
		for {
			p, err := st.Register(ctx, m, ttl)
			if err == nil {
				pres = p
				sm.lease.Store(int64(p.Lease()))
				break
			}
			if ctx.Err() != nil {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

func scale(ctx context.Context, e *env, o scaleOpts, prof *profiles) (map[string]any, error) {
	res := map[string]any{"machines": o.machines, "units": o.units, "clients": o.clients, "agent_ttl_s": o.ttl.Seconds(), "sized": o.sized}
	dir := o.dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "fleet-bench-scale-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	e.printf("starting embedded etcd in %s (fsync on)\n", dir)
	srv, err := startEtcd(ctx, filepath.Join(dir, "etcd"))
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	urls := srv.ClientURLs()

	clis := make([]*clientv3.Client, o.clients)
	for i := range clis {
		if clis[i], err = newClient(urls, ""); err != nil {
			return nil, err
		}
		defer clis[i].Close()
	}

	// Baseline: raw puts from 64 writers on the same etcd, same run.
	puts, err := putThroughput(ctx, clis[:min(8, len(clis))], 64, o.baseline)
	if err != nil {
		return nil, err
	}
	res["baseline_etcd_puts_per_s_64_writers"] = round(puts, 0)
	e.printf("baseline: %.0f raw etcd puts/s from 64 writers\n", puts)

	const prefix = "/fleet-bench/"
	// The engine runs in its own process, so its CPU and memory are its own.
	eng, err := startEngineChild(ctx, e, urls, prefix, o)
	if err != nil {
		return nil, err
	}
	defer eng.stop()
	st0 := store.New(etcdkv.New(clis[0]), prefix)
	if err := awaitLeader(ctx, st0, 30*time.Second); err != nil {
		return nil, err
	}

	if err := prof.start(); err != nil {
		return nil, err
	}
	defer prof.stop()

	// Register the machines and start their agents.
	t := time.Now()
	runCtx, stopAgents := context.WithCancel(ctx)
	var agentsWG sync.WaitGroup
	defer func() { stopAgents(); agentsWG.Wait() }()
	machines := make([]*simMachine, o.machines)
	var lost atomic.Int64
	var regErr atomic.Value
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= o.machines || runCtx.Err() != nil {
					return
				}
				st := store.New(etcdkv.New(clis[i%len(clis)]), prefix)
				id := fmt.Sprintf("m%05d", i)
				m := fleet.Machine{ID: id, PublicIP: "10.0.0.1"}
				if o.sized {
					m.Capacity = fleet.Resources{CPUMilli: 8000, MemoryBytes: 16 << 30}
				}
				pres, err := st.Register(runCtx, m, o.ttl)
				if err != nil {
					regErr.CompareAndSwap(nil, err)
					return
				}
				sm := &simMachine{}
				sm.lease.Store(int64(pres.Lease()))
				sm.ag = agent.New(agent.Config{Store: st, Runner: newSimRunner(), MachineID: id,
					Lease: func() etcdkv.LeaseID { return etcdkv.LeaseID(sm.lease.Load()) }})
				machines[i] = sm
				agentsWG.Go(func() { _ = sm.ag.Run(runCtx) })
				// Like fleetd: a machine whose lease is lost registers again.
				agentsWG.Go(func() { sm.keepRegistered(runCtx, st, m, o.ttl, pres, &lost) })
			}
		})
	}
	wg.Wait()
	if err, ok := regErr.Load().(error); ok && err != nil {
		return nil, fmt.Errorf("register machines: %w", err)
	}
	res["register_s"] = round(time.Since(t).Seconds(), 2)
	e.printf("%d machines registered, agents running (%.1fs)\n", o.machines, time.Since(t).Seconds())
	time.Sleep(500 * time.Millisecond) // let the engine absorb the joins

	// Follow every write from here on.
	wcli, err := newClient(urls, "")
	if err != nil {
		return nil, err
	}
	defer wcli.Close()
	g, err := wcli.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		return nil, err
	}
	rev0 := g.Header.Revision
	cnt := follow(runCtx, wcli, prefix, rev0+1, o.units)

	engBefore := readProc(eng.pid())
	self := os.Getpid()
	selfBefore := readProc(self)
	units := benchUnitsSized("bench", o.units, o.sized)
	t0 := time.Now()
	var subErr atomic.Value
	var submitted atomic.Int64
	batches := make(chan []fleet.Unit)
	for range o.submitters {
		wg.Go(func() {
			for b := range batches {
				n, err := st0.CreateUnits(runCtx, b)
				submitted.Add(int64(n))
				if err != nil {
					subErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	for i := 0; i < len(units); i += o.batch {
		batches <- units[i:min(i+o.batch, len(units))]
	}
	close(batches)
	wg.Wait()
	tSubmitted := time.Since(t0)
	if err, ok := subErr.Load().(error); ok && err != nil {
		return nil, fmt.Errorf("submit units: %w", err)
	}
	e.printf("%d units submitted in %.2fs\n", submitted.Load(), tSubmitted.Seconds())

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	timeout := time.NewTimer(o.timeout)
	defer timeout.Stop()
	var waitErr error
wait:
	for {
		select {
		case <-cnt.done:
			break wait
		case <-tick.C:
			s, a := cnt.progress()
			e.printf("  %5.1fs: %d scheduled, %d active\n", time.Since(t0).Seconds(), s, a)
		case <-timeout.C:
			waitErr = fmt.Errorf("not converged after %v", o.timeout)
			break wait
		case <-ctx.Done():
			waitErr = ctx.Err()
			break wait
		}
	}
	engAfter := readProc(eng.pid())
	selfAfter := readProc(self)
	if o.engineMem != "" {
		eng.signal(syscall.SIGUSR1) // the engine writes its heap profile
	}
	cnt.mu.Lock()
	converge := cnt.allActive.Sub(t0)
	if waitErr != nil {
		converge = time.Since(t0)
	}
	res["submit_s"] = round(tSubmitted.Seconds(), 3)
	if !cnt.allSched.IsZero() {
		res["all_scheduled_s"] = round(cnt.allSched.Sub(t0).Seconds(), 3)
	}
	if !cnt.firstAct.IsZero() {
		res["first_active_ms"] = round(ms(cnt.firstAct.Sub(t0)), 1)
	}
	res["converge_s"] = round(converge.Seconds(), 3)
	res["active"] = cnt.nActive
	res["units_per_s"] = round(float64(cnt.nActive)/converge.Seconds(), 0)
	res["units_per_s_per_baseline_put"] = round(float64(cnt.nActive)/converge.Seconds()/puts, 3)
	total := 0
	for k, n := range cnt.events {
		total += n
		res["keys_written_"+k] = n
	}
	cnt.mu.Unlock()
	res["etcd_keys_written_per_unit"] = round(float64(total)/float64(o.units), 2)
	if g, err := wcli.Get(ctx, "/", clientv3.WithCountOnly()); err == nil {
		res["etcd_txns_per_unit"] = round(float64(g.Header.Revision-rev0)/float64(o.units), 3)
	}
	res["engine_cpu_s"] = round((engAfter.CPU - engBefore.CPU).Seconds(), 2)
	res["engine_cpu_pct_of_one_core"] = round(cpuPercent(engBefore, engAfter), 1)
	res["engine_rss_mb"] = round(mb(engAfter.RSS), 1)
	res["engine_peak_rss_mb"] = round(mb(engAfter.HWM), 1)
	res["bench_process_cpu_s"] = round((selfAfter.CPU - selfBefore.CPU).Seconds(), 2)
	res["bench_process_peak_rss_mb"] = round(mb(selfAfter.HWM), 1)
	res["machine_leases_lost"] = lost.Load()
	res["target_converge_s"] = 5.0
	if waitErr != nil {
		s, a := cnt.progress()
		e.summary("scale (incomplete)", res)
		return res, fmt.Errorf("%w (%d scheduled, %d active)", waitErr, s, a)
	}
	rounds := eng.stop()
	for k, v := range rounds {
		res["engine_"+k] = v
	}
	e.summary(fmt.Sprintf("scale: %d machines x %d units", o.machines, o.units), res)
	return res, nil
}

func awaitLeader(ctx context.Context, st *store.Store, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l, err := st.Leader(ctx); err == nil && l != "" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no engine leader")
}

// engineChild is the engine process of the scale scenario.
type engineChild struct {
	cmd  *exec.Cmd
	out  chan map[string]any
	once sync.Once
	res  map[string]any
}

func startEngineChild(ctx context.Context, e *env, urls []string, prefix string, o scaleOpts) (*engineChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"_engine", "--endpoints", strings.Join(urls, ","), "--prefix", prefix, "--ttl", o.ttl.String()}
	if o.engineCPU != "" {
		args = append(args, "--cpuprofile", o.engineCPU)
	}
	if o.engineMem != "" {
		args = append(args, "--memprofile", o.engineMem)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = e.errw
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &engineChild{cmd: cmd, out: make(chan map[string]any, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var last map[string]any
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				last = m
			}
		}
		c.out <- last
	}()
	return c, nil
}

func (c *engineChild) pid() int { return c.cmd.Process.Pid }

func (c *engineChild) signal(s os.Signal) { _ = c.cmd.Process.Signal(s) }

// stop ends the engine process and returns what it reported.
func (c *engineChild) stop() map[string]any {
	c.once.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case c.res = <-c.out:
		case <-time.After(20 * time.Second):
			_ = c.cmd.Process.Kill()
		}
		_ = c.cmd.Wait()
	})
	return c.res
}
