package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/procutil"
)

// lbOpts are the lb scenario's flags.
type lbOpts struct {
	backends    int
	threads     int
	conns       int
	duration    time.Duration
	procs       int
	rounds      int
	modes       []string
	churn       bool
	churnPause  time.Duration
	fleetd      string
	lbCPU       string
	lbGOGC      string
	compare     string
	keepTempDir bool
}

const lbService = "bench"

// runLB is part 4 of the benchmark issue: "fleetd lb" and HAProxy in front
// of the same backends, driven by wrk in the same run, in HTTP and TCP mode;
// then the same with backends stopped and started during the run.
func runLB(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "lb", "fleetd lb and haproxy in front of the same backends, wrk against each, HTTP and TCP mode, steady and with backend churn")
	var o lbOpts
	fs.IntVar(&o.backends, "backends", 3, "number of backend processes")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads (-t)")
	fs.IntVar(&o.conns, "connections", 32, "wrk connections (-c)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each wrk run (-d)")
	fs.IntVar(&o.procs, "procs", runtime.NumCPU(), "threads of each balancer: haproxy nbthread and fleetd lb GOMAXPROCS")
	fs.IntVar(&o.rounds, "rounds", 1, "steady-state runs per balancer and mode (medians are reported)")
	modes := fs.String("modes", "http,tcp", "modes to measure: http, tcp or both")
	fs.BoolVar(&o.churn, "churn", true, "also run each balancer while backends are deregistered, stopped, restarted and re-registered")
	fs.DurationVar(&o.churnPause, "churn-pause", 300*time.Millisecond, "pause between two backend restarts in the churn runs")
	fs.StringVar(&o.fleetd, "fleetd", "", "fleetd binary (default: build ./cmd/fleetd)")
	fs.StringVar(&o.lbCPU, "lb-cpuprofile", "", "write fleetd lb's CPU profile to `file`.MODE (covers the steady and churn runs of that mode)")
	fs.StringVar(&o.lbGOGC, "lb-gogc", "", "GOGC for the fleetd lb process (default: unset)")
	fs.StringVar(&o.compare, "lb-compare", "", "also run this other fleetd `binary`'s lb in every round, as \"lb-b\" (A/B under the same load; steady runs only)")
	fs.BoolVar(&o.keepTempDir, "keep", false, "keep the temporary directory (configs, logs)")
	var prof profiles
	prof.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, m := range strings.Split(*modes, ",") {
		if m = strings.TrimSpace(m); m != "http" && m != "tcp" {
			return nil, fmt.Errorf("--modes: %q is not http or tcp", m)
		}
		o.modes = append(o.modes, strings.TrimSpace(m))
	}
	if o.backends < 1 || o.threads < 1 || o.conns < o.threads || o.duration < time.Second || o.procs < 1 || o.rounds < 1 {
		return nil, errors.New("--backends, --threads, --procs and --rounds must be at least 1, --connections at least --threads, --duration at least 1s")
	}
	var missing []string
	for _, bin := range []string{"wrk", "haproxy"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not found in $PATH: install the Debian packages with 'apt-get install -y %s'",
			strings.Join(missing, " and "), strings.Join(missing, " "))
	}
	if err := prof.start(); err != nil {
		return nil, err
	}
	defer prof.stop()
	dir, bin, err := fleetdWorkdir(ctx, e, "lb", o.fleetd)
	if err != nil {
		return nil, err
	}
	if o.keepTempDir {
		e.printf("temporary directory: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	return lbScenario(ctx, e, o, bin, dir)
}

func lbScenario(ctx context.Context, e *env, o lbOpts, fleetdBin, dir string) (map[string]any, error) {
	srv, err := startEtcd(ctx, filepath.Join(dir, "etcd"))
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	etcdURL := strings.Join(srv.ClientURLs(), ",")
	cli, err := newClient(srv.ClientURLs(), "")
	if err != nil {
		return nil, err
	}
	defer cli.Close()

	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bs := make([]*lbBackend, o.backends)
	for i := range bs {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		bs[i] = &lbBackend{idx: i, addr: addr, exe: exe, errw: e.errw,
			key: fmt.Sprintf("/services/%s/bench-host:bench-backend-%d:%s", lbService, i, addr[strings.LastIndexByte(addr, ':')+1:])}
	}
	defer func() {
		for _, b := range bs {
			b.stop()
		}
	}()
	for _, b := range bs {
		if err := b.start(ctx); err != nil {
			return nil, err
		}
		if _, err := cli.Put(ctx, b.key, b.addr); err != nil {
			return nil, fmt.Errorf("register backend %d: %w", b.idx, err)
		}
	}
	e.printf("%d backends up: %s; wrk -t%d -c%d -d%v; balancers with %d threads\n", len(bs), backendAddrs(bs), o.threads, o.conns, o.duration, o.procs)

	res := map[string]any{
		"backends": o.backends, "wrk_threads": o.threads, "wrk_connections": o.conns, "duration_s": o.duration.Seconds(),
		"balancer_threads": o.procs, "rounds": o.rounds,
		"target_tcp_rps_ratio": 0.9, "target_http_rps_ratio": 0.9, "target_p99_ratio_max": 1.2, "target_cpu_ratio_max": 1.1, "target_churn_errors": 0,
	}
	if o.lbGOGC != "" {
		res["lb_gogc"] = o.lbGOGC
	}
	for _, mode := range o.modes {
		if err := lbMode(ctx, e, o, mode, fleetdBin, dir, etcdURL, cli, bs, res); err != nil {
			return res, fmt.Errorf("%s mode: %w", mode, err)
		}
	}
	return res, nil
}

func backendAddrs(bs []*lbBackend) string {
	var s []string
	for _, b := range bs {
		s = append(s, b.addr)
	}
	return strings.Join(s, " ")
}

// lbMode measures one mode: per round the direct baseline, haproxy and
// fleetd lb (alternating which goes first), then the churn runs.
func lbMode(ctx context.Context, e *env, o lbOpts, mode, fleetdBin, dir, etcdURL string, cli *clientv3.Client, bs []*lbBackend, res map[string]any) error {
	hp, err := startHAProxy(ctx, filepath.Join(dir, "haproxy-"+mode), mode, o.procs, bs)
	if err != nil {
		return err
	}
	defer hp.stop()
	lp, err := startLBProc(ctx, fleetdBin, dir, mode, etcdURL, o, len(bs))
	if err != nil {
		return err
	}
	defer lp.stop()
	bals := []lbBalancer{hp, lp}
	var lpb *lbProc
	var lbbs []wrkResult
	if o.compare != "" {
		ob := o
		ob.lbCPU = ""
		if lpb, err = startLBProc(ctx, o.compare, dir, mode, etcdURL, ob, len(bs)); err != nil {
			return err
		}
		defer lpb.stop()
		lpb.label = "lb-b"
	}

	var base, hps, lbs []wrkResult
	for r := range o.rounds {
		b, err := runWrk(ctx, o, "http://"+bs[0].addr+"/", 0)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		e.printf("%s round %d: direct to one backend: %s\n", mode, r+1, b)
		base = append(base, b)
		order := bals
		if r%2 == 1 {
			order = []lbBalancer{lp, hp}
		}
		if lpb != nil {
			// Rotate the three: every balancer goes first once in three rounds.
			order = [][]lbBalancer{{hp, lp, lpb}, {lpb, hp, lp}, {lp, lpb, hp}}[r%3]
		}
		for _, bal := range order {
			w, err := runWrk(ctx, o, bal.url(), bal.pid())
			if err != nil {
				return fmt.Errorf("%s: %w", bal.name(), err)
			}
			e.printf("%s round %d: %-8s %s\n", mode, r+1, bal.name(), w)
			if bal == lbBalancer(hp) {
				hps = append(hps, w)
			} else if lpb != nil && bal == lbBalancer(lpb) {
				lbbs = append(lbbs, w)
			} else {
				lbs = append(lbs, w)
			}
		}
	}
	put := func(k string, v any) { res[mode+"_"+k] = v }
	med := func(ws []wrkResult, f func(wrkResult) float64) float64 {
		xs := make([]float64, len(ws))
		for i, w := range ws {
			xs[i] = f(w)
		}
		return median(xs)
	}
	rps := func(w wrkResult) float64 { return w.RPS }
	p50 := func(w wrkResult) float64 { return w.P50 }
	p99 := func(w wrkResult) float64 { return w.P99 }
	cpu := func(w wrkResult) float64 { return w.CPUPct }
	errs := func(w wrkResult) float64 { return float64(w.errors()) }
	put("baseline_direct_rps", round(med(base, rps), 0))
	put("baseline_direct_p99_ms", round(med(base, p99), 3))
	for _, x := range []struct {
		name string
		ws   []wrkResult
	}{{"haproxy", hps}, {"lb", lbs}} {
		put(x.name+"_rps", round(med(x.ws, rps), 0))
		put(x.name+"_p50_ms", round(med(x.ws, p50), 3))
		put(x.name+"_p99_ms", round(med(x.ws, p99), 3))
		put(x.name+"_cpu_pct", round(med(x.ws, cpu), 1))
		put(x.name+"_cpu_us_per_req", round(med(x.ws, func(w wrkResult) float64 { return w.CPUPerReqUS }), 2))
		// haproxy's recv/send are not counted in /proc/PID/io.
		if sc := med(x.ws, func(w wrkResult) float64 { return w.SyscallsPerReq }); sc >= 0.5 {
			put(x.name+"_read_write_syscalls_per_req", round(sc, 2))
		}
		put(x.name+"_errors", int(med(x.ws, errs)))
	}
	var rr, pr []float64
	for i := range hps {
		rr = append(rr, lbs[i].RPS/hps[i].RPS)
		pr = append(pr, lbs[i].P99/hps[i].P99)
	}
	rpsRatio, p99Ratio := median(rr), median(pr)
	if lpb != nil {
		var br, bc []float64
		for i := range lbbs {
			br = append(br, lbbs[i].RPS/hps[i].RPS)
			bc = append(bc, lbbs[i].CPUPerReqUS/hps[i].CPUPerReqUS)
		}
		put("lbb_rps", round(med(lbbs, rps), 0))
		put("lbb_p99_ms", round(med(lbbs, p99), 3))
		put("lbb_cpu_us_per_req", round(med(lbbs, func(w wrkResult) float64 { return w.CPUPerReqUS }), 2))
		put("rps_ratio_lbb_haproxy", round(median(br), 3))
		put("cpu_ratio_lbb_haproxy", round(median(bc), 3))
		e.printf("%s: lb-b (%s)/haproxy requests/s %.3f, CPU per request %.3f\n", mode, o.compare, median(br), median(bc))
	}
	var cr []float64
	for i := range hps {
		cr = append(cr, lbs[i].CPUPerReqUS/hps[i].CPUPerReqUS)
	}
	put("cpu_ratio_lb_haproxy", round(median(cr), 3))
	put("rps_ratio_lb_haproxy", round(rpsRatio, 3))
	put("p99_ratio_lb_haproxy", round(p99Ratio, 3))
	want := 0.9 // "performance round 2": both modes
	put("rps_target_met", rpsRatio >= want)
	put("p99_target_met", p99Ratio <= 1.2)
	put("cpu_target_met", median(cr) <= 1.1)
	put("loadavg", loadAvg())
	e.printf("%s: lb/haproxy requests/s %.3f (target >= %.1f), p99 %.3f (target <= 1.2), CPU per request %.3f (target <= 1.1); load %s\n", mode, rpsRatio, want, p99Ratio, median(cr), loadAvg())

	if !o.churn {
		return nil
	}
	for _, bal := range bals {
		w, cycles, err := churnRun(ctx, e, o, bal, bs)
		if err != nil {
			return fmt.Errorf("%s churn: %w", bal.name(), err)
		}
		e.printf("%s churn: %-8s %s; %d backend restarts\n", mode, bal.name(), w, cycles)
		put("churn_"+bal.name()+"_rps", round(w.RPS, 0))
		put("churn_"+bal.name()+"_p99_ms", round(w.P99, 3))
		put("churn_"+bal.name()+"_errors", w.errors())
		put("churn_"+bal.name()+"_socket_errors", w.ConnectErr+w.ReadErr+w.WriteErr+w.TimeoutErr)
		put("churn_"+bal.name()+"_non2xx", w.Non2xx)
		put("churn_"+bal.name()+"_restarts", cycles)
	}
	return nil
}

// churnRun runs wrk against bal while, one after the other, each backend is
// taken out of the balancer, stopped 200 ms later, restarted and put back.
func churnRun(ctx context.Context, e *env, o lbOpts, bal lbBalancer, bs []*lbBackend) (wrkResult, int, error) {
	cctx, cancel := context.WithCancel(ctx)
	var cycles int
	var churnErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		// Leave the first and last half second of the run undisturbed.
		if !sleepCtx(cctx, 500*time.Millisecond) {
			return
		}
		for i := 0; cctx.Err() == nil; i++ {
			b := bs[i%len(bs)]
			if err := bal.deregister(ctx, b); err != nil {
				churnErr = err
				return
			}
			time.Sleep(200 * time.Millisecond)
			b.stop()
			if err := b.start(ctx); err != nil {
				churnErr = err
				return
			}
			if err := bal.register(ctx, b); err != nil {
				churnErr = err
				return
			}
			cycles++
			if !sleepCtx(cctx, o.churnPause) {
				return
			}
		}
	})
	w, err := runWrk(ctx, o, bal.url(), bal.pid())
	cancel()
	wg.Wait()
	if err == nil {
		err = churnErr
	}
	// Let the balancer take the last re-registered backend back.
	time.Sleep(100 * time.Millisecond)
	return w, cycles, err
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// lbBalancer is fleetd lb or haproxy, with the way to take a backend out of
// rotation and put it back.
type lbBalancer interface {
	name() string
	url() string
	pid() int
	deregister(ctx context.Context, b *lbBackend) error
	register(ctx context.Context, b *lbBackend) error
}

