package cli

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
)

const helloFile = `[Unit]
Description=Hello World

[Service]
ExecStart=/bin/sh -c "while true; do echo Hello World; sleep 1; done"
`

const webTemplate = `[Unit]
Description=web %i

[Service]
ExecStart=/bin/true

[X-Fleet]
Conflicts=web@*.service
`

const globalFile = `[Service]
ExecStart=/bin/true

[X-Fleet]
Global=true
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantResult(t *testing.T, got result, code int, stdout, stderr string) {
	t.Helper()
	if got.code != code || got.stdout != stdout || got.stderr != stderr {
		t.Fatalf("got code %d\nstdout: %q\nstderr: %q\nwant code %d\nstdout: %q\nstderr: %q",
			got.code, got.stdout, got.stderr, code, stdout, stderr)
	}
}

func TestUnitNameHandling(t *testing.T) {
	for _, tc := range []struct{ arg, name, path, tmpl string }{
		{"foo", "foo.service", "foo.service", ""},
		{"foo.service", "foo.service", "foo.service", ""},
		{"dir/sub/foo.socket", "foo.socket", "dir/sub/foo.socket", ""},
		{"/abs/web@1", "web@1.service", "/abs/web@1.service", "web@.service"},
		{"web@1.service", "web@1.service", "web@1.service", "web@.service"},
		{"web@.service", "web@.service", "web@.service", ""},
		{"foo.bar", "foo.bar.service", "foo.bar.service", ""},
		{"a@b.timer", "a@b.timer", "a@b.timer", "a@.timer"},
		{"x.target", "x.target.service", "x.target.service", ""},
	} {
		if got := unitName(tc.arg); got != tc.name {
			t.Errorf("unitName(%q) = %q, want %q", tc.arg, got, tc.name)
		}
		if got := unitArgPath(tc.arg); got != tc.path {
			t.Errorf("unitArgPath(%q) = %q, want %q", tc.arg, got, tc.path)
		}
		if got := templateOf(unitName(tc.arg)); got != tc.tmpl {
			t.Errorf("templateOf(%q) = %q, want %q", tc.arg, got, tc.tmpl)
		}
	}
}

func TestFindLocalUnit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web@.service", webTemplate)
	writeFile(t, dir, "hello.service", helloFile)
	writeFile(t, dir, "web@9.service", helloFile)

	lu, err := findLocalUnit(filepath.Join(dir, "web@1"))
	if err != nil || lu == nil || !lu.template || lu.path != filepath.Join(dir, "web@.service") {
		t.Fatalf("instance from template: %+v, %v", lu, err)
	}
	if lu.options[0] != (fleet.UnitOption{Section: "Unit", Name: "Description", Value: "web %i"}) {
		t.Fatalf("template options verbatim: %+v", lu.options)
	}
	lu, err = findLocalUnit(filepath.Join(dir, "web@9.service"))
	if err != nil || lu == nil || lu.template {
		t.Fatalf("own instance file wins: %+v, %v", lu, err)
	}
	lu, err = findLocalUnit(filepath.Join(dir, "hello"))
	if err != nil || lu == nil || lu.path != filepath.Join(dir, "hello.service") {
		t.Fatalf("suffix appended: %+v, %v", lu, err)
	}
	lu, err = findLocalUnit(filepath.Join(dir, "nothing"))
	if err != nil || lu != nil {
		t.Fatalf("missing: %+v, %v", lu, err)
	}
	lu, err = findLocalUnit(filepath.Join(t.TempDir(), "web@1"))
	if err != nil || lu != nil {
		t.Fatalf("template elsewhere: %+v, %v", lu, err)
	}
}

func TestNormalizeArgs(t *testing.T) {
	a := newApp(context.Background(), nil, nil, nil, nil)
	root := a.newRoot()
	for _, tc := range []struct{ in, out []string }{
		{[]string{"list-m"}, []string{"list-machines"}},
		{[]string{"list-unit-f", "-l"}, []string{"list-unit-files", "-l"}},
		{[]string{"list"}, []string{"list"}}, // ambiguous
		{[]string{"st"}, []string{"st"}},     // start, status, stop
		{[]string{"sta", "x"}, []string{"sta", "x"}},
		{[]string{"star", "x"}, []string{"start", "x"}},
		{[]string{"--endpoint", "http://x", "list-units", "-fields=unit", "-no-legend"},
			[]string{"--endpoint", "http://x", "list-units", "--fields=unit", "--no-legend"}},
		{[]string{"-endpoint=http://x", "list-units"}, []string{"--endpoint=http://x", "list-units"}},
		{[]string{"--debug", "list-units"}, []string{"--debug", "list-units"}},
		{[]string{"journal", "-f", "-lines=3", "x"}, []string{"journal", "-f", "--lines=3", "x"}},
		{[]string{"ssh", "m", "--", "-fields"}, []string{"ssh", "m", "--", "-fields"}},
		{[]string{"start", "-bogus", "x"}, []string{"start", "-bogus", "x"}},
		{[]string{"he"}, []string{"help"}},
	} {
		got := normalizeArgs(root, tc.in)
		if !reflect.DeepEqual(got, tc.out) {
			t.Errorf("normalizeArgs(%q) = %q, want %q", tc.in, got, tc.out)
		}
	}
}

func TestFlagAndEnvPrecedence(t *testing.T) {
	fa := newFakeCluster(t)
	fb := newFakeCluster(t)
	fb.machines = fb.machines[1:]
	env := []string{"FLEETCTL_ENDPOINT=" + fa.srv.URL}

	r := runCLI(t, context.Background(), env, "list-m", "-no-legend")
	wantResult(t, r, 0, "22222222...\t127.0.0.2\t-\n3d1219c7...\t127.0.0.1\tregion=us-east-1\n", "")

	r = runCLI(t, context.Background(), env, "--endpoint", fb.srv.URL, "list-machines", "--no-legend")
	wantResult(t, r, 0, "22222222...\t127.0.0.2\t-\n", "")

	// a global flag after the command works too
	r = runCLI(t, context.Background(), env, "list-machines", "--no-legend", "--endpoint="+fb.srv.URL)
	wantResult(t, r, 0, "22222222...\t127.0.0.2\t-\n", "")

	r = runCLI(t, context.Background(), []string{"FLEETCTL_DRIVER=etcd", "FLEETCTL_ENDPOINT=" + fa.srv.URL}, "list-machines")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "Unable to initialize client: the \"etcd\" driver is not supported") {
		t.Fatalf("etcd driver from env: %+v", r)
	}
	r = runCLI(t, context.Background(), []string{"FLEETCTL_DRIVER=etcd", "FLEETCTL_ENDPOINT=" + fa.srv.URL}, "--driver=API", "list-machines", "--no-legend")
	if r.code != 0 {
		t.Fatalf("flag beats env: %+v", r)
	}
	r = runCLI(t, context.Background(), []string{"FLEETCTL_DRIVER=bogus", "FLEETCTL_ENDPOINT=" + fa.srv.URL}, "list-machines")
	wantResult(t, r, 1, "", "Unable to initialize client: unrecognized driver \"bogus\"\n")

	r = runCLI(t, context.Background(), []string{"FLEETCTL_REQUEST_TIMEOUT=abc"}, "list-machines")
	if r.code != 1 || !strings.Contains(r.stderr, `invalid value "abc" for FLEETCTL_REQUEST_TIMEOUT`) {
		t.Fatalf("bad env value: %+v", r)
	}
	r = runCLI(t, context.Background(), nil, "--endpoint", "unix://var/run/fleet.sock", "list-units")
	wantResult(t, r, 1, "", "Unable to initialize client: unable to connect to host \"var\" with scheme \"unix\"\n")
}

func TestListFlagsSpellings(t *testing.T) {
	f := newFakeCluster(t)
	f.addUnit(client.Unit{Name: "a.service", Options: opts("Service", "ExecStart", "/bin/true"), DesiredState: "launched"})
	full := "a.service\t" + m1 + "/127.0.0.1\tactive\trunning\n"
	short := "a.service\t3d1219c7.../127.0.0.1\tactive\trunning\n"
	for _, args := range [][]string{
		{"list-units", "-l", "--no-legend"},
		{"list-units", "--full", "--no-legend"},
		{"list-units", "--l", "--no-legend"},
		{"list-units", "-full", "-no-legend"},
	} {
		wantResult(t, f.run(t, nil, args...), 0, full, "")
	}
	wantResult(t, f.run(t, nil, "list-units", "-no-legend"), 0, short, "")
	wantResult(t, f.run(t, nil, "list-units", "-fields=unit", "-no-legend"), 0, "a.service\n", "")
	wantResult(t, f.run(t, nil, "list-units", "--fields=unit,bogus"), 1, "", "Invalid key in output format: \"bogus\"\n")
	wantResult(t, f.run(t, nil, "list-units", "--fields="), 1, "", "Must define output format\n")
	r := f.run(t, nil, "list-units", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"machine": "`+m1+`"`) || !strings.Contains(r.stdout, `"ip": "127.0.0.1"`) {
		t.Fatalf("json: %+v", r)
	}
	r = f.run(t, nil, "list-unit-files", "--output=json")
	if r.code != 0 || !strings.Contains(r.stdout, `"dstate": "launched"`) {
		t.Fatalf("json: %+v", r)
	}
	r = f.run(t, nil, "list-units", "--bogus")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "Error: unknown flag: --bogus\nUSAGE:\n\tfleetctl list-units") {
		t.Fatalf("unknown flag: %+v", r)
	}
}

