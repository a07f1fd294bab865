package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetd/fleet/internal/runner"
)

// activeStates are always reported (at 0 when no unit is in them), so that
// graphs and alerts have a series to look at.
var activeStates = []string{"active", "activating", "deactivating", "inactive", "failed"}

// InstrumentRunner wraps r for the agent: it counts starts and stops and
// measures the time from Start until States() first reports the unit
// active (the agent reads States() after every change the runner
// announces).
func (m *Metrics) InstrumentRunner(r runner.Runner) runner.Runner {
	return &instrumentedRunner{Runner: r, m: m, pending: make(map[string]time.Time)}
}

type instrumentedRunner struct {
	runner.Runner
	m *Metrics

	mu      sync.Mutex
	pending map[string]time.Time // Start called, not active yet
}

func (r *instrumentedRunner) Start(ctx context.Context, name string) error {
	t0 := time.Now()
	r.mu.Lock()
	if _, ok := r.pending[name]; !ok {
		r.pending[name] = t0
	}
	r.mu.Unlock()
	r.m.unitStarts.Inc()
	err := r.Runner.Start(ctx, name)
	if err != nil {
		r.forget(name)
	}
	return err
}

func (r *instrumentedRunner) Stop(ctx context.Context, name string) error {
	r.forget(name)
	r.m.unitStops.Inc()
	return r.Runner.Stop(ctx, name)
}

func (r *instrumentedRunner) Unload(ctx context.Context, name string) error {
	r.forget(name)
	return r.Runner.Unload(ctx, name)
}

func (r *instrumentedRunner) forget(name string) {
	r.mu.Lock()
	delete(r.pending, name)
	r.mu.Unlock()
}

func (r *instrumentedRunner) States() map[string]runner.State {
	states := r.Runner.States()
	now := time.Now()
	r.mu.Lock()
	for name, t0 := range r.pending {
		st, ok := states[name]
		if !ok {
			continue
		}
		switch st.ActiveState {
		case "active":
			r.m.startLatency.Observe(now.Sub(t0).Seconds())
			delete(r.pending, name)
		case "failed":
			delete(r.pending, name)
		}
	}
	r.mu.Unlock()
	return states
}

// CollectRunner reports, at scrape time, the units loaded in r by active
// state (fleet_agent_units{state}) and each unit's automatic restarts
// (fleet_agent_unit_restarts_total{unit}, reset when the unit is reloaded).
func (m *Metrics) CollectRunner(r runner.Runner) {
	m.reg.MustRegister(&runnerCollector{r: r})
}

var (
	unitsDesc = prometheus.NewDesc(Namespace+"_agent_units",
		"Units loaded on this machine, by active state.", []string{"state"}, nil)
	restartsDesc = prometheus.NewDesc(Namespace+"_agent_unit_restarts_total",
		"Automatic restarts (Restart=) of a unit loaded on this machine since it was loaded.", []string{"unit"}, nil)
)

type runnerCollector struct{ r runner.Runner }

func (c *runnerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- unitsDesc
	ch <- restartsDesc
}

func (c *runnerCollector) Collect(ch chan<- prometheus.Metric) {
	states := c.r.States()
	counts := make(map[string]int, len(activeStates))
	for _, s := range activeStates {
		counts[s] = 0
	}
	for name, st := range states {
		counts[st.ActiveState]++
		if s, err := c.r.Status(name); err == nil {
			ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(s.Restarts), name)
		}
	}
	for state, n := range counts {
		if state == "" {
			state = "unknown"
		}
		ch <- prometheus.MustNewConstMetric(unitsDesc, prometheus.GaugeValue, float64(n), state)
	}
}
