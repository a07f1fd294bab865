package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
)

// The soak scenario: real fleetd processes (the first embeds etcd, the
// others are its clients) under unit churn at a fixed rate for a long
// time; every --sample it records, per fleetd, RSS, private memory, open
// fds, threads and goroutines, and etcd's database size and key count, and
// the unit processes and shims alive. Each step submits and starts a unit
// with a new name, stops the one started --working-set steps before and
// destroys the one stopped --destroy-lag steps before, so a bounded set of
// units is live and anything kept per unit name shows as growth.

type soakOpts struct {
	duration, sample, warmup time.Duration
	rate                     float64
	machines                 int
	workingSet, destroyLag   int
	maxErrors                int
	bin, csv                 string
}

func runSoak(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "soak", "N fleetd (the first embeds etcd) under unit churn (start, stop, destroy; new names) at a fixed rate; RSS, private memory, fds, threads, goroutines, etcd db size sampled and judged flat or not")
	var o soakOpts
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "how long the churn runs")
	fs.Float64Var(&o.rate, "rate", 2, "units started (and stopped, and destroyed) per second")
	fs.IntVar(&o.machines, "machines", 3, "fleetd processes")
	fs.DurationVar(&o.sample, "sample", 30*time.Second, "sampling interval")
	fs.DurationVar(&o.warmup, "warmup", 0, "samples before this are not judged (0: a fifth of --duration, at most 6m, which is after etcd's first auto-compaction)")
	fs.IntVar(&o.workingSet, "working-set", 20, "a unit is stopped this many steps after it was started")
	fs.IntVar(&o.destroyLag, "destroy-lag", 4, "a unit is destroyed this many steps after it was stopped")
	fs.IntVar(&o.maxErrors, "max-errors", 3, "fail (exit 1) if more churn API calls than this fail")
	fs.StringVar(&o.bin, "fleetd", "", "fleetd binary (default: build ./cmd/fleetd and ./cmd/fleet-shim)")
	fs.StringVar(&o.csv, "csv", "", "also write every sample to `file` (CSV, one row per fleetd per sample)")
	var prof profiles
	prof.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.rate <= 0 || o.machines < 1 || o.workingSet < 1 || o.destroyLag < 0 || o.sample <= 0 || o.duration <= 0 {
		return nil, errors.New("--rate, --machines, --working-set, --sample and --duration must be positive")
	}
	if o.warmup == 0 {
		o.warmup = min(o.duration/5, 6*time.Minute)
	}
	dir, path, err := fleetdWorkdir(ctx, e, "soak", o.bin)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := prof.start(); err != nil {
		return nil, err
	}
	defer prof.stop()
	return soak(ctx, e, path, filepath.Join(dir, "cluster"), o)
}

// soakProc is one fleetd in one sample; -1 where a figure could not be read.
type soakProc struct {
	RSS, Private, HeapInuse int64 // bytes
	FDs, Threads            int
	Goroutines              int
	Shims                   int // shims of units of this fleetd
	DataFiles               int // files under its data directory
}

type soakSample struct {
	At                   time.Duration // since the churn started; 0 = idle, before it
	Procs                []soakProc
	DBSize, DBInUse      int64
	Revision, Keys       int64
	Shims, UnitProcs     int
	Live                 int // units started and not yet stopped
	Started, Destroyed   int
	Errors               int
	Phase                string // idle, churn, after
	LoadAvg              string
	scrapeErr, etcdError error
}

// soakUnit is one unit of the churn; created and stopped are closed when
// the call returned (ok tells whether it succeeded).
type soakUnit struct {
	name              string
	created, stopped  chan struct{}
	createOK, stopOK  bool
	stopDone, destroy bool
}

type soakChurn struct {
	o      soakOpts
	api    []*client.Client
	marker string // the sleep argument that marks this run's unit processes
	runID  string
	sem    chan struct{}
	wg     sync.WaitGroup

	mu                           sync.Mutex
	units                        map[int]*soakUnit
	started, stopped, destroyed  int
	errors                       int
	firstErrors                  []string
	pending                      map[string]bool // created, not yet seen active
	seenActive, neverActive      int
	lat                          []time.Duration
	maxLag                       time.Duration
	inFlight, maxInFlight, steps int
}

func (c *soakChurn) fail(op, name string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors++
	if len(c.firstErrors) < 10 {
		c.firstErrors = append(c.firstErrors, fmt.Sprintf("%s %s: %s", op, name, shortErr(err)))
	}
}

