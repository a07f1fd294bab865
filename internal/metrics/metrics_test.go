package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// scrape returns the /metrics text.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d", rec.Code)
	}
	return rec.Body.String()
}

// value returns the value of the series line starting with series.
func value(t *testing.T, text, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	mm := re.FindStringSubmatch(text)
	if mm == nil {
		t.Fatalf("no series %s in:\n%s", series, text)
	}
	v, _ := strconv.ParseFloat(mm[1], 64)
	return v
}

func TestOwnRegistryAndPrefix(t *testing.T) {
	a, b := New(), New() // two in one process: no global registration
	if a.Registry() == prometheus.DefaultRegisterer {
		t.Fatal("uses the default registry")
	}
	a.ObserveReconcile(Reconcile{Units: 3, Machines: 2, Put: 2, Deleted: 1, Unplaced: 1, Duration: 5 * time.Millisecond})
	text := scrape(t, a)
	for series, want := range map[string]float64{
		"fleet_engine_reconciles_total": 1, "fleet_engine_placements_total": 2, "fleet_engine_unschedules_total": 1,
		"fleet_engine_unplaced_units": 1, "fleet_engine_units": 3, "fleet_engine_machines": 2,
		"fleet_engine_reconcile_duration_seconds_count": 1,
	} {
		if got := value(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if value(t, scrape(t, b), "fleet_engine_reconciles_total") != 0 {
		t.Error("registries are shared")
	}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "fleet_") && !strings.HasPrefix(line, "go_") && !strings.HasPrefix(line, "process_") {
			t.Errorf("unprefixed series %q", line)
		}
	}
}

