package e2e

// The five seed tutorials (/work/shared/seeds), replayed on a testcluster:
// the same fleetctl sequences, with Docker swapped for plain processes and
// the tutorials' other lines (ExecStartPre=- that fails, ExecStop, %i,
// [Install], After=/Requires= on units that don't exist here, X-Conflicts,
// MachineOf, metadata) kept. Each test asserts the output the tutorial
// shows, with our machines' legends and IPs in place of theirs.

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// fleetTable renders rows the way fleetctl does: text/tabwriter with
// minwidth 0, tabwidth 8, padding 1 and TAB as the padding character. A
// nil header is --no-legend.
func fleetTable(header []string, rows [][]string) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 1, '\t', 0)
	if header != nil {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	return b.String()
}

var (
	machinesHeader  = []string{"MACHINE", "IP", "METADATA"}
	unitFilesHeader = []string{"UNIT", "HASH", "DSTATE", "STATE", "TARGET"}
	unitsHeader     = []string{"UNIT", "MACHINE", "ACTIVE", "SUB"}
)

// machineIP is the public IP testcluster gives machine m.
func machineIP(m *testcluster.Machine) string {
	return fmt.Sprintf("127.0.0.%d", m.Index+1)
}

// legend is fleetctl's machine column: "3d1219c7.../127.0.0.1".
func legend(m *testcluster.Machine) string {
	return m.ID[:8] + ".../" + machineIP(m)
}

// fileHash is the fleet hash of a unit file already in fleet's canonical
// serialization (sections in order, one blank line between them, no
// comments, no trailing blank line): the SHA1 of its bytes.
func fileHash(body string) string {
	sum := sha1.Sum([]byte(body))
	return hex.EncodeToString(sum[:])
}

// listMachinesTable is the expected list-machines output (rows by ID).
func listMachinesTable(c *testcluster.Cluster, full bool) string {
	ms := slices.Clone(c.Machines)
	slices.SortFunc(ms, func(a, b *testcluster.Machine) int { return strings.Compare(a.ID, b.ID) })
	var rows [][]string
	for _, m := range ms {
		id := m.ID[:8] + "..."
		if full {
			id = m.ID
		}
		md := m.Metadata
		if md == "" {
			md = "-"
		}
		rows = append(rows, []string{id, machineIP(m), md})
	}
	return fleetTable(machinesHeader, rows)
}

// placement records which machine each unit runs on, as fleetctl said.
type placement map[string]*testcluster.Machine

var startedLine = regexp.MustCompile(`^Unit (\S+) (launched|loaded) on (\S+)$`)

// parsePlacements checks that out is exactly one "Unit X <state> on
// <legend>" line per unit (in any order) and records where each went.
func parsePlacements(t *testing.T, c *testcluster.Cluster, out, state string, units []string, where placement) {
	t.Helper()
	byLegend := map[string]*testcluster.Machine{}
	for _, m := range c.Machines {
		byLegend[legend(m)] = m
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		mm := startedLine.FindStringSubmatch(l)
		if mm == nil || mm[2] != state {
			t.Errorf("line %q is not `Unit X %s on <machine legend>`; output:\n%s", l, state, out)
			continue
		}
		m, ok := byLegend[mm[3]]
		if !ok {
			t.Errorf("line %q names no machine of ours (legends are like %s)", l, legend(c.Machines[0]))
			continue
		}
		if !slices.Contains(units, mm[1]) || seen[mm[1]] {
			t.Errorf("unexpected or repeated unit in %q; output:\n%s", l, out)
			continue
		}
		seen[mm[1]] = true
		if prev, ok := where[mm[1]]; ok && prev != m {
			t.Errorf("%s moved from %s to %s", mm[1], legend(prev), legend(m))
		}
		where[mm[1]] = m
	}
	if len(seen) != len(units) {
		t.Errorf("expected one %q line for each of %v, got:\n%s", state, units, out)
	}
}