// call runs one API call (bounded concurrency) and records its latency or
// its error.
func (c *soakChurn) call(ctx context.Context, op, name string, f func(context.Context) error) bool {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	c.mu.Lock()
	c.inFlight++
	c.maxInFlight = max(c.maxInFlight, c.inFlight)
	c.mu.Unlock()
	t0 := time.Now()
	err := f(ctx)
	d := time.Since(t0)
	c.mu.Lock()
	c.inFlight--
	if err == nil {
		c.lat = append(c.lat, d)
	}
	c.mu.Unlock()
	if err != nil {
		c.fail(op, name, err)
		return false
	}
	return true
}

// client spreads the calls over the fleetd APIs.
func (c *soakChurn) client(i int) *client.Client { return c.api[i%len(c.api)] }

func (c *soakChurn) unit(name string) *client.Unit {
	return &client.Unit{
		Name: name,
		Options: []*client.UnitOption{
			{Section: "Unit", Name: "Description", Value: "fleet-bench soak " + name},
			{Section: "Service", Name: "ExecStart", Value: "/bin/sleep " + c.marker},
		},
		DesiredState: string(fleet.JobStateLaunched),
	}
}

// create submits and starts unit i.
func (c *soakChurn) create(ctx context.Context, i int) {
	u := &soakUnit{name: fmt.Sprintf("soak-%s-%06d.service", c.runID, i), created: make(chan struct{}), stopped: make(chan struct{})}
	c.mu.Lock()
	c.units[i] = u
	c.pending[u.name] = true
	c.mu.Unlock()
	c.wg.Go(func() {
		defer close(u.created)
		ok := c.call(ctx, "create", u.name, func(ctx context.Context) error { return c.client(i).CreateUnit(ctx, c.unit(u.name)) })
		c.mu.Lock()
		u.createOK = ok
		if ok {
			c.started++
		} else {
			delete(c.pending, u.name)
		}
		c.mu.Unlock()
	})
}

// claim returns unit i for the operation whose mark flag done picks, and
// sets the flag; nil if the unit is gone or the operation was claimed.
func (c *soakChurn) claim(i int, done func(*soakUnit) *bool) *soakUnit {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.units[i]
	if u == nil || *done(u) {
		return nil
	}
	*done(u) = true
	return u
}

// stop stops unit i (once it was created).
func (c *soakChurn) stop(ctx context.Context, i int) {
	u := c.claim(i, func(u *soakUnit) *bool { return &u.stopDone })
	if u == nil {
		return
	}
	c.wg.Go(func() {
		defer close(u.stopped)
		<-u.created
		if !u.createOK {
			return
		}
		ok := c.call(ctx, "stop", u.name, func(ctx context.Context) error {
			return c.client(i+1).SetUnitTargetState(ctx, u.name, string(fleet.JobStateLoaded))
		})
		c.mu.Lock()
		u.stopOK = ok
		if ok {
			c.stopped++
		}
		if c.pending[u.name] {
			delete(c.pending, u.name)
			c.neverActive++
		}
		c.mu.Unlock()
	})
}

// destroy destroys unit i (once the stop returned) and forgets it.
func (c *soakChurn) destroy(ctx context.Context, i int) {
	u := c.claim(i, func(u *soakUnit) *bool { return &u.destroy })
	if u == nil {
		return
	}
	c.wg.Go(func() {
		<-u.stopped
		ok := u.createOK && c.call(ctx, "destroy", u.name, func(ctx context.Context) error { return c.client(i+2).DestroyUnit(ctx, u.name) })
		c.mu.Lock()
		if ok {
			c.destroyed++
		}
		delete(c.units, i)
		c.mu.Unlock()
	})
}

// run makes one step every 1/rate from t0 until end; a late step runs at
// once (the rate holds on average) and its lateness is recorded.
func (c *soakChurn) run(ctx context.Context, t0, end time.Time) {
	interval := time.Duration(float64(time.Second) / c.o.rate)
	for i := 0; ; i++ {
		at := t0.Add(time.Duration(i) * interval)
		if !at.Before(end) {
			return
		}
		if d := time.Until(at); d > 0 {
			sleepCtx(ctx, d)
		}
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.maxLag = max(c.maxLag, time.Since(at))
		c.steps++
		c.mu.Unlock()
		c.create(ctx, i)
		if j := i - c.o.workingSet; j >= 0 {
			c.stop(ctx, j)
		}
		if k := i - c.o.workingSet - c.o.destroyLag; k >= 0 {
			c.destroy(ctx, k)
		}
	}
}

// drain stops and destroys every unit left, then waits for all calls.
func (c *soakChurn) drain(ctx context.Context) {
	c.mu.Lock()
	var left []int
	for i := range c.units {
		left = append(left, i)
	}
	c.mu.Unlock()
	slices.Sort(left)
	for _, i := range left {
		c.stop(ctx, i)
		c.destroy(ctx, i)
	}
	c.wg.Wait()
}