func TestMiddlewareLabelsByRoute(t *testing.T) {
	m := New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fleet/v1/units/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") == "missing" {
			http.Error(w, "no", 404)
			return
		}
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("a"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the middleware: %v", err)
		}
	})
	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()
	for _, p := range []string{"/fleet/v1/units/a", "/fleet/v1/units/b", "/fleet/v1/units/missing", "/stream", "/nowhere"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	text := scrape(t, m)
	for series, want := range map[string]float64{
		`fleet_api_requests_total{code="200",method="GET",route="/fleet/v1/units/{name}"}`:      2,
		`fleet_api_requests_total{code="404",method="GET",route="/fleet/v1/units/{name}"}`:      1,
		`fleet_api_requests_total{code="200",method="GET",route="/stream"}`:                     1,
		`fleet_api_requests_total{code="404",method="GET",route="unmatched"}`:                   1,
		`fleet_api_request_duration_seconds_count{method="GET",route="/fleet/v1/units/{name}"}`: 3,
	} {
		if got := value(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// fakeRunner reports whatever states it is told.
type fakeRunner struct {
	mu       sync.Mutex
	states   map[string]runner.State
	restarts map[string]int
}

func (f *fakeRunner) Load(context.Context, runner.Unit) error { return nil }
func (f *fakeRunner) Start(context.Context, string) error     { return nil }
func (f *fakeRunner) Stop(context.Context, string) error      { return nil }
func (f *fakeRunner) Unload(context.Context, string) error    { return nil }
func (f *fakeRunner) Changed() <-chan struct{}                { return nil }
func (f *fakeRunner) set(name, active string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[name] = runner.State{ActiveState: active}
}
func (f *fakeRunner) States() map[string]runner.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]runner.State{}
	for k, v := range f.states {
		out[k] = v
	}
	return out
}
func (f *fakeRunner) Status(name string) (runner.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return runner.Status{Name: name, Restarts: f.restarts[name]}, nil
}

func TestRunnerInstrumentation(t *testing.T) {
	m := New()
	f := &fakeRunner{states: map[string]runner.State{}, restarts: map[string]int{"a.service": 2}}
	m.CollectRunner(f)
	r := m.InstrumentRunner(f)
	ctx := context.Background()
	f.set("a.service", "inactive")
	f.set("b.service", "failed")
	if err := r.Start(ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	r.States() // still inactive: nothing observed
	text := scrape(t, m)
	if value(t, text, "fleet_agent_unit_start_latency_seconds_count") != 0 || value(t, text, "fleet_agent_unit_starts_total") != 1 {
		t.Fatalf("before active:\n%s", text)
	}
	if value(t, text, `fleet_agent_units{state="inactive"}`) != 1 || value(t, text, `fleet_agent_units{state="failed"}`) != 1 ||
		value(t, text, `fleet_agent_units{state="active"}`) != 0 || value(t, text, `fleet_agent_unit_restarts_total{unit="a.service"}`) != 2 {
		t.Errorf("units by state:\n%s", text)
	}
	time.Sleep(10 * time.Millisecond)
	f.set("a.service", "active")
	r.States()
	r.States() // observed once only
	text = scrape(t, m)
	if value(t, text, "fleet_agent_unit_start_latency_seconds_count") != 1 || value(t, text, "fleet_agent_unit_start_latency_seconds_sum") < 0.01 {
		t.Errorf("latency:\n%s", text)
	}
	if value(t, text, `fleet_agent_units{state="active"}`) != 1 {
		t.Error("active unit not counted")
	}
	if err := r.Stop(ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	if value(t, scrape(t, m), "fleet_agent_unit_stops_total") != 1 {
		t.Error("stop not counted")
	}
}

func TestLBIsNilSafeAndCounts(t *testing.T) {
	var nilLB *LB
	nilLB.Request("web", "10.0.0.1:80", 200, time.Millisecond)
	nilLB.BackendError("web", "x")
	nilLB.InFlight("web", "x", 1)
	nilLB.Backends("web", 2)
	nilLB.ForgetBackend("web", "x")

	m := New()
	lb := m.LB()
	lb.Backends("web", 2)
	lb.Request("web", "10.0.0.1:80", 200, time.Millisecond)
	lb.Request("web", "10.0.0.1:80", 0, time.Millisecond)
	lb.BackendError("web", "10.0.0.2:80")
	lb.InFlight("web", "10.0.0.1:80", 1)
	text := scrape(t, m)
	for series, want := range map[string]float64{
		`fleet_lb_backends{service="web"}`:                                        2,
		`fleet_lb_requests_total{backend="10.0.0.1:80",code="200",service="web"}`: 1,
		`fleet_lb_requests_total{backend="10.0.0.1:80",code="tcp",service="web"}`: 1,
		`fleet_lb_backend_errors_total{backend="10.0.0.2:80",service="web"}`:      1,
		`fleet_lb_in_flight{backend="10.0.0.1:80",service="web"}`:                 1,
	} {
		if got := value(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	lb.ForgetBackend("web", "10.0.0.1:80")
	if strings.Contains(scrape(t, m), `backend="10.0.0.1:80"`) {
		t.Error("forgotten backend still reported")
	}
}

func TestEtcdAgainstRealServer(t *testing.T) {
	_, eps := etcdtest.NewServer(t)
	m := New()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), DialOptions: m.EtcdDialOptions()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	m.CollectEtcd(etcdkv.New(cli), "me", func(context.Context) (string, error) { return "me", nil })
	text := scrape(t, m)
	if value(t, text, "fleet_etcd_up") != 1 || value(t, text, "fleet_etcd_has_leader") != 1 || value(t, text, "fleet_engine_is_leader") != 1 {
		t.Errorf("etcd status:\n%s", text)
	}
	if value(t, text, `fleet_etcd_client_requests_total{code="OK",method="KV/Put"}`) != 1 ||
		value(t, text, `fleet_etcd_client_request_duration_seconds_count{method="KV/Put"}`) != 1 {
		t.Errorf("client requests:\n%s", text)
	}
	if value(t, text, "fleet_etcd_db_size_bytes") <= 0 {
		t.Error("no db size")
	}
}

func TestCollectLB(t *testing.T) {
	m := New()
	m.CollectLB("web", func() []LBBackend {
		return []LBBackend{{Addr: "10.0.0.1:80", InFlight: 2, Total: 10}, {Addr: "10.0.0.2:80", Total: 3, Draining: true}}
	})
	text := scrape(t, m)
	for series, want := range map[string]float64{
		`fleet_lb_pool_backends{service="web"}`:                             1,
		`fleet_lb_pool_in_flight{backend="10.0.0.1:80",service="web"}`:      2,
		`fleet_lb_pool_requests_total{backend="10.0.0.1:80",service="web"}`: 10,
		`fleet_lb_pool_draining{backend="10.0.0.2:80",service="web"}`:       1,
	} {
		if got := value(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// putRollout stores r as unit's rollout record (replacing a finished one).
func putRollout(t *testing.T, st *store.Store, r rollout.Rollout) {
	t.Helper()
	if err := st.StartRollout(t.Context(), r, fleet.Unit{}, 0, store.Revision{}); err != nil {
		t.Fatal(err)
	}
}

func testRollout(unit string, phase rollout.Phase, created, updated time.Time, statuses ...rollout.TargetStatus) rollout.Rollout {
	r := rollout.Rollout{
		Spec:  rollout.Spec{Unit: unit, FromHash: "aaaaaaaaaa", FromRevision: 1, ToHash: "bbbbbbbbbb", ToRevision: 2, MaxParallel: 1},
		Phase: phase, Created: created, Updated: updated,
	}
	for i, s := range statuses {
		r.Targets = append(r.Targets, rollout.Target{Name: unit + strconv.Itoa(i), Status: s})
	}
	return r
}

func TestCollectRolloutsFromStore(t *testing.T) {
	st := store.New(etcdkv.New(etcdtest.New(t)), "/metrics-test/")
	m := New()
	m.CollectRollouts(st)
	now := time.Now()
	old := now.Add(-time.Hour)
	putRollout(t, st, testRollout("web@.service", rollout.PhaseRunning, now, now,
		rollout.TargetUpdated, rollout.TargetUpdating, rollout.TargetPending, rollout.TargetPending))
	putRollout(t, st, testRollout("db.service", rollout.PhasePaused, now, now, rollout.TargetPending))
	putRollout(t, st, testRollout("old.service", rollout.PhaseDone, old, old, rollout.TargetUpdated))
	putRollout(t, st, testRollout("api.service", rollout.PhaseFailed, now, now.Add(time.Millisecond), rollout.TargetFailed))

	text := scrape(t, m)
	for series, want := range map[string]float64{
		`fleet_rollouts{phase="running"}`:                              1,
		`fleet_rollouts{phase="paused"}`:                               1,
		`fleet_rollouts{phase="reverting"}`:                            0,
		`fleet_rollout_targets{status="updated",unit="web@.service"}`:  1,
		`fleet_rollout_targets{status="updating",unit="web@.service"}`: 1,
		`fleet_rollout_targets{status="pending",unit="web@.service"}`:  2,
		`fleet_rollout_targets{status="failed",unit="web@.service"}`:   0,
		`fleet_rollout_targets{status="pending",unit="db.service"}`:    1,
		`fleet_rollouts_finished_total{result="failed"}`:               1, // finished after CollectRollouts
		`fleet_rollouts_finished_total{result="done"}`:                 0, // old.service finished before
		`fleet_rollouts_finished_total{result="reverted"}`:             0,
		`fleet_rollouts_finished_total{result="aborted"}`:              0,
	} {
		if got := value(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, gone := range []string{`unit="old.service"`, `unit="api.service"`} {
		if strings.Contains(text, gone) {
			t.Errorf("targets of a finished rollout reported (%s):\n%s", gone, text)
		}
	}
	// A second scrape does not count the failed rollout again.
	if got := value(t, scrape(t, m), `fleet_rollouts_finished_total{result="failed"}`); got != 1 {
		t.Errorf("failed counted %v times", got)
	}

	// web@.service finishes; api.service gets a new rollout that is aborted
	// before the next scrape: both count.
	rec, err := st.Rollout(t.Context(), "web@.service")
	if err != nil {
		t.Fatal(err)
	}
	rec.Rollout.Phase, rec.Rollout.Updated = rollout.PhaseDone, time.Now()
	for i := range rec.Rollout.Targets {
		rec.Rollout.Targets[i].Status = rollout.TargetUpdated
	}
	if _, err := st.UpdateRollout(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	later := time.Now()
	putRollout(t, st, testRollout("api.service", rollout.PhaseAborted, later, later, rollout.TargetPending))
	text = scrape(t, m)
	for series, want := range map[string]float64{
		`fleet_rollouts{phase="running"}`:                 0,
		`fleet_rollouts{phase="paused"}`:                  1,
		`fleet_rollouts_finished_total{result="done"}`:    1,
		`fleet_rollouts_finished_total{result="failed"}`:  1,
		`fleet_rollouts_finished_total{result="aborted"}`: 1,
	} {
		if got := value(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(text, `unit="web@.service"`) {
		t.Errorf("targets of a done rollout still reported:\n%s", text)
	}
}

type failingRollouts struct{}

func (failingRollouts) Rollouts(context.Context) ([]store.RolloutRecord, error) {
	return nil, errors.New("etcd unreachable")
}

func TestCollectRolloutsWithoutStore(t *testing.T) {
	m := New()
	m.CollectRollouts(failingRollouts{})
	text := scrape(t, m)
	if strings.Contains(text, "fleet_rollouts{") || strings.Contains(text, "fleet_rollout_targets{") {
		t.Errorf("gauges reported without the records:\n%s", text)
	}
	if got := value(t, text, `fleet_rollouts_finished_total{result="done"}`); got != 0 {
		t.Errorf("finished = %v", got)
	}
}
