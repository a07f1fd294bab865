package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSoakShort runs the soak scenario for 20 s at 5 units/s on two
// fleetd, through Main (flags, JSON), and checks that units went through
// and that every sampled figure was read: a sampler that reads nothing
// would leave zeros or -1 here. FLEET_BENCH_FLEETD names a prebuilt fleetd
// (fleet-shim next to it) instead of building ./cmd/fleetd.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real fleetd processes for about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"soak", "--duration", "20s", "--rate", "5", "--machines", "2", "--sample", "2s",
		"--working-set", "10", "--warmup", "4s"}
	if bin := os.Getenv("FLEET_BENCH_FLEETD"); bin != "" {
		args = append(args, "--fleetd", bin)
	}
	var stdout, stderr bytes.Buffer
	code := Main(ctx, args, &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res struct {
		UnitsStarted, UnitsStopped, UnitsDestroyed, UnitsSeenActive, Errors, Samples int
		LeakedUnitProcesses, LeakedShims                                             int
		Metrics                                                                      map[string]map[string]soakStat
		Verdicts                                                                     map[string]string
	}
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &raw); err != nil {
		t.Fatalf("exit %d, last line not JSON: %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), tail(stderr.String(), 4000))
	}
	for k, dst := range map[string]any{
		"units_started": &res.UnitsStarted, "units_stopped": &res.UnitsStopped, "units_destroyed": &res.UnitsDestroyed,
		"units_seen_active": &res.UnitsSeenActive, "errors": &res.Errors, "samples": &res.Samples,
		"leaked_unit_processes": &res.LeakedUnitProcesses, "leaked_shims": &res.LeakedShims,
		"metrics": &res.Metrics, "verdicts": &res.Verdicts,
	} {
		if err := json.Unmarshal(raw[k], dst); err != nil {
			t.Fatalf("%s: %v in %s", k, err, lines[len(lines)-1])
		}
	}
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), tail(stderr.String(), 4000))
	}
	// 20 s at 5/s: 100 steps; allow for a loaded machine.
	if res.UnitsStarted < 60 || res.UnitsDestroyed != res.UnitsStarted || res.UnitsStopped != res.UnitsStarted {
		t.Errorf("started %d, stopped %d, destroyed %d", res.UnitsStarted, res.UnitsStopped, res.UnitsDestroyed)
	}
	if res.UnitsSeenActive < res.UnitsStarted/2 {
		t.Errorf("only %d of %d units seen active", res.UnitsSeenActive, res.UnitsStarted)
	}
	// idle + ~10 during the churn + its end + after.
	if res.Samples < 8 {
		t.Errorf("%d samples", res.Samples)
	}
	if res.LeakedUnitProcesses != 0 || res.LeakedShims != 0 {
		t.Errorf("leaked %d unit processes, %d shims", res.LeakedUnitProcesses, res.LeakedShims)
	}
	positive := map[string][]string{
		"fleetd0":   {"rss_mb", "private_mb", "heap_inuse_mb", "fds", "threads", "goroutines", "data_files", "shims"},
		"fleetd1":   {"rss_mb", "private_mb", "heap_inuse_mb", "fds", "threads", "goroutines", "data_files", "shims"},
		"etcd":      {"db_size_mb", "db_in_use_mb", "keys", "revision"},
		"processes": {"unit_processes", "shims", "live_units"},
	}
	for g, names := range positive {
		for _, n := range names {
			st, ok := res.Metrics[g][n]
			if !ok {
				t.Errorf("no %s %s", g, n)
				continue
			}
			if st.First <= 0 || st.Last <= 0 || st.Max <= 0 || st.Idle < 0 || st.After == nil || *st.After < 0 {
				t.Errorf("%s %s not sampled: %+v", g, n, st)
			}
		}
	}
	// Units ran during the churn and none was left after it; each fleetd
	// keeps at most its current, idle shim process.
	if p := res.Metrics["processes"]; p["unit_processes"].Max < 5 || *p["unit_processes"].After != 0 || *p["shims"].After > 2 {
		t.Errorf("unit processes %+v, shims %+v", p["unit_processes"], p["shims"])
	}
	for _, k := range []string{"fleetd0_rss_mb", "fleetd1_fds", "fleetd0_goroutines", "etcd_db_size_mb", "etcd_keys"} {
		if v := res.Verdicts[k]; v == "" || v == "no data" {
			t.Errorf("verdict %s = %q", k, v)
		}
	}
	if !strings.Contains(stderr.String(), "soak churn") {
		t.Errorf("no progress lines on stderr:\n%s", tail(stderr.String(), 2000))
	}
}

// TestSoakMemoryVerdict: memory that grows less than the threshold, or
// that levels off over a long enough run, is flat; memory still climbing in
// the second half is not.
func TestSoakMemoryVerdict(t *testing.T) {
	minutes := func(n int) []time.Duration {
		at := make([]time.Duration, n)
		for i := range at {
			at[i] = time.Duration(i) * time.Minute
		}
		return at
	}
	stat := func(v []float64) *soakStat {
		return &soakStat{GrowthPct: 100 * (v[len(v)-1] - v[0]) / v[0]}
	}
	for _, tc := range []struct {
		name string
		v    []float64
		at   []time.Duration
		want string
	}{
		{"small growth", []float64{30, 31, 32, 33}, minutes(4), "flat"},
		{"levels off", []float64{29, 31, 33, 35, 35, 34, 35.5, 35, 34.8, 35.6, 35.2, 35.4, 35.1, 35.6, 35.3, 35.5, 35.0, 35.2, 35.4, 35.6, 35.5, 35.3}, minutes(22), "flat (levels off)"},
		{"climbs", []float64{29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50}, minutes(22), "GROWS"},
		{"short run, big growth", []float64{29, 35, 35, 35}, minutes(4), "GROWS"},
	} {
		if got := memFlat(tc.v, tc.at, stat(tc.v)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