// watchStates counts the units seen active (states/ puts).
func (c *soakChurn) watchStates(ctx context.Context, cli *clientv3.Client) {
	sdir := store.DefaultPrefix + "states/"
	wch := cli.Watch(ctx, sdir, clientv3.WithPrefix())
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				_, unit, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), sdir), "/")
				if !ok {
					continue
				}
				var st struct {
					ActiveState string `json:"activeState"`
				}
				if json.Unmarshal(ev.Kv.Value, &st) != nil || st.ActiveState != "active" {
					continue
				}
				c.mu.Lock()
				if c.pending[unit] {
					delete(c.pending, unit)
					c.seenActive++
				}
				c.mu.Unlock()
			}
		}
	}()
}

func soak(ctx context.Context, e *env, bin, dir string, o soakOpts) (map[string]any, error) {
	res := map[string]any{
		"machines": o.machines, "duration_s": o.duration.Seconds(), "rate": o.rate,
		"sample_s": o.sample.Seconds(), "warmup_s": o.warmup.Seconds(),
		"working_set": o.workingSet, "destroy_lag": o.destroyLag, "max_errors": o.maxErrors,
	}
	e.printf("starting %d fleetd (the first embeds etcd)\n", o.machines)
	c, err := startCluster(ctx, bin, dir, clusterOpts{n: o.machines})
	if err != nil {
		return res, err
	}
	defer c.stop()
	cli := c.cli
	ch := &soakChurn{
		o: o, units: map[int]*soakUnit{}, pending: map[string]bool{}, sem: make(chan struct{}, 8),
		runID:  fmt.Sprintf("%04x", time.Now().UnixNano()&0xffff),
		marker: fmt.Sprintf("86400.%06d", time.Now().UnixNano()/1000%1000000),
	}
	for i := range c.procs {
		api, err := c.client(i)
		if err != nil {
			return res, err
		}
		ch.api = append(ch.api, api)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	ch.watchStates(wctx, cli)
	sp := &soakSampler{c: c, cli: cli, ch: ch, hc: &http.Client{Timeout: 10 * time.Second}, shimBins: []string{filepath.Join(filepath.Dir(bin), "fleet-shim"), bin}}
	if o.csv != "" {
		f, err := os.Create(o.csv)
		if err != nil {
			return res, err
		}
		defer f.Close()
		sp.csv = bufio.NewWriter(f)
		defer sp.csv.Flush()
		fmt.Fprintln(sp.csv, "t_s,phase,fleetd,rss_mb,private_mb,heap_inuse_mb,fds,threads,goroutines,shims,data_files,etcd_db_size_mb,etcd_db_in_use_mb,etcd_keys,etcd_revision,unit_processes,live_units,started,destroyed,errors,loadavg")
	}
	res["unit_exec_start"] = "/bin/sleep " + ch.marker

	// Idle figures, before any unit.
	time.Sleep(2 * time.Second)
	var samples []soakSample
	idle := sp.take(ctx, e, 0, "idle")
	samples = append(samples, idle)
	if err := sp.check(idle); err != nil {
		return res, err
	}

	e.printf("churn: %g units/s for %v (working set %d), sampling every %v, warm-up %v\n", o.rate, o.duration, o.workingSet, o.sample, o.warmup)
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	t0 := time.Now()
	end := t0.Add(o.duration)
	churnDone := make(chan struct{})
	go func() { ch.run(cctx, t0, end); close(churnDone) }()
	var runErr error
	tick := time.NewTicker(o.sample)
sampling:
	for {
		select {
		case <-ctx.Done():
			runErr = errors.New("interrupted")
			break sampling
		case <-churnDone:
			break sampling
		case <-tick.C:
			s := sp.take(ctx, e, time.Since(t0), "churn")
			samples = append(samples, s)
			if err := sp.check(s); err != nil {
				runErr = err
				break sampling
			}
			ch.mu.Lock()
			tooMany := ch.errors > o.maxErrors
			ch.mu.Unlock()
			if tooMany {
				runErr = fmt.Errorf("more than %d churn errors", o.maxErrors)
				break sampling
			}
		}
	}
	tick.Stop()
	if runErr != nil {
		ccancel() // abort; a normal end lets the last calls finish
	}
	<-churnDone
	churnWall := time.Since(t0)
	if runErr == nil {
		// The last sample of the churn, at its end.
		s := sp.take(ctx, e, churnWall, "churn")
		samples = append(samples, s)
		runErr = sp.check(s)
	}
	ch.mu.Lock()
	steps := ch.steps
	ch.mu.Unlock()

	// Stop and destroy what is left; wait for the unit processes and the
	// shims to go.
	var leakedUnits, leakedShims int
	var after *soakSample
	allAlive := true
	for _, p := range c.procs {
		allAlive = allAlive && p.alive()
	}
	if ctx.Err() == nil && allAlive {
		e.printf("churn over after %v (%d steps); stopping and destroying the units left\n", churnWall.Round(time.Millisecond), steps)
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Minute)
		ch.drain(dctx)
		dcancel()
		deadline := time.Now().Add(60 * time.Second)
		for {
			// Each fleetd keeps its current shim process, idle, for the
			// next units (a shim takes up to 64 units over its life);
			// any other shim left is a leak.
			leakedUnits, leakedShims = sp.countProcs(nil)
			leakedShims = max(0, leakedShims-len(c.procs))
			if leakedUnits+leakedShims == 0 || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		sleepCtx(ctx, 3*time.Second) // settle
		s := sp.take(ctx, e, time.Since(t0), "after")
		samples = append(samples, s)
		after = &s
		if runErr == nil {
			runErr = sp.check(s)
		}
	} else {
		ccancel()
		ch.wg.Wait()
	}

	ch.mu.Lock()
	res["steps"] = steps
	res["units_started"] = ch.started
	res["units_stopped"] = ch.stopped
	res["units_destroyed"] = ch.destroyed
	res["units_seen_active"] = ch.seenActive
	res["units_never_active"] = ch.neverActive
	res["errors"] = ch.errors
	if len(ch.firstErrors) > 0 {
		res["first_errors"] = ch.firstErrors
	}
	res["rate_achieved"] = round(float64(steps)/churnWall.Seconds(), 3)
	res["churn_s"] = round(churnWall.Seconds(), 1)
	res["step_max_lag_ms"] = round(ms(ch.maxLag), 1)
	res["api_calls_max_in_flight"] = ch.maxInFlight
	lat := slices.Clone(ch.lat)
	errCount := ch.errors
	started, destroyed := ch.started, ch.destroyed
	ch.mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		res["api_call_p50_ms"] = round(ms(pct(lat, 50)), 2)
		res["api_call_p99_ms"] = round(ms(pct(lat, 99)), 2)
		res["api_call_max_ms"] = round(ms(lat[len(lat)-1]), 2)
	}
	res["samples"] = len(samples)
	res["leaked_unit_processes"] = leakedUnits
	res["leaked_shims"] = leakedShims

	metrics, verdicts, notFlat := soakJudge(samples, o, after)
	res["metrics"] = metrics
	res["verdicts"] = verdicts
	res["flat"] = len(notFlat) == 0
	if len(notFlat) > 0 {
		res["not_flat"] = notFlat
	}
	res["criteria"] = soakCriteria(o)
	soakSummary(e, res, metrics, verdicts)

	switch {
	case runErr != nil:
	case errCount > o.maxErrors:
		runErr = fmt.Errorf("%d churn errors (more than --max-errors %d)", errCount, o.maxErrors)
	case started == 0 || destroyed == 0:
		runErr = fmt.Errorf("churn did nothing: %d units started, %d destroyed", started, destroyed)
	case leakedUnits > 0 || leakedShims > 0:
		runErr = fmt.Errorf("%d unit processes and %d shims left after every unit was destroyed", leakedUnits, leakedShims)
	}
	return res, runErr
}

