package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Middleware counts and times the requests next answers. The route label
// is the ServeMux pattern that matched (without its method), read after
// next returns, so that the label set stays bounded; "unmatched" when no
// mux recorded one.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			code := rec.code
			if code == 0 {
				code = http.StatusOK
			}
			route := r.Pattern
			if _, p, ok := strings.Cut(route, " "); ok {
				route = p
			}
			if route == "" {
				route = "unmatched"
			}
			method := r.Method
			switch method {
			case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
				http.MethodPatch, http.MethodDelete, http.MethodOptions:
			default:
				method = "other"
			}
			m.apiRequests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
			m.apiDuration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

// statusRecorder remembers the status code; it passes Flush on and
// unwraps for http.ResponseController (deadlines of streamed journals).
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Flush() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
