package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LB is what a load balancer reports into: per service and backend
// (ip:port). Every method is safe on a nil *LB (then it does nothing), so a
// balancer can hold one unconditionally.
type LB struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	inflight *prometheus.GaugeVec
	backends *prometheus.GaugeVec
}

func newLB(reg *prometheus.Registry) *LB {
	l := &LB{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "lb", Name: "requests_total",
			Help: "Requests (HTTP) or connections (TCP, code \"tcp\") proxied, by service, backend and status code.",
		}, []string{"service", "backend", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "lb", Name: "request_duration_seconds",
			Help: "Time to proxy one request or connection, by service.", Buckets: latencyBuckets,
		}, []string{"service"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "lb", Name: "backend_errors_total",
			Help: "Failed connects or proxy errors, by service and backend.",
		}, []string{"service", "backend"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "lb", Name: "in_flight",
			Help: "Requests or connections in progress, by service and backend.",
		}, []string{"service", "backend"}),
		backends: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "lb", Name: "backends",
			Help: "Backends currently in rotation, by service.",
		}, []string{"service"}),
	}
	reg.MustRegister(l.requests, l.duration, l.errors, l.inflight, l.backends)
	return l
}

// LB returns the balancer's reporting handle.
func (m *Metrics) LB() *LB { return m.lb }

// Request records one proxied request (code: HTTP status, or 0 for a TCP
// connection) that took d.
func (l *LB) Request(service, backend string, code int, d time.Duration) {
	if l == nil {
		return
	}
	c := "tcp"
	if code > 0 {
		c = strconv.Itoa(code)
	}
	l.requests.WithLabelValues(service, backend, c).Inc()
	l.duration.WithLabelValues(service).Observe(d.Seconds())
}

// BackendError records a failed connect or proxy error on backend.
func (l *LB) BackendError(service, backend string) {
	if l == nil {
		return
	}
	l.errors.WithLabelValues(service, backend).Inc()
}

// InFlight adds delta (+1 when a request starts, -1 when it ends).
func (l *LB) InFlight(service, backend string, delta int) {
	if l == nil {
		return
	}
	l.inflight.WithLabelValues(service, backend).Add(float64(delta))
}

// Backends sets how many backends of service are in rotation.
func (l *LB) Backends(service string, n int) {
	if l == nil {
		return
	}
	l.backends.WithLabelValues(service).Set(float64(n))
}

// ForgetBackend drops the series of a backend that left the rotation.
func (l *LB) ForgetBackend(service, backend string) {
	if l == nil {
		return
	}
	l.inflight.DeleteLabelValues(service, backend)
	l.errors.DeleteLabelValues(service, backend)
	l.requests.DeletePartialMatch(prometheus.Labels{"service": service, "backend": backend})
}

// LBBackend is one backend of a balancer's pool as seen at scrape time.
type LBBackend struct {
	Addr     string
	InFlight int64
	Total    uint64 // requests or connections sent to it so far
	Draining bool
}

// CollectLB reports a balancer's pool at scrape time: backends in rotation
// (fleet_lb_pool_backends), and per backend its in-flight work, total
// requests and whether it is draining. status must be cheap and safe for
// concurrent use.
func (m *Metrics) CollectLB(service string, status func() []LBBackend) {
	m.reg.MustRegister(&lbCollector{service: service, status: status})
}

var (
	lbPoolBackendsDesc = prometheus.NewDesc(Namespace+"_lb_pool_backends",
		"Backends in rotation (not draining), by service.", []string{"service"}, nil)
	lbPoolInFlightDesc = prometheus.NewDesc(Namespace+"_lb_pool_in_flight",
		"Requests or connections in progress, by service and backend.", []string{"service", "backend"}, nil)
	lbPoolTotalDesc = prometheus.NewDesc(Namespace+"_lb_pool_requests_total",
		"Requests or connections sent to a backend since it joined the pool.", []string{"service", "backend"}, nil)
	lbPoolDrainingDesc = prometheus.NewDesc(Namespace+"_lb_pool_draining",
		"1 while a removed backend finishes its in-flight work.", []string{"service", "backend"}, nil)
)

type lbCollector struct {
	service string
	status  func() []LBBackend
}

func (c *lbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lbPoolBackendsDesc
	ch <- lbPoolInFlightDesc
	ch <- lbPoolTotalDesc
	ch <- lbPoolDrainingDesc
}

func (c *lbCollector) Collect(ch chan<- prometheus.Metric) {
	live := 0
	seen := map[string]bool{}
	for _, b := range c.status() {
		if seen[b.Addr] {
			continue // the same address draining and back in rotation: report it once
		}
		seen[b.Addr] = true
		draining := 0.0
		if b.Draining {
			draining = 1
		} else {
			live++
		}
		ch <- prometheus.MustNewConstMetric(lbPoolInFlightDesc, prometheus.GaugeValue, float64(b.InFlight), c.service, b.Addr)
		ch <- prometheus.MustNewConstMetric(lbPoolTotalDesc, prometheus.CounterValue, float64(b.Total), c.service, b.Addr)
		ch <- prometheus.MustNewConstMetric(lbPoolDrainingDesc, prometheus.GaugeValue, draining, c.service, b.Addr)
	}
	ch <- prometheus.MustNewConstMetric(lbPoolBackendsDesc, prometheus.GaugeValue, float64(live), c.service)
}