func TestListUnitFilesFollowsPages(t *testing.T) {
	f := newFakeCluster(t)
	f.pageSize = 2
	for _, n := range []string{"a", "b", "c", "d"} {
		f.addUnit(client.Unit{Name: n + ".service", Options: opts("Service", "ExecStart", "/bin/true")})
	}
	r := f.run(t, nil, "list-unit-files", "--fields=unit,dstate,state,target", "--no-legend")
	wantResult(t, r, 0,
		"a.service\tinactive\tinactive\t-\nb.service\tinactive\tinactive\t-\nc.service\tinactive\tinactive\t-\nd.service\tinactive\tinactive\t-\n", "")
	if n := f.count("GET /fleet/v1/units"); n != 3 {
		t.Fatalf("%d GET /units, want 3 (2+2+empty page): %v", n, f.requests())
	}
}

func TestListUnitFilesGlobalCounts(t *testing.T) {
	f := newFakeCluster(t)
	f.addUnit(client.Unit{Name: "g.service", Options: opts("Service", "ExecStart", "/bin/true", "X-Fleet", "Global", "true"), DesiredState: "launched"})
	f.states["g.service"] = []client.UnitState{
		{Name: "g.service", MachineID: m1, SystemdActiveState: "active"},
		{Name: "g.service", MachineID: m2, SystemdActiveState: "active"},
	}
	r := f.run(t, nil, "list-unit-files", "--fields=unit,dstate,state,target,global", "--no-legend")
	wantResult(t, r, 0, "g.service\tlaunched\tlaunched(2)\tglobal\ttrue\n", "")
}