// soakSampler takes the samples.
type soakSampler struct {
	c        *fleetdCluster
	cli      *clientv3.Client
	ch       *soakChurn
	hc       *http.Client
	shimBins []string // the shim binaries of this run (fleet-shim, fleetd for `fleetd shim`)
	csv      *bufio.Writer
}

// check fails the run when a fleetd is gone.
func (sp *soakSampler) check(s soakSample) error {
	for _, p := range sp.c.procs {
		if !p.alive() {
			return fmt.Errorf("fleetd %d exited during the soak:\n%s", p.idx, tail(p.logText(), 3000))
		}
	}
	return nil
}

func (sp *soakSampler) take(ctx context.Context, e *env, at time.Duration, phase string) soakSample {
	s := soakSample{At: at, Phase: phase, LoadAvg: loadAvg()}
	shims := make([]int, len(sp.c.procs))
	s.UnitProcs, s.Shims = sp.countProcs(shims)
	for i, p := range sp.c.procs {
		pr := readSoakProc(p.pid())
		pr.Shims = shims[i]
		pr.DataFiles = countFiles(filepath.Join(sp.c.dir, fmt.Sprintf("m%d", i)))
		g, heap, err := sp.scrape(ctx, p)
		pr.Goroutines, pr.HeapInuse = g, heap
		if err != nil && s.scrapeErr == nil {
			s.scrapeErr = err
		}
		s.Procs = append(s.Procs, pr)
	}
	s.DBSize, s.DBInUse, s.Revision, s.Keys = -1, -1, -1, -1
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if st, err := sp.cli.Status(sctx, sp.c.etcd[0]); err == nil {
		s.DBSize, s.DBInUse, s.Revision = st.DbSize, st.DbSizeInUse, st.Header.Revision
	} else {
		s.etcdError = err
	}
	if r, err := sp.cli.Get(sctx, store.DefaultPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err == nil {
		s.Keys = r.Count
	} else if s.etcdError == nil {
		s.etcdError = err
	}
	cancel()
	ch := sp.ch
	ch.mu.Lock()
	s.Started, s.Destroyed, s.Errors = ch.started, ch.destroyed, ch.errors
	for _, u := range ch.units {
		if !u.stopDone {
			s.Live++
		}
	}
	ch.mu.Unlock()
	sp.progress(e, s)
	if sp.csv != nil {
		for i, p := range s.Procs {
			fmt.Fprintf(sp.csv, "%.1f,%s,%d,%.2f,%.2f,%.2f,%d,%d,%d,%d,%d,%.3f,%.3f,%d,%d,%d,%d,%d,%d,%d,%s\n",
				at.Seconds(), phase, i, mb(p.RSS), mb(p.Private), mb(p.HeapInuse), p.FDs, p.Threads, p.Goroutines,
				p.Shims, p.DataFiles, mb(s.DBSize), mb(s.DBInUse), s.Keys, s.Revision, s.UnitProcs, s.Live,
				s.Started, s.Destroyed, s.Errors, s.LoadAvg)
		}
		_ = sp.csv.Flush()
	}
	return s
}

// progress writes one line per sample on stderr.
func (sp *soakSampler) progress(e *env, s soakSample) {
	var b strings.Builder
	fmt.Fprintf(&b, "soak %s %7s: started %d destroyed %d errors %d live %d | procs %d shims %d | etcd db %.1f MB (in use %.1f) keys %d rev %d",
		s.Phase, s.At.Round(time.Second), s.Started, s.Destroyed, s.Errors, s.Live, s.UnitProcs, s.Shims,
		mb(s.DBSize), mb(s.DBInUse), s.Keys, s.Revision)
	for i, p := range s.Procs {
		fmt.Fprintf(&b, " | fleetd%d rss %.1f priv %.1f heap %.1f MB fds %d thr %d gor %d files %d", i, mb(p.RSS), mb(p.Private), mb(p.HeapInuse), p.FDs, p.Threads, p.Goroutines, p.DataFiles)
	}
	fmt.Fprintf(&b, " | load %s", s.LoadAvg)
	if s.scrapeErr != nil {
		fmt.Fprintf(&b, " | metrics: %s", shortErr(s.scrapeErr))
	}
	if s.etcdError != nil {
		fmt.Fprintf(&b, " | etcd: %s", shortErr(s.etcdError))
	}
	fmt.Fprintln(e.errw, b.String())
}

// scrape reads go_goroutines and go_memstats_heap_inuse_bytes from a
// fleetd's /metrics (with the admin token); -1 if unreadable.
func (sp *soakSampler) scrape(ctx context.Context, p *fleetdProc) (int, int64, error) {
	g, heap := -1, int64(-1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.api+"/metrics", nil)
	if err != nil {
		return g, heap, err
	}
	req.Header.Set("Authorization", "Bearer "+sp.c.admin)
	resp, err := sp.hc.Do(req)
	if err != nil {
		return g, heap, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return g, heap, fmt.Errorf("GET %s/metrics: %s", p.api, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "go_goroutines":
			if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
				g = int(f)
			}
		case "go_memstats_heap_inuse_bytes":
			if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
				heap = int64(f)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return g, heap, err
	}
	if g < 0 {
		return g, heap, fmt.Errorf("%s/metrics has no go_goroutines", p.api)
	}
	return g, heap, nil
}

// countProcs counts this run's unit processes (/bin/sleep with the run's
// marker) and the shims of our fleetd (a shim process run from one of this
// run's binaries); perMachine, if given, gets the shims per fleetd (by
// parent process: fleetd starts them).
func (sp *soakSampler) countProcs(perMachine []int) (units, shims int) {
	fleetds := map[int]int{}
	for i, p := range sp.c.procs {
		if p.proc != nil {
			fleetds[p.pid()] = i
		}
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(argv[0]) == "sleep" && slices.Contains(argv[1:], sp.ch.marker) {
			units++
			continue
		}
		if !isShim(argv) {
			continue
		}
		if exe, err := os.Readlink(filepath.Join(d, "exe")); err != nil || !slices.Contains(sp.shimBins, exe) {
			continue
		}
		shims++
		pid, _ := strconv.Atoi(filepath.Base(d))
		if i, ok := fleetds[parentPID(pid)]; ok && i < len(perMachine) {
			perMachine[i]++
		}
	}
	return units, shims
}

// parentPID is pid's parent (0 if unknown).
func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// isShim reports whether argv is a shim: `fleet-shim --serve` or `fleetd
// shim --serve` (or the one-unit forms with a directory).
func isShim(argv []string) bool {
	switch {
	case len(argv) == 2 && filepath.Base(argv[0]) == "fleet-shim":
		return true
	case len(argv) == 3 && argv[1] == "shim":
		return true
	}
	return false
}

// readSoakProc reads a process's RSS and threads (/proc/PID/status),
// private memory (/proc/PID/smaps_rollup: Private_Clean + Private_Dirty)
// and open fds (/proc/PID/fd); -1 for what it could not read.
func readSoakProc(pid int) soakProc {
	p := soakProc{RSS: -1, Private: -1, FDs: -1, Threads: -1, Goroutines: -1, HeapInuse: -1}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			f := strings.Fields(v)
			if len(f) == 0 {
				continue
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "VmRSS":
				p.RSS = n * 1024
			case "Threads":
				p.Threads = int(n)
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		var priv int64
		seen := false
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k != "Private_Clean" && k != "Private_Dirty" {
				continue
			}
			f := strings.Fields(v)
			if len(f) == 0 {
				continue
			}
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				priv += n * 1024
				seen = true
			}
		}
		if seen {
			p.Private = priv
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		p.FDs = len(ents)
	}
	return p
}

