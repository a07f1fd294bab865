package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fleetd/fleet/internal/store"
)

func runFootprint(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "footprint", "idle fleetd (embedded etcd) RSS and CPU; then the same fleetd running N units; baseline: a bare embedded etcd process")
	units := fs.Int("units", 1000, "units for the loaded measurement (0 skips it)")
	settle := fs.Duration("settle", 10*time.Second, "wait before measuring")
	window := fs.Duration("window", 30*time.Second, "CPU measurement window")
	bin := fs.String("fleetd", "", "fleetd binary (default: build ./cmd/fleetd)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	dir, path, err := fleetdWorkdir(ctx, e, "footprint", *bin)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := map[string]any{"settle_s": settle.Seconds(), "window_s": window.Seconds()}

	// Baseline: the same embedded etcd, alone, in a process of its own.
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "_etcd", "--data-dir", filepath.Join(dir, "etcd-alone"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = e.errw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if !bufio.NewScanner(out).Scan() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, errors.New("bare etcd did not start")
	}
	e.printf("baseline: bare embedded etcd, settling %v, measuring %v\n", *settle, *window)
	rss, cpu, hwm := measureIdle(ctx, cmd.Process.Pid, *settle, *window)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	res["baseline_bare_etcd_rss_mb"] = round(mb(rss), 1)
	res["baseline_bare_etcd_peak_rss_mb"] = round(mb(hwm), 1)
	res["baseline_bare_etcd_cpu_pct"] = round(cpu, 2)

	c, err := startCluster(ctx, path, filepath.Join(dir, "cluster"), clusterOpts{n: 1})
	if err != nil {
		return res, err
	}
	defer c.stop()
	pid := c.procs[0].pid()
	e.printf("idle fleetd: settling %v, measuring %v\n", *settle, *window)
	rss, cpu, hwm = measureIdle(ctx, pid, *settle, *window)
	res["idle_fleetd_rss_mb"] = round(mb(rss), 1)
	res["idle_fleetd_peak_rss_mb"] = round(mb(hwm), 1)
	res["idle_fleetd_cpu_pct"] = round(cpu, 2)
	res["target_idle_rss_mb"] = 80
	res["target_idle_cpu_pct"] = 1

	if *units > 0 {
		aw := watchActive(ctx, c.cli, store.DefaultPrefix)
		api, err := c.client(0)
		if err != nil {
			return res, err
		}
		t0 := time.Now()
		var next atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= *units {
						return
					}
					if err := api.CreateUnit(ctx, sleepUnit(fmt.Sprintf("fp-%05d.service", i))); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err, ok := firstErr.Load().(error); ok && err != nil {
			return res, err
		}
		if _, ok := aw.await(ctx, 10*time.Minute, func(a map[string]map[string]time.Time) bool {
			n := 0
			for _, ms := range a {
				if len(ms) > 0 {
					n++
				}
			}
			return n >= *units
		}); !ok {
			return res, fmt.Errorf("%d units not all active", *units)
		}
		res["units"] = *units
		res["units_all_active_s"] = round(time.Since(t0).Seconds(), 2)
		e.printf("%d units active after %.1fs; settling %v, measuring %v\n", *units, time.Since(t0).Seconds(), *settle, *window)
		rss, cpu, hwm = measureIdle(ctx, pid, *settle, *window)
		res["loaded_fleetd_rss_mb"] = round(mb(rss), 1)
		res["loaded_fleetd_peak_rss_mb"] = round(mb(hwm), 1)
		res["loaded_fleetd_cpu_pct"] = round(cpu, 2)
		// Supervising the units: fleetd plus every shim process, as RSS
		// and as private memory (pages no other process shares; a
		// shim's binary pages are shared by all shims).
		frss, fpriv, _ := smapsMem(pid)
		shims := processesOf(filepath.Join(filepath.Dir(path), "fleet-shim"))
		var srss, spriv int64
		for _, p := range shims {
			r, pv, ok := smapsMem(p)
			if ok {
				srss, spriv = srss+r, spriv+pv
			}
		}
		res["shim_processes"] = len(shims)
		res["loaded_fleetd_private_mb"] = round(mb(fpriv), 1)
		res["shims_rss_mb"] = round(mb(srss), 1)
		res["shims_private_mb"] = round(mb(spriv), 1)
		res["supervision_rss_mb"] = round(mb(frss+srss), 1)
		res["supervision_private_mb"] = round(mb(fpriv+spriv), 1)
		res["target_units_all_active_s"] = 3
		res["target_supervision_mb"] = 300
	}
	e.summary("footprint", res)
	return res, nil
}

// measureIdle waits settle, then measures a process's CPU over window;
// it returns RSS at the end (bytes), CPU in percent of one core, peak RSS.
func measureIdle(ctx context.Context, pid int, settle, window time.Duration) (int64, float64, int64) {
	sleepCtx(ctx, settle)
	a := readProc(pid)
	sleepCtx(ctx, window)
	b := readProc(pid)
	return b.RSS, cpuPercent(a, b), b.HWM
}

// sleepCtx sleeps d and reports whether ctx is still live (false: it
// ended the sleep early).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