func TestSubmitFromLocalFile(t *testing.T) {
	f := newFakeCluster(t)
	dir := t.TempDir()
	p := writeFile(t, dir, "hello.service", helloFile)
	r := f.run(t, nil, "submit", p)
	wantResult(t, r, 0, "Unit hello.service inactive\n", "")
	u := f.unit("hello.service")
	if u == nil || u.DesiredState != "inactive" || len(u.Options) != 2 || u.Options[1].Value != `/bin/sh -c "while true; do echo Hello World; sleep 1; done"` {
		t.Fatalf("stored unit %+v", u)
	}
	// idempotent
	wantResult(t, f.run(t, nil, "submit", p), 0, "", "")
	// local file changed: warning, no change
	writeFile(t, dir, "hello.service", strings.Replace(helloFile, "Hello World", "Hello", 1))
	wantResult(t, f.run(t, nil, "submit", p), 0, "",
		"WARNING: Unit hello.service in registry differs from local unit file "+p+". Add --replace to override.\n")
	// --replace overwrites while inactive
	r = f.run(t, nil, "submit", "--replace", p)
	wantResult(t, r, 0, "Unit hello.service inactive\n", "")
	if got := f.unit("hello.service").Options[0].Value; got != "Hello" {
		t.Fatalf("not replaced: %q", got)
	}
	// --replace refused for a launched unit on submit
	f.addUnit(client.Unit{Name: "run.service", Options: opts("Service", "ExecStart", "/bin/true"), DesiredState: "launched"})
	rp := writeFile(t, dir, "run.service", "[Service]\nExecStart=/bin/false\n")
	wantResult(t, f.run(t, nil, "submit", "--replace", rp), 0, "",
		"Warning: can not replace Unit(run.service) in state 'launched', use the appropriate command\n")

	wantResult(t, f.run(t, nil, "submit", filepath.Join(dir, "missing")), 1, "",
		"Error creating units: unable to find Unit(missing.service) in Registry or on filesystem\n")
	wantResult(t, f.run(t, nil, "submit"), 0, "", "No units given\n")
	wantResult(t, f.run(t, nil, "submit", "--sign", p), 2, "", "WARNING: The signed/verified units feature is DEPRECATED and cannot be used.\n")
}