// countFiles counts the regular files under dir (-1 if unreadable).
func countFiles(dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return n
}

// The flatness criteria. A per-fleetd figure is judged on its growth from
// the first sample after the warm-up to the last of the churn; the etcd
// database, whose size saws between auto-compactions (every 5 minutes,
// keeping 10,000 revisions: internal/etcdserver), is judged bounded when
// the peak of the second half of the judged samples is not above the
// first half's by more than a fifth.
const (
	soakMemGrowthPct    = 20.0 // RSS, private memory: growth < 20 %, or levels off:
	soakMemPeakRatio    = 1.05 // second-half peak ≤ 1.05 × first-half peak (runs ≥ soakDBMinRun)
	soakFDGrowth        = 10   // open fds: growth ≤ 10
	soakThreadGrowth    = 5    // threads: growth ≤ 5
	soakGoroutineGrowth = 25   // goroutines: growth ≤ 25
	soakKeysGrowthPct   = 25.0 // etcd keys under fleet's prefix: growth ≤ 25 %
	soakFilesGrowthPct  = 25.0 // files in a data directory: growth ≤ 25 %
	soakDBPeakRatio     = 1.2  // etcd db size: second-half peak ≤ 1.2 × first-half peak
	// soakDBMinRun is the shortest judged span for the etcd verdict: each
	// half must hold at least two compaction periods.
	soakDBMinRun = 20 * time.Minute
)