// --- backends ---

// lbBackend is one backend process: fleet-bench's hidden _lbbackend mode.
type lbBackend struct {
	idx       int
	addr, key string
	exe       string
	errw      io.Writer
	proc      *procutil.Proc // nil when stopped
}

func (b *lbBackend) start(ctx context.Context) error {
	cmd := exec.Command(b.exe, "_lbbackend", "--addr", b.addr)
	cmd.Stderr = b.errw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	ready := make(chan bool, 1)
	b.proc, err = procutil.Start(cmd, func() {
		sc := bufio.NewScanner(out)
		ready <- sc.Scan()
		for sc.Scan() {
		}
	})
	if err != nil {
		return fmt.Errorf("start backend %d: %w", b.idx, err)
	}
	select {
	case ok := <-ready:
		if !ok {
			<-b.proc.Done()
			return fmt.Errorf("backend %d on %s did not start", b.idx, b.addr)
		}
		return nil
	case <-time.After(10 * time.Second):
		b.stop()
		return fmt.Errorf("backend %d on %s did not start within 10s", b.idx, b.addr)
	case <-ctx.Done():
		b.stop()
		return ctx.Err()
	}
}

// stop asks the backend to stop (it answers "Connection: close" for a
// moment, then shuts down) and waits; it kills it after 5s.
func (b *lbBackend) stop() {
	if b.proc == nil {
		return
	}
	b.proc.Stop(5 * time.Second)
	b.proc = nil
}

