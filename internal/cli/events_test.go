package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
)

func TestEventsCommand(t *testing.T) {
	evs := []fleet.Event{
		{Rev: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Type: fleet.EventUnitStarted, Unit: "web.service", Machine: "0123456789abcdef", State: "active/running", Message: "web.service started on 01234567"},
		{Rev: 8, Time: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), Type: fleet.EventMachineLost, Machine: "fedcba9876543210", Message: "machine fedcba98 lost"},
	}
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fleet/v1/events" {
			http.NotFound(w, r)
			return
		}
		gotQuery = r.URL.RawQuery
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, e := range evs {
			b, _ := json.Marshal(e)
			w.Write(append(b, '\n'))
			w.Write([]byte("\n")) // keep-alive lines are skipped
		}
	}))
	defer srv.Close()
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"--endpoint", srv.URL}, args...), nil, strings.NewReader(""), &out, &errb)
		return out.String(), errb.String(), code
	}

	out, errs, code := run("events", "-o", "json", "--since", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(gotQuery, "since=7") {
		t.Errorf("query %q", gotQuery)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got:\n%s", out)
	}
	for i, l := range lines {
		var e fleet.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Rev != evs[i].Rev || e.Type != evs[i].Type {
			t.Errorf("line %d %q: %+v %v", i, l, e, err)
		}
	}

	out, _, code = run("watch")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("text: exit %d\n%s", code, out)
	}
	f := strings.Split(lines[0], "\t")
	if len(f) != 6 || f[1] != "7" || f[2] != "unit.started" || f[3] != "web.service" || f[4] != "01234567" || f[5] != "web.service started on 01234567" {
		t.Errorf("text line %q", lines[0])
	}
	if f := strings.Split(lines[1], "\t"); f[3] != "-" || f[4] != "fedcba98" {
		t.Errorf("text line %q", lines[1])
	}

	if _, errs, code := run("events", "-o", "yaml"); code != 1 || !strings.Contains(errs, "invalid output format") {
		t.Errorf("bad -o: %d %s", code, errs)
	}
}