// startUnits runs `fleetctl start args...` and checks its output names
// each unit as launched on one of our machines.
func startUnits(t *testing.T, c *testcluster.Cluster, where placement, args ...string) {
	t.Helper()
	began := time.Now()
	out, errOut, code := c.Fleetctl(append([]string{"start"}, args...)...)
	t.Logf("fleetctl start %s: %v", strings.Join(args, " "), time.Since(began).Round(time.Millisecond))
	if code != 0 {
		for _, u := range unitNamesOf(args) {
			st, stErr, _ := c.Fleetctl("status", u)
			t.Logf("status %s:\n%s%s", u, st, stErr)
		}
		t.Fatalf("fleetctl start %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	parsePlacements(t, c, out, "launched", unitNamesOf(args), where)
}

// unitNamesOf is fleetctl's argument-to-name rule for the args used here.
func unitNamesOf(args []string) []string {
	var names []string
	for _, a := range args {
		n := a[strings.LastIndex(a, "/")+1:]
		if !strings.Contains(n, ".") {
			n += ".service"
		}
		names = append(names, n)
	}
	return names
}

// activeTable is the expected list-units output with every unit in where
// active/running (rows by unit name).
func activeTable(where placement) string {
	var rows [][]string
	for u, m := range where {
		rows = append(rows, []string{u, legend(m), "active", "running"})
	}
	slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return fleetTable(unitsHeader, rows)
}

// awaitOutput polls `fleetctl args...` until its stdout equals want.
func awaitOutput(t *testing.T, c *testcluster.Cluster, want string, args ...string) {
	t.Helper()
	began := time.Now()
	c.Await("fleetctl "+strings.Join(args, " ")+" to print:\n"+want, 60*time.Second, func() (bool, string) {
		out, errOut, code := c.Fleetctl(args...)
		return code == 0 && out == want, fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
	})
	t.Logf("fleetctl %s as expected after %v", strings.Join(args, " "), time.Since(began).Round(time.Millisecond))
}

// awaitJournal polls `fleetctl journal args...` until it contains every
// one of lines (as line suffixes: the prefix is date, host and process).
func awaitJournal(t *testing.T, c *testcluster.Cluster, args []string, lines ...string) string {
	t.Helper()
	var out string
	began := time.Now()
	c.Await(fmt.Sprintf("journal %v to show %q", args, lines), 30*time.Second, func() (bool, string) {
		var errOut string
		var code int
		out, errOut, code = c.Fleetctl(append([]string{"journal"}, args...)...)
		if code != 0 {
			return false, fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range lines {
			if !hasLineSuffix(out, want) {
				return false, out
			}
		}
		return true, out
	})
	t.Logf("journal %v complete after %v", args, time.Since(began).Round(time.Millisecond))
	return out
}

func hasLineSuffix(text, suffix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}

// destroyAll runs `fleetctl destroy names...` and checks "Destroyed X" for
// each, in order.
func destroyAll(t *testing.T, c *testcluster.Cluster, names ...string) {
	t.Helper()
	out := c.MustFleetctl(append([]string{"destroy"}, names...)...)
	var want strings.Builder
	for _, n := range names {
		fmt.Fprintf(&want, "Destroyed %s\n", n)
	}
	if out != want.String() {
		t.Errorf("destroy %v printed:\n%s\nwant:\n%s", names, out, want.String())
	}
}

// statusHas reports whether status has a line "  Label: valuePrefix...".
func statusHas(status, label, valuePrefix string) bool {
	for _, l := range strings.Split(status, "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " "), label+": "+valuePrefix) {
			return true
		}
	}
	return false
}

func noSSH(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"SSH", "ssh", "authenticity", "known hosts", "ECDSA"} {
		if strings.Contains(out, bad) {
			t.Errorf("output mentions %q (fleetctl must not need SSH):\n%s", bad, out)
		}
	}
}

// ---- seed 000: CentOS 7 cluster, test.service with metadata ----

// test.service from seed 000, in fleet's canonical form: the docker kill
// and rm pre-steps that fail (status=1/FAILURE, ignored thanks to "-"),
// docker pull, and the busybox loop run directly.
const seed000Test = `[Unit]
Description=MyTestApp
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/bin/false
ExecStartPre=-/bin/false
ExecStartPre=/bin/true
ExecStart=/bin/sh -c "while true; do echo Hello World; sleep 1; done"
ExecStop=/bin/true
`

func TestSeed000CentOSTestService(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 2, testcluster.Options{
		Metadata: []string{
			"az=eu-central-1a,region=eu-central-1",
			"az=eu-central-1b,region=eu-central-1",
		},
	})
	dir := t.TempDir()

	// $ fleetctl list-machines -l
	// The seed's columns, as it printed them; -l also shows each machine's
	// capacity (issue 12), which the tutorial's fleet did not have.
	out := c.MustFleetctl("list-machines", "-l", "--fields", "machine,ip,metadata")
	if want := listMachinesTable(c, true); out != want {
		t.Errorf("list-machines -l --fields machine,ip,metadata:\n%q\nwant:\n%q", out, want)
	}
	if long := c.MustFleetctl("list-machines", "-l"); !strings.HasPrefix(long, "MACHINE\t\t\t\t\tIP\t\tMETADATA\t") || !strings.Contains(long, "CAPACITY") {
		t.Errorf("list-machines -l:\n%q\nwant fleet's columns, then CAPACITY", long)
	}

	// $ /usr/local/bin/fleetctl start /root/test.service
	path := writeUnit(t, dir, "test.service", seed000Test)
	where := placement{}
	startUnits(t, c, where, path)
	m := where["test.service"]
	if m == nil {
		t.Fatalf("no placement for test.service")
	}

	// $ /usr/local/bin/fleetctl status test.service — no SSH prompt, the
	// systemctl status text and the unit's last journal lines.
	var status string
	c.Await("status test.service with journal lines", 30*time.Second, func() (bool, string) {
		var errOut string
		var code int
		status, errOut, code = c.Fleetctl("status", "test.service")
		return code == 0 && strings.Count(status, "Hello World\n") >= 3, status + errOut
	})
	t.Logf("status test.service:\n%s", status)
	noSSH(t, status)
	if !strings.HasPrefix(strings.TrimLeft(status, "● "), "test.service - MyTestApp\n") {
		t.Errorf("status does not start with the unit and its description:\n%s", status)
	}
	if !statusHas(status, "Loaded", "loaded (") {
		t.Errorf("status lacks `Loaded: loaded (...)`:\n%s", status)
	}
	if !statusHas(status, "Active", "active (running) since ") {
		t.Errorf("status lacks `Active: active (running) since ...`:\n%s", status)
	}
	failed := regexp.MustCompile(`(?m)^ *Process: \d+ ExecStartPre=/bin/false \(code=exited, status=1/FAILURE\)$`)
	if n := len(failed.FindAllString(status, -1)); n != 2 {
		t.Errorf("status shows %d failed ExecStartPre=/bin/false lines, want 2 (the seed's docker kill/rm):\n%s", n, status)
	}
	ok := regexp.MustCompile(`(?m)^ *Process: \d+ ExecStartPre=/bin/true \(code=exited, status=0/SUCCESS\)$`)
	if !ok.MatchString(status) {
		t.Errorf("status lacks the successful ExecStartPre (the seed's docker pull):\n%s", status)
	}
	mainPID := regexp.MustCompile(`(?m)^ *Main PID: (\d+) \(sh\)$`).FindStringSubmatch(status)
	if mainPID == nil {
		t.Errorf("status lacks `Main PID: N (sh)`:\n%s", status)
	} else if !strings.Contains(status, "─"+mainPID[1]+" /bin/sh -c while true; do echo Hello World; sleep 1; done\n") {
		t.Errorf("status CGroup lacks the main process line:\n%s", status)
	}
	// The journal part: a blank line, then lines ending in "Hello World".
	if _, tail, found := strings.Cut(status, "\n\n"); !found || !hasLineSuffix(tail, ": Hello World") {
		t.Errorf("status has no journal part after a blank line:\n%s", status)
	}

	// journal of the remote unit, also without SSH.
	jout := awaitJournal(t, c, []string{"test.service"}, "Hello World")
	noSSH(t, jout)

	// The unit runs on a machine that has the seed's metadata.
	out = c.MustFleetctl("list-units")
	if want := activeTable(where); out != want {
		t.Errorf("list-units:\n%q\nwant:\n%q", out, want)
	}
	t.Logf("test.service on %s (metadata %s)", legend(m), m.Metadata)
}

