package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
)

// testLocal is a test implementation of Local (our daemon's interface, not
// etcd): a machine with some units loaded, each with a journal.
type testLocal struct {
	id    string
	mu    sync.Mutex
	units map[string][]string // loaded unit → its journal lines
	// followEnded receives the unit name when a follow ends (ctx done).
	followEnded chan string
	// got records the parameters of the last Journal call.
	got string
}

func newTestLocal(id string, units map[string][]string) *testLocal {
	return &testLocal{id: id, units: units, followEnded: make(chan string, 16)}
}

func (l *testLocal) MachineID() string { return l.id }

func (l *testLocal) UnitStatus(ctx context.Context, name string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.units[name]; !ok {
		return "", fmt.Errorf("status of %s: %w", name, runner.ErrNotLoaded)
	}
	return fmt.Sprintf("● %s\n   Loaded: loaded\n   Active: active (running) on %s\n", name, fleet.ShortMachineID(l.id)), nil
}

func (l *testLocal) Journal(ctx context.Context, name string, lines int, follow bool, output string, w io.Writer) error {
	l.mu.Lock()
	all, ok := l.units[name]
	l.got = fmt.Sprintf("lines=%d follow=%v output=%s", lines, follow, output)
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("journal of %s: %w", name, runner.ErrNotLoaded)
	}
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	if lines < len(all) {
		all = all[len(all)-lines:]
	}
	for _, line := range all {
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
		flush()
	}
	if !follow {
		return nil
	}
	defer func() { l.followEnded <- name }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if _, err := fmt.Fprintf(w, "%s live %d\n", fleet.ShortMachineID(l.id), i); err != nil {
				return err
			}
			flush()
		}
	}
}

func (l *testLocal) lastCall() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got
}

// cluster is two fleetd API servers ("machines" A and B) on one store, each
// registered with its APIURL, plus a registered machine C whose API is down.
type cluster struct {
	*env
	localA, localB *testLocal
	srvB           *httptest.Server
}