func TestStartInstanceFromLocalTemplate(t *testing.T) {
	f := newFakeCluster(t)
	dir := t.TempDir()
	writeFile(t, dir, "web@.service", webTemplate)
	r := f.run(t, nil, "start", filepath.Join(dir, "web@1"))
	wantResult(t, r, 0, "Unit web@1.service launched on 3d1219c7.../127.0.0.1\n", "")
	u := f.unit("web@1.service")
	if u == nil || u.Options[0].Value != "web %i" || u.DesiredState != "launched" {
		t.Fatalf("instance %+v", u)
	}
	if f.unit("web@.service") != nil {
		t.Fatal("template must not be submitted by starting an instance")
	}
}

func TestStartInstanceFromRegistryTemplate(t *testing.T) {
	f := newFakeCluster(t)
	f.addUnit(client.Unit{Name: "web@.service", Options: opts("Unit", "Description", "from registry", "Service", "ExecStart", "/bin/true")})
	r := f.run(t, nil, "start", "web@2")
	wantResult(t, r, 0, "Unit web@2.service launched on 3d1219c7.../127.0.0.1\n", "")
	if got := f.unit("web@2.service"); got == nil || unitHash(*got) != unitHash(*f.unit("web@.service")) {
		t.Fatalf("instance must share the template's hash: %+v", got)
	}
	// starting the template itself is refused by the API
	r = f.run(t, nil, "start", "web@.service")
	wantResult(t, r, 1, "", "Error starting units: googleapi: Error 400: cannot activate template \"web@.service\"\n")
}

func TestStartNoBlockAndGlobal(t *testing.T) {
	f := newFakeCluster(t)
	dir := t.TempDir()
	p := writeFile(t, dir, "hello.service", helloFile)
	g := writeFile(t, dir, "glob.service", globalFile)
	r := f.run(t, nil, "start", "--no-block", p, g)
	wantResult(t, r, 0, "Triggered global unit glob.service start\nTriggered unit hello.service start\n", "")
	r = f.run(t, nil, "load", g)
	wantResult(t, r, 0, "Triggered global unit glob.service load\n", "")
	r = f.run(t, nil, "stop", g)
	wantResult(t, r, 0, "Triggered global unit glob.service stop\n", "")
}

func TestStartPrintsReasonAndTimesOut(t *testing.T) {
	f := newFakeCluster(t)
	f.schedule = func(u *client.Unit) {} // nothing can be placed
	f.reasons["web@4.service"] = fleet.Reason{Unit: "web@4.service", Summary: "no machine can run web@4.service: conflicts with web@1.service on 3d1219c7"}
	f.addUnit(client.Unit{Name: "web@4.service", Options: opts("Service", "ExecStart", "/bin/true")})
	r := f.run(t, nil, "start", "--block-attempts=3", "web@4")
	wantResult(t, r, 1, "",
		"Unit web@4.service cannot be scheduled: no machine can run web@4.service: conflicts with web@1.service on 3d1219c7\n"+
			"Error waiting for units: timed out waiting for unit web@4.service to report state launched\n")
	if n := f.count("GET /fleet/v1/reasons/web@4.service"); n < 2 {
		t.Fatalf("reason asked %d times; the message must still be printed once", n)
	}
}