// runLBBackendChild is a backend: a keep-alive HTTP/1.1 server answering
// "ok" to everything. It prints its address when it listens. On SIGTERM it
// answers with "Connection: close" for --grace (so keep-alive clients, also
// through an L4 balancer, go elsewhere without an error), then shuts down.
func runLBBackendChild(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "_lbbackend", "internal: a backend of the lb scenario")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	grace := fs.Duration("grace", 300*time.Millisecond, "how long to answer with Connection: close before shutting down")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var ln net.Listener
	var err error
	for range 100 { // a restart may race with the old process's exit
		if ln, err = net.Listen("tcp", *addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	var stopping atomic.Bool
	body := []byte("ok\n")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			if stopping.Load() {
				h["Connection"] = []string{"close"}
			}
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintln(e.out, ln.Addr().String())
	<-ctx.Done()
	stopping.Store(true)
	time.Sleep(*grace)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if srv.Shutdown(sctx) != nil {
		_ = srv.Close()
	}
	return nil, nil
}

// --- haproxy ---

type haproxyProc struct {
	mode, dir, addr, sock string
	proc                  *procutil.Proc
}

func startHAProxy(ctx context.Context, dir, mode string, threads int, bs []*lbBackend) (*haproxyProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	h := &haproxyProc{mode: mode, dir: dir, addr: addr, sock: filepath.Join(dir, "admin.sock")}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global\n  nbthread %d\n  maxconn 4096\n  stats socket %s mode 600 level admin\n\n", threads, h.sock)
	fmt.Fprintf(&cfg, "defaults\n  mode %s\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  retries 3\n  option redispatch\n", mode)
	if mode == "http" {
		// As fleetd lb: X-Forwarded-For, keep-alive both sides, retry
		// what never reached a backend.
		cfg.WriteString("  option forwardfor\n  option http-keep-alive\n  retry-on conn-failure empty-response\n")
	}
	fmt.Fprintf(&cfg, "\nfrontend fe\n  bind %s\n  default_backend be\n\nbackend be\n  balance roundrobin\n", addr)
	for _, b := range bs {
		fmt.Fprintf(&cfg, "  server b%d %s\n", b.idx, b.addr)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "haproxy", "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("haproxy -c -f %s: %v\n%s", path, err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("haproxy", "-db", "-f", path)
	if h.proc, err = startChild(cmd, logf); err != nil {
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	if err := awaitListen(ctx, h.proc, addr, 10*time.Second); err != nil {
		h.stop()
		return nil, fmt.Errorf("haproxy: %w\n%s", err, logTail(logf.Name()))
	}
	return h, nil
}

func (h *haproxyProc) name() string { return "haproxy" }
func (h *haproxyProc) url() string  { return "http://" + h.addr + "/" }
func (h *haproxyProc) pid() int     { return h.proc.Pid() }

func (h *haproxyProc) stop() { h.proc.Stop(5 * time.Second) }

// admin sends one command to haproxy's runtime API.
func (h *haproxyProc) admin(cmd string) error {
	c, err := net.DialTimeout("unix", h.sock, 2*time.Second)
	if err != nil {
		return fmt.Errorf("haproxy admin socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return err
	}
	out, _ := io.ReadAll(c)
	if s := strings.TrimSpace(string(out)); s != "" {
		return fmt.Errorf("haproxy %q: %s", cmd, s)
	}
	return nil
}

func (h *haproxyProc) deregister(_ context.Context, b *lbBackend) error {
	return h.admin(fmt.Sprintf("set server be/b%d state maint", b.idx))
}

func (h *haproxyProc) register(_ context.Context, b *lbBackend) error {
	return h.admin(fmt.Sprintf("set server be/b%d state ready", b.idx))
}

// --- fleetd lb ---

type lbProc struct {
	label              string // "lb" unless set
	mode, addr, status string
	cli                *clientv3.Client
	proc               *procutil.Proc
}

func startLBProc(ctx context.Context, bin, dir, mode, etcdURL string, o lbOpts, n int) (*lbProc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	status, err := freePort()
	if err != nil {
		return nil, err
	}
	cli, err := newClient(strings.Split(etcdURL, ","), "")
	if err != nil {
		return nil, err
	}
	p := &lbProc{mode: mode, addr: addr, status: status, cli: cli}
	args := []string{"lb", "--listen", addr, "--service", lbService, "--mode", mode, "--etcd-servers", etcdURL,
		"--status-addr", status, "--drain-timeout", "5s"}
	if o.lbCPU != "" {
		args = append(args, "--cpuprofile", o.lbCPU+"."+mode)
	}
	logf, err := os.CreateTemp(dir, "lb-"+mode+"-*.log")
	if err != nil {
		cli.Close()
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", o.procs))
	if o.lbGOGC != "" {
		cmd.Env = append(cmd.Env, "GOGC="+o.lbGOGC)
	}
	if p.proc, err = startChild(cmd, logf); err != nil {
		cli.Close()
		return nil, fmt.Errorf("start fleetd lb: %w", err)
	}
	if err := p.awaitBackends(ctx, n, 20*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("fleetd lb: %w\n%s", err, logTail(logf.Name()))
	}
	return p, nil
}

// startChild starts cmd with its output to log (closed here: the child has
// its own copy), to be killed if fleet-bench dies.
func startChild(cmd *exec.Cmd, log *os.File) (*procutil.Proc, error) {
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return procutil.Start(cmd, nil)
}

// logTail is the end of a child's log file, for errors.
func logTail(path string) string {
	log, _ := os.ReadFile(path)
	return tail(string(log), 2000)
}

// awaitBackends waits until /status reports the lb synced with n backends.
func (p *lbProc) awaitBackends(ctx context.Context, n int, d time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	err := p.proc.Await(ctx, d, 50*time.Millisecond, func() bool {
		resp, err := hc.Get("http://" + p.status + "/status")
		if err != nil {
			return false
		}
		var st struct {
			Synced   bool `json:"synced"`
			Backends []struct {
				Draining bool `json:"draining"`
			} `json:"backends"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		live := 0
		for _, b := range st.Backends {
			if !b.Draining {
				live++
			}
		}
		return err == nil && st.Synced && live == n
	})
	if err != nil && !errors.Is(err, procutil.ErrExited) {
		return fmt.Errorf("not synced with %d backends within %v", n, d)
	}
	return err
}

func (p *lbProc) name() string {
	if p.label != "" {
		return p.label
	}
	return "lb"
}
func (p *lbProc) url() string { return "http://" + p.addr + "/" }
func (p *lbProc) pid() int    { return p.proc.Pid() }

func (p *lbProc) stop() {
	p.proc.Stop(10 * time.Second)
	p.cli.Close()
}

func (p *lbProc) deregister(ctx context.Context, b *lbBackend) error {
	_, err := p.cli.Delete(ctx, b.key)
	return err
}

func (p *lbProc) register(ctx context.Context, b *lbBackend) error {
	_, err := p.cli.Put(ctx, b.key, b.addr)
	return err
}

// awaitListen waits until p listens on addr.
func awaitListen(ctx context.Context, p *procutil.Proc, addr string, d time.Duration) error {
	err := p.Await(ctx, d, 20*time.Millisecond, procutil.Listening(addr))
	if err != nil && !errors.Is(err, procutil.ErrExited) {
		return fmt.Errorf("not listening on %s within %v", addr, d)
	}
	return err
}

// procSyscalls returns the read and write system calls pid made so far
// (syscr + syscw of /proc/PID/io; recvfrom, sendto and splice are not
// counted, so it is about 0 for haproxy).
func procSyscalls(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	var n int64
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "syscr" || k == "syscw") {
			x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += x
		}
	}
	return n
}

// --- wrk ---

// wrkResult is what one wrk run reported. Latencies are in milliseconds.
type wrkResult struct {
	RPS                                       float64
	Requests                                  int64
	P50, P75, P90, P99                        float64
	ConnectErr, ReadErr, WriteErr, TimeoutErr int64
	Non2xx                                    int64
	CPUPct                                    float64 // the balancer's CPU during the run, % of one core
	CPUPerReqUS                               float64 // the balancer's CPU per request, µs
	SyscallsPerReq                            float64 // the balancer's read+write syscalls per request
	Load                                      string
}

func (w wrkResult) errors() int64 {
	return w.ConnectErr + w.ReadErr + w.WriteErr + w.TimeoutErr + w.Non2xx
}

func (w wrkResult) String() string {
	s := fmt.Sprintf("%8.0f req/s  p50 %.3f ms  p99 %.3f ms  errors %d", w.RPS, w.P50, w.P99, w.errors())
	if w.errors() > 0 {
		s += fmt.Sprintf(" (connect %d, read %d, write %d, timeout %d, non-2xx %d)", w.ConnectErr, w.ReadErr, w.WriteErr, w.TimeoutErr, w.Non2xx)
	}
	if w.CPUPct > 0 {
		s += fmt.Sprintf("  balancer CPU %.0f%% (%.1f µs/req", w.CPUPct, w.CPUPerReqUS)
		if w.SyscallsPerReq >= 0.5 {
			s += fmt.Sprintf(", %.1f read+write syscalls/req", w.SyscallsPerReq)
		}
		s += ")"
	}
	return s + "  load " + w.Load
}

// runWrk runs wrk against url; pid, when not 0, is the balancer whose CPU
// use is measured over the run.
func runWrk(ctx context.Context, o lbOpts, url string, pid int) (wrkResult, error) {
	args := []string{fmt.Sprintf("-t%d", o.threads), fmt.Sprintf("-c%d", o.conns),
		fmt.Sprintf("-d%ds", int(o.duration.Seconds())), "--latency", "--timeout", "5s", url}
	var before procStat
	var ioBefore int64
	if pid != 0 {
		before, ioBefore = readProc(pid), procSyscalls(pid)
	}
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	w, err := parseWrk(string(out))
	if err != nil {
		return w, fmt.Errorf("wrk %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if pid != 0 {
		if after := readProc(pid); before.Valid && after.Valid {
			w.CPUPct = cpuPercent(before, after)
			if w.Requests > 0 {
				w.CPUPerReqUS = float64(after.CPU-before.CPU) / float64(time.Microsecond) / float64(w.Requests)
				w.SyscallsPerReq = float64(procSyscalls(pid)-ioBefore) / float64(w.Requests)
			}
		}
	}
	w.Load = loadAvg()
	return w, nil
}

// parseWrk reads wrk's report (run with --latency).
func parseWrk(out string) (wrkResult, error) {
	var w wrkResult
	var haveRPS, haveP99 bool
	latency := map[string]*float64{"50%": &w.P50, "75%": &w.P75, "90%": &w.P90, "99%": &w.P99}
	socketErrors := map[string]*int64{"connect": &w.ConnectErr, "read": &w.ReadErr, "write": &w.WriteErr, "timeout": &w.TimeoutErr}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && latency[f[0]] != nil:
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return w, err
			}
			*latency[f[0]] = d
			haveP99 = haveP99 || f[0] == "99%"
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return w, fmt.Errorf("requests/sec %q: %v", f[1], err)
			}
			w.RPS, haveRPS = v, true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			w.Requests, _ = strconv.ParseInt(f[0], 10, 64)
		case strings.HasPrefix(strings.TrimSpace(line), "Socket errors:"):
			_, rest, _ := strings.Cut(line, ":")
			for _, part := range strings.Split(rest, ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					continue
				}
				if p := socketErrors[kv[0]]; p != nil {
					*p, _ = strconv.ParseInt(kv[1], 10, 64)
				}
			}
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			w.Non2xx, _ = strconv.ParseInt(f[len(f)-1], 10, 64)
		}
	}
	if !haveRPS || !haveP99 {
		return w, errors.New("no Requests/sec or 99% latency in wrk's output")
	}
	return w, nil
}

// parseWrkDuration reads wrk's "812.00us", "1.23ms", "2.00s" or "1.00m" as
// milliseconds.
func parseWrkDuration(s string) (float64, error) {
	units := []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("latency %q: %v", s, err)
			}
			return v * u.ms, nil
		}
	}
	return 0, fmt.Errorf("latency %q: unknown unit", s)
}