func soakCriteria(o soakOpts) map[string]string {
	return map[string]string{
		"rss_mb":            fmt.Sprintf("growth first→last < %g %%, or levels off: the peak of the second half of the judged samples ≤ %g × the first half's (runs of ≥ %v: the member that holds etcd fills its raft log and index up to etcd's snapshot and compaction points first)", soakMemGrowthPct, soakMemPeakRatio, soakDBMinRun),
		"private_mb":        "as rss_mb",
		"fds":               fmt.Sprintf("growth first→last ≤ %d", soakFDGrowth),
		"threads":           fmt.Sprintf("growth first→last ≤ %d", soakThreadGrowth),
		"goroutines":        fmt.Sprintf("growth first→last ≤ %d", soakGoroutineGrowth),
		"data_files":        fmt.Sprintf("growth first→last ≤ %g %%", soakFilesGrowthPct),
		"etcd_keys":         fmt.Sprintf("growth first→last ≤ %g %%", soakKeysGrowthPct),
		"etcd_db_size_mb":   fmt.Sprintf("peak of the second half of the judged samples ≤ %g × the first half's (needs ≥ %v after the warm-up: auto-compaction every 5 min; inconclusive otherwise)", soakDBPeakRatio, soakDBMinRun),
		"etcd_db_in_use_mb": "as etcd_db_size_mb",
		"unit_processes":    "none left after every unit was destroyed (leaked_unit_processes = 0)",
		"shims":             "none left after every unit was destroyed but each fleetd's current, idle one (leaked_shims = 0)",
		"judged":            fmt.Sprintf("samples from the warm-up (%v) to the end of the churn; idle = before the churn, after = once every unit was destroyed", o.warmup),
		"heap_inuse_mb":     "not judged (moves with the GC cycle)",
	}
}