// ---- seed 001: nginx@.service with Conflicts on a 2-machine cluster ----

const seed001Nginx = `[Unit]
Description=Nginx-frontend
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/bin/false
ExecStartPre=-/bin/false
ExecStartPre=/bin/echo docker pull osones/nginx
ExecStart=/bin/sh -c "while true; do echo nginx %i serving; sleep 1; done"
ExecStop=/bin/echo docker stop nginx

[X-Fleet]
Conflicts=nginx@*.service
`

func TestSeed001NginxTemplate(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 2, testcluster.Options{})
	dir := t.TempDir()

	// $ fleetctl list-machines
	out := c.MustFleetctl("list-machines")
	if want := listMachinesTable(c, false); out != want {
		t.Errorf("list-machines:\n%q\nwant:\n%q", out, want)
	}

	// core@coreos-node1 /etc/systemd/system $ cat nginx@.service
	writeUnit(t, dir, "nginx@.service", seed001Nginx)
	t.Chdir(dir)

	// $ fleetctl submit nginx@.service (relative path, as in the seed)
	out, errOut, code := c.Fleetctl("submit", "nginx@.service")
	if code != 0 {
		t.Fatalf("submit nginx@.service: exit %d\n%s%s", code, out, errOut)
	}
	if out != "" && out != "Unit nginx@.service inactive\n" {
		t.Errorf("submit printed %q", out)
	}
	want := fleetTable(unitFilesHeader, [][]string{{"nginx@.service", fileHash(seed001Nginx)[:7], "inactive", "inactive", "-"}})
	if out := c.MustFleetctl("list-unit-files"); out != want {
		t.Errorf("list-unit-files:\n%q\nwant:\n%q", out, want)
	}

	// $ fleetctl start nginx@1 ; fleetctl start nginx@2
	where := placement{}
	startUnits(t, c, where, "nginx@1")
	startUnits(t, c, where, "nginx@2")
	if where["nginx@1.service"] == where["nginx@2.service"] {
		t.Errorf("Conflicts=nginx@*.service: both instances on %s", legend(where["nginx@1.service"]))
	}

	// $ fleetctl list-units
	out = c.MustFleetctl("list-units")
	if want := activeTable(where); out != want {
		t.Errorf("list-units:\n%q\nwant:\n%q", out, want)
	}

	// The instances carry the template's options (same hash) and %i stays
	// unexpanded in the stored unit.
	out = c.MustFleetctl("cat", "nginx@1.service")
	if out != seed001Nginx {
		t.Errorf("cat nginx@1.service:\n%s\nwant the template:\n%s", out, seed001Nginx)
	}
	awaitJournal(t, c, []string{"nginx@2"}, "nginx 2 serving")
}