func newCluster(t *testing.T) *cluster {
	localA := newTestLocal(machineA, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	e := newEnvWith(t, Config{Local: localA, HTTPClient: client})
	c := &cluster{env: e}
	c.localA = localA
	localA.units = map[string][]string{
		"g.service": {"a1", "a2"},
		"a.service": {"only on a"},
	}
	c.localB = newTestLocal(machineB, map[string][]string{
		"g.service":  {"b1", "b2", "b3"},
		"b.service":  {"line 1", "line 2", "line 3"},
		"g2.service": {"x"},
	})
	c.srvB = httptest.NewServer(New(Config{Store: e.store, Local: c.localB, Version: testVersion, HTTPClient: client}).Handler())
	t.Cleanup(c.srvB.Close)

	// Machine C is registered but nothing answers at its URL.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	e.register(fleet.Machine{ID: machineA, APIURL: e.srv.URL})
	e.register(fleet.Machine{ID: machineB, APIURL: c.srvB.URL + "/"})
	e.register(fleet.Machine{ID: machineC, APIURL: deadURL})

	opt := "Service|ExecStart|/bin/true"
	e.putUnit("a.service", unitBody("a.service", opt))
	e.putUnit("b.service", unitBody("b.service", opt))
	e.putUnit("c.service", unitBody("c.service", opt))
	e.putUnit("g.service", unitBody("g.service", opt, "X-Fleet|Global|true"))
	e.putUnit("g2.service", unitBody("g2.service", opt, "X-Fleet|Global|true"))
	e.putUnit("idle.service", unitBody("idle.service", opt))
	e.putUnit("gone.service", unitBody("gone.service", opt))
	e.place("a.service", machineA)
	e.place("b.service", machineB)
	e.place("c.service", machineC)
	e.place("g.service", machineA, machineB)
	e.place("g2.service", machineB, machineC)
	e.place("gone.service", "dddddddd44444444dddddddd44444444") // not registered
	return c
}

func statusText(unit, id string) string {
	return fmt.Sprintf("● %s\n   Loaded: loaded\n   Active: active (running) on %s\n", unit, fleet.ShortMachineID(id))
}

func statusJSON(entries ...UnitStatus) string {
	b, _ := json.Marshal(UnitStatusList{Statuses: entries})
	return string(b)
}

func TestStatus(t *testing.T) {
	c := newCluster(t)
	// On this machine, directly.
	expect(t, "a on A", c.do("GET", "/fleet/v1/status/a.service", "", ""), 200,
		statusJSON(UnitStatus{MachineID: machineA, Text: statusText("a.service", machineA)}))
	// On B, asked of A: proxied.
	expect(t, "b via A", c.do("GET", "/fleet/v1/status/b.service?alt=json", "", ""), 200,
		statusJSON(UnitStatus{MachineID: machineB, Text: statusText("b.service", machineB)}))
	// Global: every machine it is placed on.
	expect(t, "global", c.do("GET", "/v1-alpha/status/g.service", "", ""), 200,
		statusJSON(UnitStatus{MachineID: machineA, Text: statusText("g.service", machineA)},
			UnitStatus{MachineID: machineB, Text: statusText("g.service", machineB)}))
	expect(t, "global, machineID filter (short)", c.do("GET", "/fleet/v1/status/g.service?machineID=bbbbbbbb", "", ""), 200,
		statusJSON(UnitStatus{MachineID: machineB, Text: statusText("g.service", machineB)}))
	// Errors are entries.
	got := c.do("GET", "/fleet/v1/status/c.service", "", "")
	var list UnitStatusList
	if got.code != 200 || json.Unmarshal([]byte(got.body), &list) != nil || len(list.Statuses) != 1 ||
		list.Statuses[0].MachineID != machineC || list.Statuses[0].Text != "" ||
		!strings.HasPrefix(list.Statuses[0].Error, "machine unreachable") {
		t.Errorf("unreachable machine: %d %s", got.code, got.body)
	}
	expect(t, "machine gone", c.do("GET", "/fleet/v1/status/gone.service", "", ""), 200,
		statusJSON(UnitStatus{MachineID: "dddddddd44444444dddddddd44444444", Error: "machine is not in the cluster"}))
	expect(t, "not loaded there", c.do("GET", "/fleet/v1/status/a.service?machineID="+machineB, "", ""), 200,
		statusJSON(UnitStatus{MachineID: machineB, Error: msgNotLoadedHere}))
	expect(t, "unplaced", c.do("GET", "/fleet/v1/status/idle.service", "", ""), 200, `{}`)
	expectError(t, "missing", c.do("GET", "/fleet/v1/status/nope.service", "", ""), 404, msgUnitNotFound)
	expectError(t, "unknown machine", c.do("GET", "/fleet/v1/status/a.service?machineID=ffff", "", ""), 404, `machine "ffff" does not exist`)

	// Local endpoints.
	expect(t, "local", doURL(t, c.srvB.URL, "GET", "/fleet/v1/local/status/b.service", "", nil), 200,
		`{"machineID":"`+machineB+`","text":`+mustMarshal(statusText("b.service", machineB))+`}`)
	expectError(t, "local not loaded", doURL(t, c.srvB.URL, "GET", "/fleet/v1/local/status/a.service", "", nil), 404, msgNotLoadedHere)
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestJournal(t *testing.T) {
	c := newCluster(t)
	get := func(path string) response {
		t.Helper()
		got := c.do("GET", path, "", "")
		if got.code == 200 && got.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", path, got.header.Get("Content-Type"))
		}
		return got
	}
	expect(t, "local unit", get("/fleet/v1/journal/a.service"), 200, "only on a\n")
	expect(t, "remote unit", get("/fleet/v1/journal/b.service?lines=2&output=short-iso"), 200, "line 2\nline 3\n")
	if got := c.localB.lastCall(); got != "lines=2 follow=false output=short-iso" {
		t.Errorf("B got %s", got)
	}
	expect(t, "default lines", get("/fleet/v1/journal/b.service?alt=json"), 200, "line 1\nline 2\nline 3\n")
	if got := c.localB.lastCall(); got != "lines=10 follow=false output=short" {
		t.Errorf("B got %s", got)
	}
	expect(t, "global", get("/fleet/v1/journal/g.service?output=cat"), 200,
		"aaaaaaaa: a1\naaaaaaaa: a2\nbbbbbbbb: b1\nbbbbbbbb: b2\nbbbbbbbb: b3\n")
	expect(t, "global one machine", get("/fleet/v1/journal/g.service?machineID="+machineB+"&lines=1"), 200, "b3\n")
	expect(t, "unplaced", get("/fleet/v1/journal/idle.service"), 200, "")
	// A machine that cannot be reached becomes an error line.
	if got := get("/fleet/v1/journal/g2.service"); got.code != 200 ||
		!strings.HasPrefix(got.body, "bbbbbbbb: x\ncccccccc: error: machine unreachable: ") || !strings.HasSuffix(got.body, "\n") {
		t.Errorf("global with a dead machine: %d %q", got.code, got.body)
	}
	expectError(t, "missing", get("/fleet/v1/journal/nope.service"), 404, msgUnitNotFound)
	expectError(t, "not loaded on target", get("/fleet/v1/journal/a.service?machineID="+machineB), 404, msgNotLoadedHere)
	expectError(t, "not loaded here", get("/fleet/v1/journal/b.service?machineID="+machineA), 404, msgNotLoadedHere)
	if got := get("/fleet/v1/journal/c.service"); got.code != 502 {
		t.Errorf("unreachable: %d %s", got.code, got.body)
	}
	for _, q := range []struct{ q, msg string }{
		{"lines=x", `invalid lines "x": expect a non-negative integer`},
		{"lines=-1", `invalid lines "-1": expect a non-negative integer`},
		{"follow=maybe", `invalid follow "maybe": expect true or false`},
		{"output=verbose", `invalid output "verbose": expect short, short-iso, short-precise, cat or json`},
	} {
		expectError(t, q.q, get("/fleet/v1/journal/b.service?"+q.q), 400, q.msg)
		expectError(t, "local "+q.q, doURL(t, c.srvB.URL, "GET", "/fleet/v1/local/journal/b.service?"+q.q, "", nil), 400, q.msg)
	}
	expect(t, "local journal", doURL(t, c.srvB.URL, "GET", "/fleet/v1/local/journal/b.service?lines=1", "", nil), 200, "line 3\n")
	expectError(t, "local journal not loaded", doURL(t, c.srvB.URL, "GET", "/fleet/v1/local/journal/a.service", "", nil), 404, msgNotLoadedHere)
}

// follow reads the first want lines of a followed journal, then cancels,
// and checks that every machine's follow ended.
func (c *cluster) follow(path string, want []string, ended ...*testLocal) {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	var got []string
	for len(got) < len(want) {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: after %q: %v", path, got, err)
		}
		got = append(got, strings.TrimSuffix(line, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("%s: line %d = %q, want prefix %q (all: %q)", path, i, got[i], want[i], got)
		}
	}
	cancel()
	for _, l := range ended {
		select {
		case <-l.followEnded:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: follow on %s did not end after cancel", path, l.id)
		}
	}
}

func TestJournalFollow(t *testing.T) {
	c := newCluster(t)
	// Proxied from B, streamed through as it comes.
	c.follow("/fleet/v1/journal/b.service?follow=true&lines=1", []string{"line 3", "bbbbbbbb live 0", "bbbbbbbb live 1", "bbbbbbbb live 2"}, c.localB)
	// Local.
	c.follow("/fleet/v1/journal/a.service?follow=1", []string{"only on a", "aaaaaaaa live 0", "aaaaaaaa live 1"}, c.localA)
	// Global: both machines concurrently, every line prefixed.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.srv.URL+"/fleet/v1/journal/g.service?follow=true&lines=0", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	seen := map[string]int{}
	for seen["aaaaaaaa"] < 2 || seen["bbbbbbbb"] < 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("global follow: %v (seen %v)", err, seen)
		}
		prefix, rest, ok := strings.Cut(line, ": ")
		if !ok || !strings.HasPrefix(rest, prefix+" live ") {
			t.Fatalf("global follow line %q", line)
		}
		seen[prefix]++
	}
	cancel()
	resp.Body.Close()
	for _, l := range []*testLocal{c.localA, c.localB} {
		select {
		case <-l.followEnded:
		case <-time.After(10 * time.Second):
			t.Errorf("global follow on %s did not end", l.id)
		}
	}
}

// TestPeerErrorsPassThrough: a peer's own error answer reaches the client.
func TestPeerErrorsPassThrough(t *testing.T) {
	c := newCluster(t)
	// a.service is placed on A; pretend it is placed on B too by asking B
	// directly through the cluster endpoint of server B.
	got := doURL(t, c.srvB.URL, "GET", "/fleet/v1/journal/a.service", "", nil)
	expect(t, "A's journal via B", got, 200, "only on a\n")
	got = doURL(t, c.srvB.URL, "GET", "/fleet/v1/status/a.service", "", nil)
	expect(t, "A's status via B", got, 200, statusJSON(UnitStatus{MachineID: machineA, Text: statusText("a.service", machineA)}))
}
