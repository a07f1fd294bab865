package lb

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMetricsHandlerReportsThePool(t *testing.T) {
	pool, err := NewPool(PoolConfig{Balance: "roundrobin"})
	if err != nil {
		t.Fatal(err)
	}
	pool.Update([]Backend{{ID: "a", Addr: "10.0.0.1:80"}, {ID: "b", Addr: "10.0.0.2:80"}})
	tg := pool.Acquire(nil)
	if tg == nil {
		t.Fatal("no backend acquired")
	}
	rec := httptest.NewRecorder()
	metricsHandler("web", pool).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		`fleet_lb_pool_backends{service="web"} 2`,
		`fleet_lb_pool_in_flight{backend="10.0.0.1:80",service="web"}`,
		`fleet_lb_pool_requests_total{backend="10.0.0.2:80",service="web"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	if !strings.Contains(text, `fleet_lb_pool_in_flight{backend="`+tg.Backend().Addr+`",service="web"} 1`) {
		t.Errorf("in-flight of the acquired backend not 1:\n%s", text)
	}
	pool.Release(tg)
}