// ---- seed 002: db, dbhelper, mondb, web@, monweb@ on 4 machines ----

const seed002DB = `[Unit]
Description=MySQL DB service
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/bin/false
ExecStartPre=-/bin/false
ExecStart=/bin/sh -c "echo mysqld ready for connections; while true; do sleep 1; done"
ExecStop=/bin/echo docker stop db
`

const seed002DBHelper = `[Unit]
Description=DB Helperservice
After=db.service
Requires=db.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/bin/false
ExecStartPre=/bin/echo Pulling repository srirajan/dbhelper
ExecStart=/bin/sh -c "echo Creating the world database; echo Creating application user; echo Counting rows in world.city; echo 4079; while true; do sleep 1; done"
ExecStop=/bin/echo docker stop dbhelper

[X-Fleet]
MachineOf=db.service
`

const seed002MonDB = `[Unit]
Description=Monitor the db service
BindsTo=db.service
After=db.service

[Service]
ExecStart=/bin/sh -c "while true; do echo etcdctl set /services/db/host 127.0.0.1 --ttl 60; sleep 45; done"
ExecStop=/bin/echo etcdctl rm /services/db/host

[X-Fleet]
MachineOf=db.service
`

const seed002Web = `[Unit]
Description=Web service %i
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/bin/false
ExecStartPre=-/bin/false
ExecStart=/bin/sh -c "echo web%i listening on 180%i; while true; do sleep 1; done"
ExecStop=/bin/echo docker stop web%i
`

const seed002MonWeb = `[Unit]
Description=Monitor web@%i
BindsTo=web@%i.service
After=web@%i.service

[Service]
ExecStart=/bin/sh -c "while true; do echo etcdctl set /services/web/web%i/unit web@%i.service; sleep 45; done"
ExecStop=/bin/echo etcdctl rm /services/web/web%i

[X-Fleet]
MachineOf=web@%i.service
`

