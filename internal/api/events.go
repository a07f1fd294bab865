package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/events"
)

// eventsHeartbeat is the interval of keep-alives on an idle event stream.
const eventsHeartbeat = 15 * time.Second

// events streams cluster events (docs/api-extensions.md): newline-delimited
// JSON (one fleet.Event per line; blank lines are keep-alives), or
// server-sent events when the client accepts text/event-stream or asks
// ?format=sse. ?since=<rev> starts at that etcd revision instead of now.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since int64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid since "+strconv.Quote(v)+": expect a non-negative etcd revision")
			return
		}
		since = n
	}
	sse := false
	switch f := q.Get("format"); f {
	case "":
		sse = strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	case "sse":
		sse = true
	case "json", "ndjson":
	default:
		writeError(w, http.StatusBadRequest, "invalid format "+strconv.Quote(f)+": expect json or sse")
		return
	}
	if sse && since == 0 {
		if n, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && n > 0 {
			since = n + 1
		}
	}
	ctx := r.Context()
	ch := events.Stream(ctx, s.store.KV(), s.store.Prefix(), since)

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if sse {
		_, _ = w.Write([]byte("retry: 2000\n\n"))
	}
	_ = rc.Flush()
	tick := time.NewTicker(eventsHeartbeat)
	defer tick.Stop()
	for {
		var out []byte
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			out = []byte("\n")
			if sse {
				out = []byte(": ping\n\n")
			}
		case e, ok := <-ch:
			if !ok {
				return
			}
			b, err := json.Marshal(e)
			if err != nil {
				continue
			}
			if sse {
				out = []byte("id: " + strconv.FormatInt(e.Rev, 10) + "\nevent: fleet\ndata: " + string(b) + "\n\n")
			} else {
				out = append(b, '\n')
			}
		}
		if _, err := w.Write(out); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