func TestStartWaitsForActiveBeyondOneWindow(t *testing.T) {
	f := newFakeCluster(t)
	// systemd reports "activating" for the first 30 state requests
	// (≈150 ms, several 40 ms windows): fleet gave up after one window.
	f.stateHook = func(n int, states []client.UnitState) []client.UnitState {
		if n > 30 {
			return states
		}
		out := append([]client.UnitState(nil), states...)
		for i := range out {
			out[i].SystemdActiveState, out[i].SystemdSubState = "activating", "start-pre"
		}
		return out
	}
	dir := t.TempDir()
	p := writeFile(t, dir, "hello.service", helloFile)
	r := f.run(t, nil, "start", p)
	wantResult(t, r, 0, "Unit hello.service launched on 3d1219c7.../127.0.0.1\n", "")
	if n := f.count("GET /fleet/v1/state"); n <= 30 {
		t.Fatalf("returned before active: %d state requests", n)
	}

	// with attempts, the systemd wait is bounded too
	f2 := newFakeCluster(t)
	f2.stateHook = func(n int, states []client.UnitState) []client.UnitState {
		out := append([]client.UnitState(nil), states...)
		for i := range out {
			out[i].SystemdActiveState, out[i].SystemdSubState = "activating", "start-pre"
		}
		return out
	}
	r = f2.run(t, nil, "start", "--block-attempts=2", p)
	wantResult(t, r, 1, "Unit hello.service launched on 3d1219c7.../127.0.0.1\n",
		"Error waiting for systemd unit states: timed out waiting for unit hello.service to become active (now loaded/activating/start-pre)\n")
}

func TestStartReportsFailedUnit(t *testing.T) {
	f := newFakeCluster(t)
	f.stateHook = func(n int, states []client.UnitState) []client.UnitState {
		out := append([]client.UnitState(nil), states...)
		for i := range out {
			out[i].SystemdActiveState, out[i].SystemdSubState = "failed", "failed"
		}
		return out
	}
	dir := t.TempDir()
	p := writeFile(t, dir, "hello.service", helloFile)
	r := f.run(t, nil, "start", p)
	if r.code != 1 || !strings.Contains(r.stderr, "unit hello.service failed on 3d1219c7.../127.0.0.1 (failed/failed)") {
		t.Fatalf("%+v", r)
	}
}

func TestStopUnloadDestroy(t *testing.T) {
	f := newFakeCluster(t)
	f.addUnit(client.Unit{Name: "a.service", Options: opts("Service", "ExecStart", "/bin/true"), DesiredState: "launched"})
	f.addUnit(client.Unit{Name: "b.service", Options: opts("Service", "ExecStart", "/bin/false")})

	wantResult(t, f.run(t, nil, "stop", "a", "b"), 1,
		"Unit a.service loaded on 3d1219c7.../127.0.0.1\n",
		"Unable to stop unit b.service in state inactive\nSuccessfully stopped units [a.service].\n")
	wantResult(t, f.run(t, nil, "stop", "--no-block", "a"), 0, "Triggered unit a.service stop\n", "")
	wantResult(t, f.run(t, nil, "unload", "a"), 0, "Unit a.service inactive\n", "")
	wantResult(t, f.run(t, nil, "unload", "nope"), 0, "", "Unit nope.service does not exist.\n")
	wantResult(t, f.run(t, nil, "destroy", "a", "nope", "b.service"), 0, "Destroyed a.service\nDestroyed b.service\n", "")
	if f.unit("a.service") != nil || f.unit("b.service") != nil {
		t.Fatal("not destroyed")
	}
	// destroy waits for disappearance (blocking is the default)
	if n := f.count("GET /fleet/v1/units/a.service"); n == 0 {
		t.Fatalf("destroy did not wait: %v", f.requests())
	}
	wantResult(t, f.run(t, nil, "destroy"), 0, "", "No units given\n")
}