func TestSeed002CoreOSFleetDocker(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 4, testcluster.Options{})
	dir := t.TempDir()

	// $ fleetctl list-machines
	out := c.MustFleetctl("list-machines")
	if want := listMachinesTable(c, false); out != want {
		t.Errorf("list-machines:\n%q\nwant:\n%q", out, want)
	}

	// $ cd fleet-services; fleetctl submit *.service (the shell's sorted glob)
	files := []struct{ name, body string }{
		{"db.service", seed002DB},
		{"dbhelper.service", seed002DBHelper},
		{"mondb.service", seed002MonDB},
		{"monweb@.service", seed002MonWeb},
		{"web@.service", seed002Web},
	}
	args := []string{"submit"}
	var rows [][]string
	for _, f := range files {
		args = append(args, writeUnit(t, dir, f.name, f.body))
		rows = append(rows, []string{f.name, fileHash(f.body)[:7], "inactive", "inactive", "-"})
	}
	c.MustFleetctl(args...)

	// $ fleetctl list-unit-files
	out = c.MustFleetctl("list-unit-files")
	if want := fleetTable(unitFilesHeader, rows); out != want {
		t.Errorf("list-unit-files:\n%q\nwant:\n%q", out, want)
	}
	for _, f := range files {
		if out := c.MustFleetctl("cat", f.name); out != f.body {
			t.Errorf("cat %s:\n%s\nwant:\n%s", f.name, out, f.body)
		}
	}

	// $ fleetctl start db.service; fleetctl list-units
	where := placement{}
	startUnits(t, c, where, "db.service")
	awaitOutput(t, c, activeTable(where), "list-units")

	// $ fleetctl start dbhelper.service; fleetctl start mondb.service
	startUnits(t, c, where, "dbhelper.service")
	startUnits(t, c, where, "mondb.service")
	if where["dbhelper.service"] != where["db.service"] || where["mondb.service"] != where["db.service"] {
		t.Errorf("MachineOf=db.service: db on %s, dbhelper on %s, mondb on %s",
			legend(where["db.service"]), legend(where["dbhelper.service"]), legend(where["mondb.service"]))
	}
	// $ fleetctl list-units: all three on the same host
	awaitOutput(t, c, activeTable(where), "list-units")

	// $ fleetctl journal dbhelper (the name without .service)
	jout := awaitJournal(t, c, []string{"dbhelper"},
		"Pulling repository srirajan/dbhelper",
		"Creating the world database",
		"Creating application user",
		"Counting rows in world.city",
		"4079")
	noSSH(t, jout)
	if strings.Contains(jout, "mysqld ready") || strings.Contains(jout, "etcdctl set") {
		t.Errorf("journal dbhelper shows other units' lines:\n%s", jout)
	}

	// $ fleetctl start web@01.service; fleetctl list-units
	startUnits(t, c, where, "web@01.service")
	awaitOutput(t, c, activeTable(where), "list-units")

	// $ fleetctl start web@{02..10}.service; fleetctl list-units
	var webs, monwebs []string
	for i := 2; i <= 10; i++ {
		webs = append(webs, fmt.Sprintf("web@%02d.service", i))
	}
	startUnits(t, c, where, webs...)
	awaitOutput(t, c, activeTable(where), "list-units")
	// "Fleet will distribute them across the different hosts": 13 units
	// on 4 machines, least loaded first, is 4+3+3+3.
	load := map[*testcluster.Machine]int{}
	for _, m := range c.Machines {
		load[m] = 0
	}
	for _, m := range where {
		load[m]++
	}
	counts := slices.Sorted(maps.Values(load))
	if counts[len(counts)-1]-counts[0] > 1 {
		t.Errorf("13 units over 4 machines: %v units per machine, want them balanced", counts)
	}

	// $ fleetctl start monweb@{01..10}.service; fleetctl list-units
	for i := 1; i <= 10; i++ {
		monwebs = append(monwebs, fmt.Sprintf("monweb@%02d.service", i))
	}
	startUnits(t, c, where, monwebs...)
	for i := 1; i <= 10; i++ {
		w, mw := fmt.Sprintf("web@%02d.service", i), fmt.Sprintf("monweb@%02d.service", i)
		if where[w] != where[mw] {
			t.Errorf("MachineOf=web@%%i.service: %s on %s, %s on %s", w, legend(where[w]), mw, legend(where[mw]))
		}
	}
	awaitOutput(t, c, activeTable(where), "list-units")
	awaitJournal(t, c, []string{"monweb@07.service"}, "etcdctl set /services/web/web07/unit web@07.service")

	// Cleanup fleet:
	// $ fleetctl destroy $(fleetctl list-units -fields=unit -no-legend)
	out = c.MustFleetctl("list-units", "-fields=unit", "-no-legend")
	var running []string
	for u := range where {
		running = append(running, u)
	}
	slices.Sort(running)
	var wantUnits [][]string
	for _, u := range running {
		wantUnits = append(wantUnits, []string{u})
	}
	if want := fleetTable(nil, wantUnits); out != want {
		t.Errorf("list-units -fields=unit -no-legend:\n%q\nwant:\n%q", out, want)
	}
	destroyAll(t, c, strings.Fields(out)...)

	// $ fleetctl destroy $(fleetctl list-unit-files -fields=unit -no-legend)
	out = c.MustFleetctl("list-unit-files", "-fields=unit", "-no-legend")
	if want := "monweb@.service\nweb@.service\n"; out != want {
		t.Errorf("list-unit-files -fields=unit -no-legend after destroying the running units:\n%q\nwant:\n%q", out, want)
	}
	destroyAll(t, c, strings.Fields(out)...)

	// $ sleep 5; fleetctl list-unit-files; fleetctl list-units
	if out := c.MustFleetctl("list-unit-files"); out != fleetTable(unitFilesHeader, nil) {
		t.Errorf("list-unit-files after cleanup:\n%q", out)
	}
	awaitOutput(t, c, fleetTable(unitsHeader, nil), "list-units")
}

// ---- seed 003: the ELK sample app on 5 machines ----

// seed003Unit is a service in the style of seed 003's: pre-pull, run,
// register the IP in etcd after start (ExecStartPost), kill, and remove
// the entry after stop (ExecStopPost).
func seed003Unit(desc, key, after, extra string) string {
	u := "[Unit]\nDescription=" + desc + "\nAfter=docker.service\nRequires=docker.service\n"
	if after != "" {
		// ordering only: the unit it follows runs on another machine
		u += "After=" + after + "\n"
	}
	u += `
[Service]
TimeoutStartSec=0
ExecStartPre=-/bin/false
ExecStartPre=/bin/echo docker pull ` + key + `
ExecStart=/bin/sh -c "while true; do echo ` + key + ` up; sleep 1; done"
ExecStartPost=/bin/echo etcdctl set /` + key + `/host 127.0.0.1
ExecStop=/bin/echo docker kill ` + key + `
ExecStopPost=/bin/echo etcdctl rm /` + key + `/host
`
	return u + extra
}