// soakStat is one figure over the run.
type soakStat struct {
	Idle      float64  `json:"idle"`
	First     float64  `json:"first"`
	Last      float64  `json:"last"`
	Max       float64  `json:"max"`
	Growth    float64  `json:"growth"`
	GrowthPct float64  `json:"growth_pct"`
	After     *float64 `json:"after,omitempty"`
	Verdict   string   `json:"verdict"` // flat, GROWS, inconclusive, not judged
}

type soakSeries struct {
	group, name string
	get         func(s *soakSample) float64
	judge       func(judged []float64, at []time.Duration, st *soakStat) string
}

func growthPctBelow(pct float64) func([]float64, []time.Duration, *soakStat) string {
	return func(_ []float64, _ []time.Duration, st *soakStat) string {
		return flatIf(st.GrowthPct < pct)
	}
}

func growthAtMost(n float64) func([]float64, []time.Duration, *soakStat) string {
	return func(_ []float64, _ []time.Duration, st *soakStat) string {
		return flatIf(st.Growth <= n)
	}
}

func flatIf(ok bool) string {
	if ok {
		return "flat"
	}
	return "GROWS"
}

// memFlat: growth below soakMemGrowthPct, or a level second half.
func memFlat(v []float64, at []time.Duration, st *soakStat) string {
	if st.GrowthPct < soakMemGrowthPct {
		return "flat"
	}
	if len(v) < 4 || at[len(at)-1]-at[0] < soakDBMinRun {
		return "GROWS"
	}
	h := len(v) / 2
	if slices.Max(v[h:]) <= soakMemPeakRatio*slices.Max(v[:h]) {
		return "flat (levels off)"
	}
	return "GROWS"
}

// dbBounded compares the peaks of the two halves of the judged samples.
func dbBounded(v []float64, at []time.Duration, _ *soakStat) string {
	if len(v) < 4 || at[len(at)-1]-at[0] < soakDBMinRun {
		return "inconclusive"
	}
	h := len(v) / 2
	return flatIf(slices.Max(v[h:]) <= soakDBPeakRatio*slices.Max(v[:h]))
}

