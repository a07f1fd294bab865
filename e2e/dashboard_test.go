package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/testcluster"
)

// chromiumPath finds Debian's chromium (or another Chrome), "" if none.
func chromiumPath() string {
	if p := os.Getenv("FLEET_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// metricSum adds up every series of name (any labels matching the label
// filter substring) over all machines' /metrics.
func metricSum(t *testing.T, c *testcluster.Cluster, name, labels string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{.*\})? (\S+)$`)
	sum := 0.0
	for _, m := range c.Machines {
		resp, err := http.Get(m.APIURL + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, mm := range re.FindAllStringSubmatch(string(b), -1) {
			if !strings.Contains(mm[1], labels) {
				continue
			}
			v, _ := strconv.ParseFloat(mm[2], 64)
			sum += v
		}
	}
	return sum
}

// TestDashboard drives the dashboard of a 3-machine cluster in headless
// Chromium, logged in with `fleetctl dashboard`: every machine and the
// unit are shown, Start makes the unit
// active without a reload, the unit page follows its journal live, Stop
// makes it inactive; /metrics and `fleetctl events -o json` follow along.
// With FLEET_SCREENSHOTS=1 it rewrites docs/screenshots/*.png.
func TestDashboard(t *testing.T) {
	chrome := chromiumPath()
	if chrome == "" {
		t.Skip("chromium is not installed (Debian: apt-get install chromium); skipping the browser test")
	}
	c := testcluster.New(t, fleetdBin, 3, testcluster.Options{Metadata: []string{"region=eu,disk=ssd", "region=eu", "region=us"}})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// Watch events like a user would. --since 1 replays the history: the
	// stream may be set up only after the submit below.
	evCtx, evCancel := context.WithCancel(ctx)
	evDone := make(chan string, 1)
	go func() {
		out, _, _ := c.FleetctlCtx(evCtx, 1, "events", "-o", "json", "--since", "1")
		evDone <- out
	}()

	dir := t.TempDir()
	unit := filepath.Join(dir, "hello.service")
	if err := os.WriteFile(unit, []byte(`[Unit]
Description=Says hello twice a second

[Service]
ExecStart=/bin/sh -c 'i=0; while true; do i=$((i+1)); echo "hello tick $i"; sleep 0.5; done'
`), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "db.service")
	if err := os.WriteFile(other, []byte("[Unit]\nDescription=Needs a machine nobody has\n\n[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nMachineMetadata=region=mars\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.MustFleetctl("submit", unit, other)
	c.MustFleetctl("start", "--no-block", "db.service")
	startsBefore := metricSum(t, c, "fleet_agent_unit_starts_total", "")
	if active := metricSum(t, c, "fleet_agent_units", `state="active"`); active != 0 {
		t.Fatalf("%v units active before the test started any", active)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	shots := os.Getenv("FLEET_SCREENSHOTS") == "1"
	shot := func(name string) {
		if !shots {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		_, file, _, _ := runtime.Caller(0)
		out := filepath.Join(filepath.Dir(file), "..", "docs", "screenshots", name+".png")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// text reads a node's text in one script evaluation: the live tables are
	// re-rendered on every event, so a node found by one CDP call may be gone
	// by the next (chromedp.Text does two).
	text := func(sel string) string {
		t.Helper()
		q, _ := json.Marshal(sel)
		expr := `(function(){var e=document.querySelector(` + string(q) + `);return e ? e.innerText : "\x00missing";})()`
		var s string
		for attempt := 0; attempt < 50; attempt++ {
			var err error
			s, err = chromedp.Run(bctx, chromedp.Evaluate[string](expr))
			must("text of "+sel, err)
			if s != "\x00missing" {
				return strings.TrimSpace(s)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("no element matches %s", sel)
		return ""
	}
	// poll and click retry over navigations and live re-renders
	// (browserPoll, browserClick).
	poll := func(what, expr string) { t.Helper(); browserPoll(t, bctx, what, expr) }
	click := func(what, sel string) { t.Helper(); browserClick(t, bctx, what, sel) }
	visible := func(sel string) string {
		q, _ := json.Marshal(sel)
		return `!!document.querySelector(` + string(q) + `)`
	}

	base := c.Machines[0].APIURL
	row := `tr.unit[data-unit="hello.service"]`
	// Log in with `fleetctl dashboard`'s one-time URL: it lands on /ui/.
	must("open dashboard", chromedp.Do(bctx, chromedp.Navigate(dashboardLoginURL(t, c))))
	poll("the unit's row", visible(row))
	// Every machine, with its IP.
	n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.machine").length`))
	must("count machines", err)
	if n != 3 {
		t.Fatalf("dashboard shows %d machines, want 3", n)
	}
	for _, m := range c.Machines {
		sel := fmt.Sprintf(`tr.machine[data-machine=%q]`, m.ID)
		if got := text(sel); !strings.Contains(got, fleet.ShortMachineID(m.ID)) || !strings.Contains(got, fmt.Sprintf("127.0.0.%d", m.Index+1)) {
			t.Errorf("machine row %s: %q", m.ID[:8], got)
		}
	}
	if got := text(`tr.unit[data-unit="db.service"]`); !strings.Contains(got, "region=mars") && !strings.Contains(got, "mars") {
		t.Errorf("unplaced unit shows no reason: %q", got)
	}
	poll("live connection", `document.getElementById("conn").textContent === "live"`)

	// Start by clicking; the row turns active without a page load.
	must("mark page", chromedp.Do(bctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](`window.__noReload = 42`)(ctx, t)
		return err
	})))
	click("click start", row+` button[data-action="start"]:not([disabled])`)
	poll("unit active", `(function(){var e=document.querySelector('tr.unit[data-unit="hello.service"] .active-state');return !!e && e.textContent.trim()==="active";})()`)
	still, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.__noReload || 0`))
	must("check reload marker", err)
	if still != 42 {
		t.Fatal("the page reloaded to show the new state")
	}
	poll("feed shows the start", `Array.from(document.querySelectorAll("#feed li")).some(function(li){return li.dataset.type==="unit.started"})`)
	if got := text(row); !strings.Contains(got, "launched") {
		t.Errorf("unit row after start: %q", got)
	}
	shot("dashboard")

	// The metrics moved.
	c.Await("metrics after start", 20*time.Second, func() (bool, string) {
		a := metricSum(t, c, "fleet_agent_units", `state="active"`)
		s := metricSum(t, c, "fleet_agent_unit_starts_total", "")
		l := metricSum(t, c, "fleet_agent_unit_start_latency_seconds_count", "")
		return a == 1 && s > startsBefore && l >= 1, fmt.Sprintf("active %v starts %v latency count %v", a, s, l)
	})

	// The unit page: journal lines arrive live.
	// Clicked from a script: the live table may re-render between a
	// query and a click.
	_, err = chromedp.Run(bctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('tr.unit[data-unit="hello.service"] a[href="/ui/units/hello.service"]').click()`))
	must("click the unit's link", err)
	poll("unit page", visible(`#journal-status`))
	poll("unit page", `location.pathname === "/ui/units/hello.service"`)
	poll("journal lines", `document.querySelectorAll("#journal .jl").length >= 2 && document.getElementById("journal").textContent.indexOf("hello tick") >= 0`)
	first, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(function(){var l=document.querySelectorAll("#journal .jl");return l[l.length-1].textContent})()`))
	must("last journal line", err)
	poll("a new journal line", fmt.Sprintf(`(function(){var l=document.querySelectorAll("#journal .jl");return l[l.length-1].textContent !== %q})()`, first))
	if got := text(`#unit-file`); !strings.Contains(got, "ExecStart=/bin/sh") {
		t.Errorf("unit file: %q", got)
	}
	shot("unit")

	// Stop by clicking.
	click("click stop", `.unit-detail button[data-action="stop"]:not([disabled])`)
	poll("unit inactive", `(function(){var e=document.querySelector('.unit-detail .active-state');return !!e && e.textContent.trim()==="inactive";})()`)
	c.Await("metrics after stop", 20*time.Second, func() (bool, string) {
		a := metricSum(t, c, "fleet_agent_units", `state="active"`)
		s := metricSum(t, c, "fleet_agent_unit_stops_total", "")
		return a == 0 && s >= 1, fmt.Sprintf("active %v stops %v", a, s)
	})
	if rows := c.UnitRows(); len(rows) == 0 {
		t.Error("fleetctl list-units shows nothing")
	}

	// Phone width: nothing scrolls sideways.
	must("phone", chromedp.Do(bctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(base+"/ui/"),
	))
	poll("the unit's row on a phone", visible(row))
	poll("live on phone", `document.getElementById("conn").textContent === "live"`)
	w, err := chromedp.Run(bctx, chromedp.Evaluate[int](`Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)`))
	must("scroll width", err)
	if w > 390 {
		t.Errorf("phone width: page is %dpx wide at a 390px viewport", w)
	}
	shot("phone")

	// The API counted the dashboard's requests.
	if v := metricSum(t, c, "fleet_api_requests_total", `route="/ui/{$}"`); v < 2 {
		t.Errorf("fleet_api_requests_total for /ui/ = %v", v)
	}

	// fleetctl events -o json printed one object per line as it went.
	evCancel()
	var out string
	select {
	case out = <-evDone:
	case <-time.After(10 * time.Second):
		t.Fatal("fleetctl events did not end with its context")
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e fleet.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("events line %q: %v", sc.Text(), err)
		}
		if e.Unit == "hello.service" || e.Unit == "db.service" {
			seen[e.Type] = true
		}
	}
	for _, want := range []string{fleet.EventUnitSubmitted, fleet.EventUnitScheduled, fleet.EventUnitStarted, fleet.EventUnitStopped, fleet.EventUnitUnplaced} {
		if !seen[want] {
			t.Errorf("fleetctl events -o json never printed %s; got:\n%s", want, out)
		}
	}
}