func TestSeed003ELKOnDebian(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 5, testcluster.Options{})
	dir := t.TempDir()

	files := []struct{ name, body string }{
		{"elasticsearch.service", seed003Unit("Kibana and Elasticsearch", "elasticsearch", "", "")},
		{"logstash.service", seed003Unit("Logstash", "logstash", "elasticsearch.service", "")},
		{"nginx.service", seed003Unit("Nginx proxy", "nginx", "sinatra@1.service", "")},
		{"sinatra@.service", seed003Unit("Sinatra app %i", "sinatra/%i", "logstash.service", "\n[X-Fleet]\nConflicts=sinatra@*.service\n")},
		{"testscript.service", seed003Unit("Test script", "testscript", "nginx.service", "\n[X-Fleet]\nMachineOf=nginx.service\n")},
	}
	args := []string{"submit"}
	var rows [][]string
	for _, f := range files {
		args = append(args, writeUnit(t, dir, f.name, f.body))
		rows = append(rows, []string{f.name, fileHash(f.body)[:7], "inactive", "inactive", "-"})
	}
	c.MustFleetctl(args...)
	if out := c.MustFleetctl("list-unit-files"); out != fleetTable(unitFilesHeader, rows) {
		t.Errorf("list-unit-files:\n%q\nwant:\n%q", out, fleetTable(unitFilesHeader, rows))
	}

	// "once the service file is loaded": load, then launch in order.
	order := []string{"elasticsearch.service", "logstash.service",
		"sinatra@1.service", "sinatra@2.service", "sinatra@3.service", "sinatra@4.service", "sinatra@5.service",
		"nginx.service", "testscript.service"}
	loaded := placement{}
	out := c.MustFleetctl(append([]string{"load"}, order...)...)
	parsePlacements(t, c, out, "loaded", order, loaded)
	var loadedRows [][]string
	for _, u := range order {
		if m := loaded[u]; m != nil {
			loadedRows = append(loadedRows, []string{u, fileHash(bodyOf(files, u))[:7], "loaded", "loaded", legend(m)})
		}
	}
	loadedRows = append(loadedRows, []string{"sinatra@.service", fileHash(bodyOf(files, "sinatra@.service"))[:7], "inactive", "inactive", "-"})
	slices.SortFunc(loadedRows, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	awaitOutput(t, c, fleetTable(unitFilesHeader, loadedRows), "list-unit-files")

	where := placement{}
	for _, u := range order {
		startUnits(t, c, where, u)
		if where[u] != loaded[u] {
			t.Errorf("%s loaded on %s but launched on %s", u, legend(loaded[u]), legend(where[u]))
		}
	}
	used := map[*testcluster.Machine]bool{}
	for i := 1; i <= 5; i++ {
		used[where[fmt.Sprintf("sinatra@%d.service", i)]] = true
	}
	if len(used) != 5 {
		t.Errorf("5 conflicting sinatra instances on %d machines", len(used))
	}
	if where["testscript.service"] != where["nginx.service"] {
		t.Errorf("MachineOf=nginx.service not honoured")
	}
	awaitOutput(t, c, activeTable(where), "list-units")

	// ExecStartPost registered the service (its output is in the journal).
	awaitJournal(t, c, []string{"elasticsearch.service"},
		"docker pull elasticsearch", "etcdctl set /elasticsearch/host 127.0.0.1", "elasticsearch up")
	awaitJournal(t, c, []string{"sinatra@3.service"}, "etcdctl set /sinatra/3/host 127.0.0.1")

	// Stopping runs ExecStop and ExecStopPost.
	out = c.MustFleetctl("stop", "logstash.service")
	if want := "Unit logstash.service loaded on " + legend(where["logstash.service"]) + "\n"; out != want {
		t.Errorf("stop logstash.service printed %q, want %q", out, want)
	}
	awaitJournal(t, c, []string{"--lines", "20", "logstash.service"},
		"docker kill logstash", "etcdctl rm /logstash/host")

	destroyAll(t, c, append(order, "sinatra@.service")...)
	awaitOutput(t, c, fleetTable(unitsHeader, nil), "list-units")
	if out := c.MustFleetctl("list-unit-files"); out != fleetTable(unitFilesHeader, nil) {
		t.Errorf("list-unit-files after destroy:\n%q", out)
	}
}

func bodyOf(files []struct{ name, body string }, unit string) string {
	for _, f := range files {
		if f.name == unit {
			return f.body
		}
	}
	if i := strings.Index(unit, "@"); i >= 0 {
		return bodyOf(files, unit[:i+1]+unit[strings.LastIndex(unit, "."):])
	}
	return ""
}

// ---- seed 004: kappa-test@.service on 3 machines (Vagrant) ----

// seed004Kappa is the kappa-test@.service as `fleetctl cat` shows it in
// the seed (note X-Conflicts=kappa-test-@*.service, as registered there);
// real fleet's `list-unit-files --full` hash of it is 559024d0...
const seed004Kappa = `[Unit]
Description=kappa-test
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/usr/bin/docker kill kappa-test-%i
ExecStartPre=-/usr/bin/docker rm kappa-test-%i
ExecStart=/usr/bin/docker run --name=kappa-test-%i --hostname=kappa-test-%i -p 8000 centos:centos6 /bin/sh -c 'cd /tmp/ ; hostname -s > index.html ; python -m SimpleHTTPServer'
ExecStop=/usr/bin/docker stop kappa-test-%i

[Install]
WantedBy=multi-user.target

[X-Fleet]
X-Conflicts=kappa-test-@*.service
`