func soakJudge(samples []soakSample, o soakOpts, after *soakSample) (map[string]map[string]soakStat, map[string]string, []string) {
	var series []soakSeries
	n := 0
	if len(samples) > 0 {
		n = len(samples[0].Procs)
	}
	for i := range n {
		g := fmt.Sprintf("fleetd%d", i)
		proc := func(f func(p soakProc) float64) func(*soakSample) float64 {
			return func(s *soakSample) float64 {
				if i >= len(s.Procs) {
					return -1
				}
				return f(s.Procs[i])
			}
		}
		memMB := func(b int64) float64 {
			if b < 0 {
				return -1
			}
			return round(mb(b), 2)
		}
		series = append(series,
			soakSeries{g, "rss_mb", proc(func(p soakProc) float64 { return memMB(p.RSS) }), memFlat},
			soakSeries{g, "private_mb", proc(func(p soakProc) float64 { return memMB(p.Private) }), memFlat},
			soakSeries{g, "heap_inuse_mb", proc(func(p soakProc) float64 { return memMB(p.HeapInuse) }), nil},
			soakSeries{g, "fds", proc(func(p soakProc) float64 { return float64(p.FDs) }), growthAtMost(soakFDGrowth)},
			soakSeries{g, "threads", proc(func(p soakProc) float64 { return float64(p.Threads) }), growthAtMost(soakThreadGrowth)},
			soakSeries{g, "goroutines", proc(func(p soakProc) float64 { return float64(p.Goroutines) }), growthAtMost(soakGoroutineGrowth)},
			soakSeries{g, "data_files", proc(func(p soakProc) float64 { return float64(p.DataFiles) }), growthPctBelow(soakFilesGrowthPct + 1e-9)},
			soakSeries{g, "shims", proc(func(p soakProc) float64 { return float64(p.Shims) }), nil},
		)
	}
	mbOrNeg := func(b int64) float64 {
		if b < 0 {
			return -1
		}
		return round(mb(b), 3)
	}
	series = append(series,
		soakSeries{"etcd", "db_size_mb", func(s *soakSample) float64 { return mbOrNeg(s.DBSize) }, dbBounded},
		soakSeries{"etcd", "db_in_use_mb", func(s *soakSample) float64 { return mbOrNeg(s.DBInUse) }, dbBounded},
		soakSeries{"etcd", "keys", func(s *soakSample) float64 { return float64(s.Keys) }, growthPctBelow(soakKeysGrowthPct + 1e-9)},
		soakSeries{"etcd", "revision", func(s *soakSample) float64 { return float64(s.Revision) }, nil},
		soakSeries{"processes", "unit_processes", func(s *soakSample) float64 { return float64(s.UnitProcs) }, nil},
		soakSeries{"processes", "shims", func(s *soakSample) float64 { return float64(s.Shims) }, nil},
		soakSeries{"processes", "live_units", func(s *soakSample) float64 { return float64(s.Live) }, nil},
	)

	var judged []*soakSample
	var idle *soakSample
	for i := range samples {
		s := &samples[i]
		switch {
		case s.Phase == "idle":
			idle = s
		case s.Phase == "churn" && s.At >= o.warmup:
			judged = append(judged, s)
		}
	}
	// A run shorter than its warm-up judges its last churn sample alone.
	if len(judged) == 0 {
		for i := len(samples) - 1; i >= 0; i-- {
			if samples[i].Phase == "churn" {
				judged = append(judged, &samples[i])
				break
			}
		}
	}
	metrics := map[string]map[string]soakStat{}
	verdicts := map[string]string{}
	var notFlat []string
	for _, se := range series {
		var v []float64
		var at []time.Duration
		for _, s := range judged {
			if x := se.get(s); x >= 0 {
				v = append(v, x)
				at = append(at, s.At)
			}
		}
		st := soakStat{Idle: -1, Verdict: "not judged"}
		if idle != nil {
			st.Idle = se.get(idle)
		}
		if after != nil {
			a := se.get(after)
			st.After = &a
		}
		if len(v) > 0 {
			st.First, st.Last, st.Max = v[0], v[len(v)-1], slices.Max(v)
			st.Growth = round(st.Last-st.First, 3)
			if st.First > 0 {
				st.GrowthPct = round(100*(st.Last-st.First)/st.First, 1)
			} else if st.Last > 0 {
				st.GrowthPct = math.Inf(1)
			}
			if se.judge != nil {
				st.Verdict = se.judge(v, at, &st)
			}
		} else if se.judge != nil {
			st.Verdict = "no data"
		}
		if math.IsInf(st.GrowthPct, 0) {
			st.GrowthPct = 100 // JSON has no infinity
		}
		if metrics[se.group] == nil {
			metrics[se.group] = map[string]soakStat{}
		}
		metrics[se.group][se.name] = st
		if se.judge != nil {
			key := se.group + "_" + se.name
			verdicts[key] = st.Verdict
			if st.Verdict == "GROWS" || st.Verdict == "no data" {
				notFlat = append(notFlat, key)
			}
		}
	}
	slices.Sort(notFlat)
	return metrics, verdicts, notFlat
}

func soakSummary(e *env, res map[string]any, metrics map[string]map[string]soakStat, verdicts map[string]string) {
	e.printf("== soak: %v fleetd, %v units/s for %vs (loadavg %s)\n", res["machines"], res["rate"], res["churn_s"], loadAvg())
	for _, k := range []string{"steps", "rate_achieved", "units_started", "units_stopped", "units_destroyed", "units_seen_active",
		"units_never_active", "errors", "step_max_lag_ms", "api_call_p50_ms", "api_call_p99_ms", "api_call_max_ms", "samples",
		"leaked_unit_processes", "leaked_shims"} {
		if v, ok := res[k]; ok {
			e.printf("  %-34s %v\n", k, v)
		}
	}
	e.printf("  %-26s %9s %9s %9s %9s %9s %8s %9s  %s\n", "figure", "idle", "first", "last", "max", "growth", "growth%", "after", "verdict")
	groups := make([]string, 0, len(metrics))
	for g := range metrics {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	for _, g := range groups {
		names := make([]string, 0, len(metrics[g]))
		for n := range metrics[g] {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			st := metrics[g][n]
			after := "-"
			if st.After != nil {
				after = strconv.FormatFloat(*st.After, 'g', 6, 64)
			}
			e.printf("  %-26s %9g %9g %9g %9g %9g %8g %9s  %s\n", g+" "+n, st.Idle, st.First, st.Last, st.Max, st.Growth, st.GrowthPct, after, st.Verdict)
		}
	}
	if res["flat"] == true {
		e.printf("  flat: yes (every judged figure within its criterion)\n")
	} else {
		e.printf("  flat: NO: %v\n", res["not_flat"])
	}
}