func TestRestart(t *testing.T) {
	f := newFakeCluster(t)
	f.addUnit(client.Unit{Name: "a.service", Options: opts("Service", "ExecStart", "/bin/true"), DesiredState: "launched"})
	f.addUnit(client.Unit{Name: "l.service", Options: opts("Service", "ExecStart", "/bin/true"), DesiredState: "loaded"})
	f.addUnit(client.Unit{Name: "i.service", Options: opts("Service", "ExecStart", "/bin/true")})
	r := f.run(t, nil, "restart", "a", "l", "i")
	wantResult(t, r, 1,
		"Unit a.service loaded on 3d1219c7.../127.0.0.1\nUnit a.service launched on 3d1219c7.../127.0.0.1\nUnit l.service launched on 3d1219c7.../127.0.0.1\n",
		"Unable to restart unit i.service in state inactive\n")
	var puts []string
	f.mu.Lock()
	for i, req := range f.reqs {
		if strings.HasPrefix(req, "PUT ") {
			puts = append(puts, f.bodies[i])
		}
	}
	f.mu.Unlock()
	want := []string{
		`{"name":"a.service","desiredState":"loaded"}`,
		`{"name":"a.service","desiredState":"launched"}`,
		`{"name":"l.service","desiredState":"launched"}`,
	}
	if !reflect.DeepEqual(puts, want) {
		t.Fatalf("PUTs %q, want %q", puts, want)
	}
}

func TestCatStatusJournal(t *testing.T) {
	f := newFakeCluster(t)
	f.addUnit(client.Unit{Name: "a.service", Options: opts("Unit", "Description", "A", "Service", "ExecStart", "/bin/true", "Unit", "After", "x.service"), DesiredState: "launched"})
	f.addUnit(client.Unit{Name: "g.service", Options: opts("Service", "ExecStart", "/bin/true", "X-Fleet", "Global", "true"), DesiredState: "launched"})
	f.addUnit(client.Unit{Name: "i.service", Options: opts("Service", "ExecStart", "/bin/true")})
	f.statuses["a.service"] = []client.StatusEntry{{MachineID: m1, Text: "● a.service - A\n   Active: active (running)\n"}}
	f.statuses["g.service"] = []client.StatusEntry{
		{MachineID: m2, Text: "● g.service\n"},
		{MachineID: m1, Text: "● g.service\n"},
	}
	f.journal = "Nov 11 05:22:51 core04 systemd[1]: Started A."

	wantResult(t, f.run(t, nil, "cat", "a"), 0, "[Unit]\nDescription=A\nAfter=x.service\n\n[Service]\nExecStart=/bin/true\n", "")
	wantResult(t, f.run(t, nil, "cat", "nope"), 1, "", "Unit nope.service not found\n")
	wantResult(t, f.run(t, nil, "cat"), 1, "", "One unit file must be provided\n")

	wantResult(t, f.run(t, nil, "status", "a"), 0, "● a.service - A\n   Active: active (running)\n", "")
	wantResult(t, f.run(t, nil, "status", "g"), 0,
		"22222222.../127.0.0.2\n● g.service\n\n3d1219c7.../127.0.0.1\n● g.service\n", "")
	wantResult(t, f.run(t, nil, "status", "g", "--machine", m1), 0, "3d1219c7.../127.0.0.1\n● g.service\n", "")
	wantResult(t, f.run(t, nil, "status", "i", "nope"), 1, "",
		"Unit i.service does not appear to be loaded.\nUnit nope.service does not exist.\n")

	wantResult(t, f.run(t, nil, "journal", "a"), 0,
		"Nov 11 05:22:51 core04 systemd[1]: Started A.[alt=json&follow=false&lines=10&output=short]\n", "")
	wantResult(t, f.run(t, nil, "journal", "-f", "-n", "3", "--output", "cat", "--machine", m2, "g"), 0,
		"Nov 11 05:22:51 core04 systemd[1]: Started A.[alt=json&follow=true&lines=3&machineID="+m2+"&output=cat]\n", "")
	wantResult(t, f.run(t, nil, "journal", "--follow", "--lines=5", "a"), 0,
		"Nov 11 05:22:51 core04 systemd[1]: Started A.[alt=json&follow=true&lines=5&output=short]\n", "")
	wantResult(t, f.run(t, nil, "journal", "nope"), 1, "", "Unit nope.service does not exist.\n")
}

