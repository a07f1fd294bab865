package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store"
)

// RolloutSource lists the stored rollout records (*store.Store does).
type RolloutSource interface {
	Rollouts(ctx context.Context) ([]store.RolloutRecord, error)
}

// CollectRollouts reports, at scrape time, the rollout records src lists
// (rollouts/<unit> in etcd): the rollouts that are not over by phase
// (fleet_rollouts{phase}), their targets by status
// (fleet_rollout_targets{unit,status}), and how many rollouts reached a
// terminal phase since this call (fleet_rollouts_finished_total{result}).
// The figures are the cluster's, the same on every fleetd.
//
// The counter is derived from the records: a terminal record whose Updated
// is after this call is counted once (per unit and creation time) at the
// first scrape that sees it. A rollout that starts and ends between two
// scrapes is counted; only a second rollout of the same unit that also
// ends before the next scrape replaces the first record unseen.
func (m *Metrics) CollectRollouts(src RolloutSource) {
	m.reg.MustRegister(newRolloutCollector(src, time.Now()))
}

// rolloutPhases are the non-terminal phases, always reported (at 0 when
// no rollout is in them).
var rolloutPhases = []rollout.Phase{rollout.PhaseRunning, rollout.PhasePaused, rollout.PhaseReverting}

// rolloutResults are the terminal phases, always reported.
var rolloutResults = []rollout.Phase{rollout.PhaseDone, rollout.PhaseFailed, rollout.PhaseReverted, rollout.PhaseAborted}

// targetStatuses are reported for every rollout that is not over (at 0 for
// the statuses no target is in), so a ratio always has its series.
var targetStatuses = []rollout.TargetStatus{
	rollout.TargetPending, rollout.TargetUpdating, rollout.TargetUpdated,
	rollout.TargetFailed, rollout.TargetReverting, rollout.TargetReverted,
}

var (
	rolloutsDesc = prometheus.NewDesc(Namespace+"_rollouts",
		"Rollouts that are not over, by phase (running, paused, reverting); the cluster's, read from etcd at scrape time.", []string{"phase"}, nil)
	rolloutTargetsDesc = prometheus.NewDesc(Namespace+"_rollout_targets",
		"Targets of a rollout that is not over, by rolled unit and target status.", []string{"unit", "status"}, nil)
	rolloutsFinishedDesc = prometheus.NewDesc(Namespace+"_rollouts_finished_total",
		"Rollouts this fleetd has seen reach a terminal phase since it started, by result (done, failed, reverted, aborted).", []string{"result"}, nil)
)

type rolloutCollector struct {
	src   RolloutSource
	since time.Time

	mu       sync.Mutex
	counted  map[string]time.Time // unit -> Created of the record last counted as finished
	finished map[rollout.Phase]int
}

func newRolloutCollector(src RolloutSource, since time.Time) *rolloutCollector {
	return &rolloutCollector{src: src, since: since, counted: map[string]time.Time{}, finished: map[rollout.Phase]int{}}
}

func (c *rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rolloutsDesc
	ch <- rolloutTargetsDesc
	ch <- rolloutsFinishedDesc
}

func (c *rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	recs, err := c.src.Rollouts(ctx)
	if err == nil {
		c.reportActive(ch, recs)
	}
	// Without the records (etcd unreachable) the gauges are left out rather
	// than reported as 0; the counter keeps its value.
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.count(recs)
	}
	for _, res := range rolloutResults {
		ch <- prometheus.MustNewConstMetric(rolloutsFinishedDesc, prometheus.CounterValue, float64(c.finished[res]), string(res))
	}
}

// reportActive sends the gauges of the rollouts that are not over.
func (c *rolloutCollector) reportActive(ch chan<- prometheus.Metric, recs []store.RolloutRecord) {
	phases := make(map[rollout.Phase]int, len(rolloutPhases))
	for _, rec := range recs {
		r := rec.Rollout
		if r.Phase.Terminal() {
			continue
		}
		phases[r.Phase]++
		statuses := make(map[rollout.TargetStatus]int, len(targetStatuses))
		for _, t := range r.Targets {
			statuses[t.Status]++
		}
		for _, s := range targetStatuses {
			ch <- prometheus.MustNewConstMetric(rolloutTargetsDesc, prometheus.GaugeValue, float64(statuses[s]), r.Unit, string(s))
		}
	}
	for _, p := range rolloutPhases {
		ch <- prometheus.MustNewConstMetric(rolloutsDesc, prometheus.GaugeValue, float64(phases[p]), string(p))
	}
}

// count adds the records that became terminal since c.since and were not
// counted yet; c.mu is held.
func (c *rolloutCollector) count(recs []store.RolloutRecord) {
	present := make(map[string]bool, len(recs))
	for _, rec := range recs {
		r := rec.Rollout
		present[r.Unit] = true
		if !r.Phase.Terminal() || r.Updated.Before(c.since) {
			continue
		}
		if created, ok := c.counted[r.Unit]; ok && created.Equal(r.Created) {
			continue
		}
		c.counted[r.Unit] = r.Created
		c.finished[r.Phase]++
	}
	for unit := range c.counted {
		if !present[unit] {
			delete(c.counted, unit)
		}
	}
}
