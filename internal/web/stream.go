package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/events"
)

// journalLines is how many past lines the journal pane starts with.
const journalLines = 50

// sse writes server-sent events and flushes after each.
type sse struct {
	mu sync.Mutex
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.SetWriteDeadline(time.Time{})
	s.raw("retry: 2000\n\n")
	return s
}

func (s *sse) raw(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.w, text); err != nil {
		return err
	}
	return s.rc.Flush()
}

// send writes one event; data may hold newlines (one data: line each).
func (s *sse) send(event, id, data string) error {
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	if event != "" {
		b.WriteString("event: " + event + "\n")
	}
	for _, l := range strings.Split(data, "\n") {
		b.WriteString("data: " + l + "\n")
	}
	b.WriteString("\n")
	return s.raw(b.String())
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
			if s.raw(": ping\n\n") != nil {
				return
			}
		case e, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(e)
			if s.send("fleet", strconv.FormatInt(e.Rev, 10), string(b)) != nil {
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
		_ = s.send("status", "", fmt.Sprintf("journal not available yet: %s", msg))
		return
	}
	jw.flushPartial()
	_ = s.send("status", "", "journal ended")
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
	s       *sse
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
		_ = j.s.send("reset", "", "")
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
		if err := j.s.send("line", "", line); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (j *journalWriter) flushPartial() {
	if len(j.partial) > 0 && j.code == http.StatusOK {
		_ = j.s.send("line", "", string(j.partial))
		j.partial = nil
	}
}

// Flush is a no-op: every complete line is sent (and flushed) at once.
func (j *journalWriter) Flush() {
	if j.code == 0 {
		j.WriteHeader(http.StatusOK)
	}
}
