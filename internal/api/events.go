package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/events"
	"github.com/fleetd/fleet/internal/sse"
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
	useSSE := false
	switch f := q.Get("format"); f {
	case "":
		useSSE = strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	case "sse":
		useSSE = true
	case "json", "ndjson":
	default:
		writeError(w, http.StatusBadRequest, "invalid format "+strconv.Quote(f)+": expect json or sse")
		return
	}
	if useSSE && since == 0 {
		if n, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && n > 0 {
			since = n + 1
		}
	}
	ctx := r.Context()
	ch := events.Stream(ctx, s.store.KV(), s.store.Prefix(), since)

	var sw *sse.Writer
	rc := http.NewResponseController(w)
	if useSSE {
		sw = sse.Start(w)
	} else {
		_ = rc.SetWriteDeadline(time.Time{})
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
	}
	// writeLine writes and flushes one ndjson line.
	writeLine := func(b []byte) error {
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		return rc.Flush()
	}
	tick := time.NewTicker(eventsHeartbeat)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if sw != nil {
				err = sw.Comment("ping")
			} else {
				err = writeLine(nil)
			}
		case e, ok := <-ch:
			if !ok {
				return
			}
			b, merr := json.Marshal(e)
			if merr != nil {
				continue
			}
			if sw != nil {
				err = sw.Event("fleet", strconv.FormatInt(e.Rev, 10), string(b))
			} else {
				err = writeLine(b)
			}
		}
		if err != nil {
			return
		}
	}
}