const seed004KappaHash = "559024d01378ac913e63c18dfd75f7a58d1f0bf8"

// seed004KappaRun is the same template with docker swapped for processes
// (and X-Conflicts as the author wrote it: kappa-test@*.service).
const seed004KappaRun = `[Unit]
Description=kappa-test
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/bin/echo kappa-test-%i
ExecStartPre=-/bin/echo kappa-test-%i
ExecStart=/bin/sh -c 'echo serving kappa-test-%i; while true; do sleep 1; done'
ExecStop=/bin/echo stop kappa-test-%i

[Install]
WantedBy=multi-user.target

[X-Fleet]
X-Conflicts=kappa-test@*.service
`

func TestSeed004KappaTest(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 3, testcluster.Options{})
	dir := t.TempDir()
	t.Chdir(dir)
	kappas := []string{"kappa-test@1.service", "kappa-test@2.service", "kappa-test@3.service"}

	// core@core-01 ~ $ fleetctl list-machines
	out := c.MustFleetctl("list-machines")
	if want := listMachinesTable(c, false); out != want {
		t.Errorf("list-machines:\n%q\nwant:\n%q", out, want)
	}

	// $ fleetctl submit kappa-test@.service
	if got := fileHash(seed004Kappa); got != seed004KappaHash {
		t.Fatalf("test data: sha1 of the seed's file is %s", got)
	}
	writeUnit(t, dir, "kappa-test@.service", seed004Kappa)
	c.MustFleetctl("submit", "kappa-test@.service")

	// $ fleetctl list-unit-files --full
	want := fleetTable(unitFilesHeader, [][]string{{"kappa-test@.service", seed004KappaHash, "inactive", "inactive", "-"}})
	if out := c.MustFleetctl("list-unit-files", "--full"); out != want {
		t.Errorf("list-unit-files --full:\n%q\nwant:\n%q", out, want)
	}
	// $ fleetctl cat kappa-test@.service
	if out := c.MustFleetctl("cat", "kappa-test@.service"); out != seed004Kappa {
		t.Errorf("cat kappa-test@.service:\n%s\nwant:\n%s", out, seed004Kappa)
	}
	// $ fleetctl destroy kappa-test@.service
	destroyAll(t, c, "kappa-test@.service")
	if out := c.MustFleetctl("list-unit-files", "--full"); out != fleetTable(unitFilesHeader, nil) {
		t.Errorf("list-unit-files after destroy:\n%q", out)
	}

	// $ fleetctl submit kappa-test@.service (the runnable one)
	writeUnit(t, dir, "kappa-test@.service", seed004KappaRun)
	c.MustFleetctl("submit", "kappa-test@.service")
	if out := c.MustFleetctl("cat", "kappa-test@.service"); out != seed004KappaRun {
		t.Errorf("cat after resubmit:\n%s\nwant:\n%s", out, seed004KappaRun)
	}

	// $ fleetctl start kappa-test@1.service (2, 3)
	where := placement{}
	for _, k := range kappas {
		startUnits(t, c, where, k)
	}
	if len(map[*testcluster.Machine]bool{where[kappas[0]]: true, where[kappas[1]]: true, where[kappas[2]]: true}) != 3 {
		t.Errorf("X-Conflicts=kappa-test@*.service: instances not on 3 machines")
	}

	// $ fleetctl list-units
	awaitOutput(t, c, activeTable(where), "list-units")

	// $ fleetctl status kappa-test@{1..3}.service
	var status string
	c.Await("status of the three instances with journal lines", 30*time.Second, func() (bool, string) {
		var errOut string
		var code int
		status, errOut, code = c.Fleetctl(append([]string{"status"}, kappas...)...)
		for i := 1; i <= 3; i++ {
			if !strings.Contains(status, fmt.Sprintf("serving kappa-test-%d\n", i)) {
				return false, status + errOut
			}
		}
		return code == 0, status + errOut
	})
	t.Logf("status kappa-test@{1..3}.service:\n%s", status)
	noSSH(t, status)
	sections := regexp.MustCompile(`(?m)^● `).Split(status, -1)[1:]
	if len(sections) != 3 {
		t.Fatalf("status printed %d unit sections, want 3:\n%s", len(sections), status)
	}
	for i, sec := range sections {
		n := i + 1
		if !strings.HasPrefix(sec, fmt.Sprintf("kappa-test@%d.service - kappa-test\n", n)) {
			t.Errorf("section %d does not start with `● kappa-test@%d.service - kappa-test`:\n%s", n, n, sec)
		}
		if !statusHas(sec, "Loaded", "loaded (") || !statusHas(sec, "Active", "active (running) since ") {
			t.Errorf("section %d lacks Loaded: loaded / Active: active (running):\n%s", n, sec)
		}
		// systemd of the seed shows the Exec line unexpanded
		// (kappa-test-%i); accept the expanded form too.
		pre := regexp.MustCompile(fmt.Sprintf(`(?m)^ *Process: \d+ ExecStartPre=/bin/echo kappa-test-(%%i|%d) \(code=exited, status=0/SUCCESS\)$`, n))
		if got := pre.FindAllStringSubmatch(sec, -1); len(got) != 2 {
			t.Errorf("section %d: %d successful ExecStartPre lines, want 2:\n%s", n, len(got), sec)
		} else if got[0][1] != "%i" {
			t.Logf("note: Process lines show the expanded command (kappa-test-%d) where the seed's systemd shows kappa-test-%%i", n)
		}
		if !regexp.MustCompile(`(?m)^ *Main PID: \d+ \(sh\)$`).MatchString(sec) {
			t.Errorf("section %d lacks `Main PID: N (sh)`:\n%s", n, sec)
		}
		if !strings.Contains(sec, fmt.Sprintf(" /bin/sh -c echo serving kappa-test-%d; while true; do sleep 1; done\n", n)) {
			t.Errorf("section %d: CGroup lacks the expanded main command:\n%s", n, sec)
		}
		if !hasLineSuffix(sec, fmt.Sprintf(": kappa-test-%d", n)) {
			t.Errorf("section %d: journal part lacks the ExecStartPre output `kappa-test-%d`:\n%s", n, n, sec)
		}
		if !hasLineSuffix(sec, "Started kappa-test.") && !hasLineSuffix(sec, "Starting kappa-test...") {
			t.Logf("note: section %d has no systemd Starting/Started lines", n)
		}
	}

	// $ fleetctl stop kappa-test@2.service ; fleetctl start kappa-test@2.service
	out = c.MustFleetctl("stop", "kappa-test@2.service")
	if want := "Unit kappa-test@2.service loaded on " + legend(where[kappas[1]]) + "\n"; out != want {
		t.Errorf("stop kappa-test@2.service printed %q, want %q", out, want)
	}
	awaitOutput(t, c, activeTableWith(where, map[string][2]string{kappas[1]: {"inactive", "dead"}}), "list-units")
	startUnits(t, c, where, "kappa-test@2.service") // checks it comes back on the same machine
	awaitOutput(t, c, activeTable(where), "list-units")

	// $ fleetctl stop kappa-test@{1..3}.service
	out = c.MustFleetctl(append([]string{"stop"}, kappas...)...)
	parsePlacements(t, c, out, "loaded", kappas, where)
	// $ fleetctl unload kappa-test@{1..3}.service
	out = c.MustFleetctl(append([]string{"unload"}, kappas...)...)
	gotLines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(gotLines)
	if want := []string{"Unit kappa-test@1.service inactive", "Unit kappa-test@2.service inactive", "Unit kappa-test@3.service inactive"}; !slices.Equal(gotLines, want) {
		t.Errorf("unload printed:\n%s\nwant (any order):\n%s", out, strings.Join(want, "\n"))
	}
	awaitOutput(t, c, fleetTable(unitsHeader, nil), "list-units")
	var inactiveRows [][]string
	for _, u := range append([]string{"kappa-test@.service"}, kappas...) {
		inactiveRows = append(inactiveRows, []string{u, fileHash(seed004KappaRun), "inactive", "inactive", "-"})
	}
	if out := c.MustFleetctl("list-unit-files", "--full"); out != fleetTable(unitFilesHeader, inactiveRows) {
		t.Errorf("list-unit-files --full after unload:\n%q\nwant:\n%q", out, fleetTable(unitFilesHeader, inactiveRows))
	}
	// $ fleetctl destroy kappa-test@.service ; destroy kappa-test@{1..3}.service
	destroyAll(t, c, "kappa-test@.service")
	destroyAll(t, c, kappas...)
	if out := c.MustFleetctl("list-unit-files", "--full"); out != fleetTable(unitFilesHeader, nil) {
		t.Errorf("list-unit-files after destroy:\n%q", out)
	}
	// $ fleetctl submit kappa-test@.service (re-registration works)
	c.MustFleetctl("submit", "kappa-test@.service")
	want = fleetTable(unitFilesHeader, [][]string{{"kappa-test@.service", fileHash(seed004KappaRun), "inactive", "inactive", "-"}})
	if out := c.MustFleetctl("list-unit-files", "--full"); out != want {
		t.Errorf("list-unit-files --full after resubmit:\n%q\nwant:\n%q", out, want)
	}
}

// activeTableWith is activeTable with some units in another active/sub
// state.
func activeTableWith(where placement, other map[string][2]string) string {
	var rows [][]string
	for u, m := range where {
		st := [2]string{"active", "running"}
		if o, ok := other[u]; ok {
			st = o
		}
		rows = append(rows, []string{u, legend(m), st[0], st[1]})
	}
	slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return fleetTable(unitsHeader, rows)
}
