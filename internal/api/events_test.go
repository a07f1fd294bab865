package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
)

// stream reads an event stream in the background: one block per event
// (an NDJSON line, or the lines of one server-sent event), keep-alives
// left out.
type stream struct {
	t      *testing.T
	blocks chan []string
}

// openStream starts GET path and reads it; the stream is cancelled when
// the test ends.
func openStream(t *testing.T, e *env, path string, hdr http.Header) (*http.Response, *stream) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	sse := resp.Header.Get("Content-Type") == "text/event-stream"
	s := &stream{t: t, blocks: make(chan []string, 100)}
	go func() {
		defer close(s.blocks)
		r := bufio.NewReader(resp.Body)
		var block []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			switch {
			case line != "" && !strings.HasPrefix(line, ":"):
				block = append(block, line)
				if sse {
					continue
				}
			case !sse || len(block) == 0:
				continue
			}
			select {
			case s.blocks <- block:
			case <-ctx.Done():
				return
			}
			block = nil
		}
	}()
	return resp, s
}

// next returns the next event that is not a probe's (see live), within
// 10 s.
func (s *stream) next() []string {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case b, ok := <-s.blocks:
			if !ok {
				s.t.Fatal("stream ended")
			}
			if !strings.Contains(strings.Join(b, "\n"), probePrefix) {
				return b
			}
		case <-deadline:
			s.t.Fatal("no event within 10s")
		}
	}
}

// readLine returns the next NDJSON event.
func (s *stream) readLine() string {
	s.t.Helper()
	return strings.Join(s.next(), "\n")
}

const probePrefix = "stream-probe-"

// live returns once the stream follows the store: a stream "from now"
// starts its etcd watch after answering, so changes made right after the
// answer may come before the watch. It submits probe units until the
// stream carries one; next skips the probes' events.
func (s *stream) live(e *env) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s%d.service", probePrefix, i)
		if _, err := e.store.CreateUnit(e.ctx(), fleet.Unit{Name: name, Hash: "h", DesiredState: fleet.JobStateInactive}); err != nil {
			s.t.Fatal(err)
		}
		select {
		case b, ok := <-s.blocks:
			if !ok {
				s.t.Fatal("stream ended")
			}
			if ev := strings.Join(b, "\n"); !strings.Contains(ev, probePrefix) {
				s.t.Fatalf("event %q on a stream where nothing else happens", ev)
			}
			s.t.Logf("stream live after %d probe(s)", i+1)
			return
		case <-time.After(min(10*time.Millisecond<<i, time.Second)):
		}
		if time.Now().After(deadline) {
			s.t.Fatal("the stream carried no probe within 10s")
		}
	}
}

func TestEventsNDJSONAgainstRealStore(t *testing.T) {
	e := newEnv(t, 0)
	ctx := e.ctx()
	resp, r := openStream(t, e, "/fleet/v1/events", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r.live(e)
	if _, err := e.store.CreateUnit(ctx, fleet.Unit{Name: "a.service", Hash: "h", DesiredState: fleet.JobStateLaunched}); err != nil {
		t.Fatal(err)
	}
	var ev fleet.Event
	line := r.readLine()
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	if ev.Type != fleet.EventUnitSubmitted || ev.Unit != "a.service" || ev.Rev == 0 {
		t.Fatalf("got %+v", ev)
	}
	if err := e.store.DestroyUnit(ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	line = r.readLine()
	if !strings.Contains(line, `"type":"unit.destroyed"`) {
		t.Fatalf("got %q, want unit.destroyed", line)
	}

	// ?since replays from a revision.
	_, r2 := openStream(t, e, "/fleet/v1/events?since="+itoa(ev.Rev), nil)
	if line := r2.readLine(); !strings.Contains(line, `"type":"unit.submitted"`) {
		t.Fatalf("replay: %q", line)
	}
	if line := r2.readLine(); !strings.Contains(line, `"type":"unit.destroyed"`) {
		t.Fatalf("replay: %q", line)
	}

	// The Go client reads the same stream.
	c, err := client.New(e.srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []fleet.Event
	stop := context.Canceled
	err = c.Events(ctx, ev.Rev, func(x fleet.Event) error {
		got = append(got, x)
		if len(got) == 2 {
			return stop
		}
		return nil
	})
	if err != stop || got[0].Type != fleet.EventUnitSubmitted || got[1].Type != fleet.EventUnitDestroyed {
		t.Fatalf("client: err %v, events %+v", err, got)
	}
}

func TestEventsSSE(t *testing.T) {
	e := newEnv(t, 0)
	ctx := e.ctx()
	resp, r := openStream(t, e, "/fleet/v1/events", http.Header{"Accept": {"text/event-stream"}})
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	if b := r.next(); len(b) != 1 || b[0] != "retry: 2000" {
		t.Fatalf("first event %q", b)
	}
	r.live(e)
	if _, err := e.store.CreateUnit(ctx, fleet.Unit{Name: "b.service", Hash: "h", DesiredState: fleet.JobStateLoaded}); err != nil {
		t.Fatal(err)
	}
	b := r.next()
	if len(b) != 3 || !strings.HasPrefix(b[0], "id: ") || b[1] != "event: fleet" || !strings.Contains(b[2], `"unit":"b.service"`) {
		t.Fatalf("got %q", b)
	}
}

func TestEventsBadParams(t *testing.T) {
	e := newEnv(t, 0)
	for _, path := range []string{"/fleet/v1/events?since=x", "/fleet/v1/events?since=-1", "/fleet/v1/events?format=xml"} {
		if got := e.do("GET", path, "", ""); got.code != 400 {
			t.Errorf("%s: %d %s", path, got.code, got.body)
		}
	}
	if got := e.do("POST", "/fleet/v1/events", "", ""); got.code != 405 || !strings.Contains(got.body, msgOnlyGet) {
		t.Errorf("POST: %d %s", got.code, got.body)
	}
}

func TestMountedHandlers(t *testing.T) {
	hit := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("mounted " + r.URL.Path)) })
	e := newEnvWith(t, Config{MachineID: machineA, Mount: map[string]http.Handler{"/ui/": hit, "GET /metrics": hit}})
	for _, p := range []string{"/ui/", "/ui/units/x", "/metrics"} {
		got := e.do("GET", p, "", "")
		if got.code != 200 || got.body != "mounted "+p || got.header.Get("Server") != "fleetd/"+testVersion {
			t.Errorf("%s: %d %q server %q", p, got.code, got.body, got.header.Get("Server"))
		}
	}
	if got := e.do("GET", "/nope", "", ""); got.code != 404 {
		t.Errorf("unknown path still 404: %d", got.code)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
