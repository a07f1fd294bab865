package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/client"
)

func TestTimerRows(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 28, 40, 0, time.UTC)
	rows := timerRows([]client.Timer{
		{Unit: "tick.timer", Activates: "tick.service", Machine: m1, Next: now.Add(80 * time.Second), Last: now.Add(-3 * time.Second)},
		{Unit: "new.timer", Activates: "new.service"},
	}, now)
	want := [][]string{
		{"Thu 2026-12-03 18:30:00 UTC", "1min 20s left", "Thu 2026-12-03 18:28:37 UTC", "3s ago", "tick.timer", "tick.service"},
		{"-", "-", "-", "-", "new.timer", "new.service"},
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
	// Shown in the caller's time zone.
	berlin := time.FixedZone("CET", 3600)
	if got := timerRows([]client.Timer{{Unit: "x.timer", Next: now.Add(time.Hour)}}, now.In(berlin))[0][0]; got != "Thu 2026-12-03 20:28:40 CET" {
		t.Errorf("zoned NEXT %q", got)
	}
}

func TestListTimers(t *testing.T) {
	next := time.Now().Add(90 * time.Second).UTC().Truncate(time.Second)
	body, _ := json.Marshal(client.TimerList{Timers: []client.Timer{{Unit: "tick.timer", Activates: "tick.service", Machine: m1, Next: next}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fleet/v1/timers" || r.Method != "GET" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	env := []string{"FLEETCTL_ENDPOINT=" + srv.URL}

	r := runCLI(t, context.Background(), env, "list-timers")
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "NEXT LEFT LAST PASSED UNIT ACTIVATES" ||
		!strings.Contains(lines[1], "left") || !strings.Contains(lines[1], "tick.timer") || !strings.HasSuffix(lines[1], "tick.service") ||
		lines[3] != "1 timers listed." {
		t.Fatalf("list-timers: %+v", r)
	}
	if !strings.Contains(lines[1], next.Local().Format("Mon 2006-01-02 15:04:05")) {
		t.Errorf("NEXT not shown: %q", lines[1])
	}

	r = runCLI(t, context.Background(), env, "list-timers", "--no-legend")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "tick.timer") {
		t.Fatalf("--no-legend: %+v", r)
	}

	r = runCLI(t, context.Background(), env, "list-timers", "-o", "json")
	var got client.TimerList
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 || len(got.Timers) != 1 || !got.Timers[0].Next.Equal(next) || got.Timers[0].Machine != m1 {
		t.Fatalf("-o json: %+v (%v)", r, err)
	}
	if strings.Contains(r.stdout, `"last"`) {
		t.Errorf("-o json shows a zero last: %s", r.stdout)
	}

	r = runCLI(t, context.Background(), env, "list-timers", "-o", "yaml")
	if r.code != 1 || !strings.Contains(r.stderr, "invalid output format") {
		t.Fatalf("-o yaml: %+v", r)
	}
}
