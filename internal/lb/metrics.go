package lb

import (
	"net/http"

	"github.com/fleetd/fleet/internal/metrics"
)

// metricsHandler serves fleet_lb_* (and Go runtime) metrics of this
// balancer's pool on the status address: GET /metrics.
func metricsHandler(service string, pool *Pool) http.Handler {
	m := metrics.New()
	m.CollectLB(service, func() []metrics.LBBackend {
		st := pool.Status()
		out := make([]metrics.LBBackend, len(st))
		for i, b := range st {
			out[i] = metrics.LBBackend{Addr: b.Addr, InFlight: b.InFlight, Total: b.Total, Draining: b.Draining}
		}
		return out
	})
	return m.Handler()
}
