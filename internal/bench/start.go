package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/fleetd/fleet/internal/store"
)

func runStart(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "start", "one fleetd (embedded etcd, exec runner); K sequential starts of a trivial unit through the API; start-to-active latency")
	count := fs.Int("count", 200, "sequential starts")
	bin := fs.String("fleetd", "", "fleetd binary (default: build ./cmd/fleetd)")
	rtts := fs.Int("baseline-puts", 500, "sequential etcd puts for the baseline")
	probeEvery := fs.Duration("probe-interval", time.Millisecond, "the probe's polling interval")
	probes := fs.Int("probe", 100, "further starts timed by an independent probe: PUT the unit launched, then GET /fleet/v1/state?unitName= every millisecond until active (0 skips)")
	var prof profiles
	prof.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	dir, path, err := fleetdWorkdir(ctx, e, "start", *bin)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c, err := startCluster(ctx, path, dir, clusterOpts{n: 1})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	cli := c.cli
	api, err := c.client(0)
	if err != nil {
		return nil, err
	}
	aw := watchActive(ctx, cli, store.DefaultPrefix)
	tr := newStartTrace(ctx, cli, store.DefaultPrefix)
	// Warm up: one start, so the first figure is not the first connection.
	if err := api.CreateUnit(ctx, sleepUnit("warmup.service")); err != nil {
		return nil, err
	}
	if _, ok := aw.await(ctx, 30*time.Second, func(a map[string]map[string]time.Time) bool { return len(a["warmup.service"]) > 0 }); !ok {
		return nil, fmt.Errorf("warm-up unit never active:\n%s", tail(c.procs[0].logText(), 3000))
	}

	base, err := putRoundTrips(ctx, cli, *rtts)
	if err != nil {
		return nil, err
	}
	if err := prof.start(); err != nil {
		return nil, err
	}
	defer prof.stop()
	lat := make([]time.Duration, 0, *count)
	names := make([]string, 0, *count)
	starts := make([]time.Time, 0, *count)
	for i := range *count {
		name := fmt.Sprintf("start-%05d.service", i)
		t0 := time.Now()
		names, starts = append(names, name), append(starts, t0)
		if err := api.CreateUnit(ctx, sleepUnit(name)); err != nil {
			return nil, err
		}
		t1, ok := aw.await(ctx, 30*time.Second, func(a map[string]map[string]time.Time) bool { return len(a[name]) > 0 })
		if !ok {
			return nil, fmt.Errorf("%s not active after 30s", name)
		}
		lat = append(lat, t1.Sub(t0))
	}
	slices.Sort(lat)
	// The independent probe: what a client of the API sees, through the
	// state-publish path and GET /fleet/v1/state.
	var plat []time.Duration
	for i := range *probes {
		name := fmt.Sprintf("probe-%05d.service", i)
		t0 := time.Now()
		if err := api.CreateUnit(ctx, sleepUnit(name)); err != nil {
			return nil, err
		}
		for {
			sts, err := api.UnitStatesFiltered(ctx, name, "")
			if err != nil {
				return nil, err
			}
			if len(sts) > 0 && sts[0].SystemdActiveState == "active" {
				break
			}
			if time.Since(t0) > 30*time.Second {
				return nil, fmt.Errorf("probe: %s not active after 30s", name)
			}
			time.Sleep(*probeEvery)
		}
		plat = append(plat, time.Since(t0))
	}
	slices.Sort(plat)
	sleepCtx(ctx, 100*time.Millisecond) // the trace's watch may trail the active watch
	trace := tr.breakdown(names, starts)
	e.printf("trace (bench's receive time of each step's etcd write):\n")
	for _, r := range trace {
		e.printf("  %-55s p50 %7.2f ms  p99 %7.2f ms  (n=%d)\n", r.Step, r.P50ms, r.P99ms, r.N)
	}
	res := map[string]any{
		"count":                       *count,
		"start_to_active_p50_ms":      round(ms(pct(lat, 50)), 2),
		"start_to_active_p90_ms":      round(ms(pct(lat, 90)), 2),
		"start_to_active_p99_ms":      round(ms(pct(lat, 99)), 2),
		"start_to_active_max_ms":      round(ms(lat[len(lat)-1]), 2),
		"baseline_etcd_put_p50_ms":    round(ms(pct(base, 50)), 3),
		"baseline_etcd_put_p99_ms":    round(ms(pct(base, 99)), 3),
		"p50_in_baseline_puts":        round(float64(pct(lat, 50))/float64(pct(base, 50)), 1),
		"target_p50_ms":               5,
		"target_p99_ms":               20,
		"fleetd_rss_mb_after":         round(mb(readProc(c.procs[0].pid()).RSS), 1),
		"units_running_after":         *count + 1,
		"fleetd_cpu_s_whole_scenario": round(readProc(c.procs[0].pid()).CPU.Seconds(), 2),
		"trace":                       trace,
		"probe_count":                 len(plat),
	}
	if len(plat) > 0 {
		res["probe_start_to_active_p50_ms"] = round(ms(pct(plat, 50)), 2)
		res["probe_start_to_active_p99_ms"] = round(ms(pct(plat, 99)), 2)
	}
	res["units_running_after"] = *count + 1 + len(plat)
	e.summary(fmt.Sprintf("start: %d sequential starts through the API", *count), res)
	return res, nil
}