func TestMiscCommands(t *testing.T) {
	r := runCLI(t, context.Background(), nil, "verify")
	wantResult(t, r, 1, "", "One or more unit files must be provided.\n")
	r = runCLI(t, context.Background(), nil, "ssh", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "without SSH") || !strings.Contains(r.stderr, "fleetctl journal") {
		t.Fatalf("ssh: %+v", r)
	}
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}, {"list-units", "--version"}} {
		r = runCLI(t, context.Background(), nil, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "fleetctl version ") {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	r = runCLI(t, context.Background(), nil)
	if r.code != 0 || !strings.Contains(r.stdout, "NAME:\n\tfleetctl - ") || !strings.Contains(r.stdout, "\tlist-machines\t") {
		t.Fatalf("no args: %+v", r)
	}
	r = runCLI(t, context.Background(), nil, "help", "list-unit-f")
	if r.code != 0 || !strings.Contains(r.stdout, "USAGE:\n\tfleetctl list-unit-files [-l|--full]") {
		t.Fatalf("help: %+v", r)
	}
	r = runCLI(t, context.Background(), nil, "start", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--block-attempts=0") {
		t.Fatalf("--help: %+v", r)
	}
	r = runCLI(t, context.Background(), nil, "bogus")
	wantResult(t, r, 1, "", "Error: unknown command \"bogus\" for \"fleetctl\"\nRun 'fleetctl help' for usage.\n")
}

func TestWaitEndsWithContext(t *testing.T) {
	f := newFakeCluster(t)
	f.schedule = func(u *client.Unit) {}
	f.addUnit(client.Unit{Name: "x.service", Options: opts("Service", "ExecStart", "/bin/true")})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := runCLI(t, ctx, []string{"FLEETCTL_ENDPOINT=" + f.srv.URL}, "start", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "Error waiting for units: context deadline exceeded") {
		t.Fatalf("%+v", r)
	}
}

func TestStartReplace(t *testing.T) {
	f := newFakeCluster(t)
	f.addUnit(client.Unit{Name: "hello.service", Options: opts("Service", "ExecStart", "/bin/old"), DesiredState: "launched"})
	dir := t.TempDir()
	p := writeFile(t, dir, "hello.service", helloFile)

	r := f.run(t, nil, "start", p)
	wantResult(t, r, 0, "Unit hello.service launched on 3d1219c7.../127.0.0.1\n",
		"WARNING: Unit hello.service in registry differs from local unit file "+p+". Add --replace to override.\n")
	if f.unit("hello.service").Options[0].Value != "/bin/old" {
		t.Fatal("replaced without --replace")
	}
	r = f.run(t, nil, "start", "--replace", p)
	wantResult(t, r, 0, "Unit hello.service launched on 3d1219c7.../127.0.0.1\n", "")
	u := f.unit("hello.service")
	if u.Options[0].Value != "Hello World" || u.DesiredState != "launched" {
		t.Fatalf("after --replace: %+v", u)
	}
	r = f.run(t, nil, "start", "--replace", p)
	wantResult(t, r, 0, "Found same Unit(hello.service) in Registry, nothing to do\nUnit hello.service launched on 3d1219c7.../127.0.0.1\n", "")
	// load may not replace a launched unit
	writeFile(t, dir, "hello.service", "[Service]\nExecStart=/bin/new\n")
	r = f.run(t, nil, "load", "--replace", "--no-block", p)
	wantResult(t, r, 0, "Triggered unit hello.service load\n",
		"Warning: can not replace Unit(hello.service) in state 'launched', use the appropriate command\n")
}
