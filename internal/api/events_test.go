package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
)

// openStream starts GET path and returns a line reader; the stream is
// cancelled when the test ends.
func openStream(t *testing.T, e *env, path string, hdr http.Header) (*http.Response, *bufio.Reader) {
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
	return resp, bufio.NewReader(resp.Body)
}

// readLine reads one non-empty line within 10 s.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			s, err := r.ReadString('\n')
			if err != nil || strings.TrimSpace(s) != "" {
				ch <- res{strings.TrimSpace(s), err}
				return
			}
		}
	}()
	select {
	case x := <-ch:
		if x.err != nil {
			t.Fatalf("reading stream: %v", x.err)
		}
		return x.s
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10s")
	}
	return ""
}

func TestEventsNDJSONAgainstRealStore(t *testing.T) {
	e := newEnv(t, 0)
	ctx := e.ctx()
	resp, r := openStream(t, e, "/fleet/v1/events", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := e.store.CreateUnit(ctx, fleet.Unit{Name: "a.service", Hash: "h", DesiredState: fleet.JobStateLaunched}); err != nil {
		t.Fatal(err)
	}
	var ev fleet.Event
	line := readLine(t, r)
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	if ev.Type != fleet.EventUnitSubmitted || ev.Unit != "a.service" || ev.Rev == 0 {
		t.Fatalf("got %+v", ev)
	}
	if err := e.store.DestroyUnit(ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	line = readLine(t, r)
	if !strings.Contains(line, `"type":"unit.destroyed"`) {
		t.Fatalf("got %q, want unit.destroyed", line)
	}

	// ?since replays from a revision.
	_, r2 := openStream(t, e, "/fleet/v1/events?since="+itoa(ev.Rev), nil)
	if line := readLine(t, r2); !strings.Contains(line, `"type":"unit.submitted"`) {
		t.Fatalf("replay: %q", line)
	}
	if line := readLine(t, r2); !strings.Contains(line, `"type":"unit.destroyed"`) {
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
	if l := readLine(t, r); l != "retry: 2000" {
		t.Fatalf("first line %q", l)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := e.store.CreateUnit(ctx, fleet.Unit{Name: "b.service", Hash: "h", DesiredState: fleet.JobStateLoaded}); err != nil {
		t.Fatal(err)
	}
	id, typ, data := readLine(t, r), readLine(t, r), readLine(t, r)
	if !strings.HasPrefix(id, "id: ") || typ != "event: fleet" || !strings.Contains(data, `"unit":"b.service"`) {
		t.Fatalf("got %q %q %q", id, typ, data)
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
