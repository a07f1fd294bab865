package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric.
const Namespace = "fleet"

// latencyBuckets cover 1 ms to ~16 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)

// Metrics is fleetd's set of collectors on its own registry.
type Metrics struct {
	reg *prometheus.Registry

	reconciles    prometheus.Counter
	reconcileDur  prometheus.Histogram
	placements    prometheus.Counter
	unschedules   prometheus.Counter
	unplaced      prometheus.Gauge
	engineUnits   prometheus.Gauge
	engineMachine prometheus.Gauge

	unitStarts   prometheus.Counter
	unitStops    prometheus.Counter
	startLatency prometheus.Histogram

	apiRequests *prometheus.CounterVec
	apiDuration *prometheus.HistogramVec

	etcdRequests *prometheus.CounterVec
	etcdDuration *prometheus.HistogramVec

	lb *LB
}

// New returns a Metrics with its own registry, holding the Go runtime and
// process collectors and fleet's own.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	counter := func(sub, name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	gauge := func(sub, name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	histogram := func(sub, name, help string) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help, Buckets: latencyBuckets})
		reg.MustRegister(h)
		return h
	}

	m.reconciles = counter("engine", "reconciles_total", "Reconcile rounds run by this machine's engine while leader.")
	m.reconcileDur = histogram("engine", "reconcile_duration_seconds", "Duration of one reconcile round (snapshot, schedule, write).")
	m.placements = counter("engine", "placements_total", "Schedule entries written (a unit placed on a machine).")
	m.unschedules = counter("engine", "unschedules_total", "Schedule entries deleted (a unit taken off a machine).")
	m.unplaced = gauge("engine", "unplaced_units", "Units the engine could not place in its last round.")
	m.engineUnits = gauge("engine", "units", "Units seen in the engine's last round.")
	m.engineMachine = gauge("engine", "machines", "Machines seen in the engine's last round.")

	m.unitStarts = counter("agent", "unit_starts_total", "Start requests this machine's agent gave the runner.")
	m.unitStops = counter("agent", "unit_stops_total", "Stop requests this machine's agent gave the runner.")
	m.startLatency = histogram("agent", "unit_start_latency_seconds", "Time from the agent's Start of a unit until the runner reports it active.")

	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "api", Name: "requests_total",
		Help: "HTTP requests answered by the API (dashboard and /metrics included), by method, route and status code.",
	}, []string{"method", "route", "code"})
	m.apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "api", Name: "request_duration_seconds",
		Help: "Time to answer an API request (until the handler returns: streams count their whole life).", Buckets: latencyBuckets,
	}, []string{"method", "route"})
	m.etcdRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "etcd", Name: "client_requests_total",
		Help: "Unary etcd requests made by this fleetd, by gRPC method and result code.",
	}, []string{"method", "code"})
	m.etcdDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "etcd", Name: "client_request_duration_seconds",
		Help: "Latency of unary etcd requests, by gRPC method.", Buckets: latencyBuckets,
	}, []string{"method"})
	reg.MustRegister(m.apiRequests, m.apiDuration, m.etcdRequests, m.etcdDuration)
	m.lb = newLB(reg)

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the collectors live (add your own with MustRegister).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' text (or negotiated) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Reconcile describes one engine round (engine.Stats, without importing the
// engine).
type Reconcile struct {
	Units, Machines int
	Put, Deleted    int
	Unplaced        int
	Duration        time.Duration
}

// ObserveReconcile records one engine round.
func (m *Metrics) ObserveReconcile(r Reconcile) {
	m.reconciles.Inc()
	m.reconcileDur.Observe(r.Duration.Seconds())
	m.placements.Add(float64(r.Put))
	m.unschedules.Add(float64(r.Deleted))
	m.unplaced.Set(float64(r.Unplaced))
	m.engineUnits.Set(float64(r.Units))
	m.engineMachine.Set(float64(r.Machines))
}
