package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/events"
	"github.com/fleetd/fleet/internal/sse"
)

// journalLines is how many past lines the journal pane starts with.
const journalLines = 50

// startSSE starts a stream of server-sent events; a proxy in front (nginx)
// is asked not to buffer it.
func startSSE(w http.ResponseWriter) *sse.Writer {
	w.Header().Set("X-Accel-Buffering", "no")
	return sse.Start(w)
}

// events streams cluster events as "fleet" events with the revision as id.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	var from int64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			from = n + 1
		}
	}
	ctx := r.Context()
	st := h.cfg.Store
	ch := events.Stream(ctx, st.KV(), st.Prefix(), from)
	s := startSSE(w)
	tick := time.NewTicker(h.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if s.Comment("ping") != nil {
				return
			}
		case e, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(e)
			if s.Event("fleet", strconv.FormatInt(e.Rev, 10), string(b)) != nil {
				return
			}
		}
	}
}

// journal streams a unit's journal, read through the API, as "line"
// events. A journal that is not available yet (unit not placed, not
// loaded) becomes one "status" event and the stream ends; the browser
// reconnects after the retry interval.
func (h *Handler) journal(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if h.cfg.API == nil {
		http.Error(w, "journal not available", http.StatusNotFound)
		return
	}
	q := url.Values{"lines": {strconv.Itoa(journalLines)}, "follow": {"true"}}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/fleet/v1/journal/"+url.PathEscape(name)+"?"+q.Encode(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Header = r.Header.Clone()
	req.Header.Del("Accept")
	req.Header.Del("Last-Event-ID")
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	s := startSSE(w)
	jw := &journalWriter{s: s, header: http.Header{}}
	h.cfg.API.ServeHTTP(jw, req)
	if jw.code != 0 && jw.code != http.StatusOK {
		msg := apiMessage(jw.body.Bytes())
		if msg == "" {
			msg = http.StatusText(jw.code)
		}
		_ = s.Event("status", "", fmt.Sprintf("journal not available yet: %s", msg))
		return
	}
	jw.flushPartial()
	_ = s.Event("status", "", "journal ended")
}

func apiMessage(b []byte) string {
	var env struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error.Message != "" {
		return env.Error.Message
	}
	return strings.TrimSpace(string(b))
}

// journalWriter receives the API's journal answer and turns each line
// into a "line" event.
type journalWriter struct {
	s       *sse.Writer
	header  http.Header
	code    int
	started bool
	partial []byte
	body    bytes.Buffer // error answers
}

func (j *journalWriter) Header() http.Header { return j.header }

func (j *journalWriter) WriteHeader(code int) {
	if j.code != 0 {
		return
	}
	j.code = code
	if code == http.StatusOK {
		j.started = true
		_ = j.s.Event("reset", "", "")
	}
}

func (j *journalWriter) Write(p []byte) (int, error) {
	if j.code == 0 {
		j.WriteHeader(http.StatusOK)
	}
	if j.code != http.StatusOK {
		if j.body.Len() < 64<<10 {
			j.body.Write(p)
		}
		return len(p), nil
	}
	j.partial = append(j.partial, p...)
	for {
		i := bytes.IndexByte(j.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(j.partial[:i]), "\r")
		j.partial = j.partial[i+1:]
		if err := j.s.Event("line", "", line); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (j *journalWriter) flushPartial() {
	if len(j.partial) > 0 && j.code == http.StatusOK {
		_ = j.s.Event("line", "", string(j.partial))
		j.partial = nil
	}
}

// Flush is a no-op: every complete line is sent (and flushed) at once.
func (j *journalWriter) Flush() {
	if j.code == 0 {
		j.WriteHeader(http.StatusOK)
	}
}
