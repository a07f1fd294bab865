package cli

import (
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
)

func opts(kv ...string) []*client.UnitOption {
	var out []*client.UnitOption
	for i := 0; i+2 < len(kv); i += 3 {
		out = append(out, &client.UnitOption{Section: kv[i], Name: kv[i+1], Value: kv[i+2]})
	}
	return out
}

var testMachines = []client.Machine{
	{ID: "3d1219c7aaaabbbbccccddddeeeeffff", PrimaryIP: "127.0.0.1", Metadata: map[string]string{"region": "us-east-1", "rack": "r1"}},
	{ID: "33333333aaaabbbbccccddddeeeeffff", PrimaryIP: "127.0.0.3", Metadata: map[string]string{"region": "us-east-1", "disk": "ssd"}},
	{ID: "22222222aaaabbbbccccddddeeeeffff", PrimaryIP: "127.0.0.2", Metadata: map[string]string{"region": "us-west-1", "disk": "hdd"}},
	{ID: "44444444aaaabbbbccccddddeeeeffff"},
}

func machineIndex(ms []client.Machine) map[string]client.Machine {
	m := map[string]client.Machine{}
	for _, x := range ms {
		m[x.ID] = x
	}
	return m
}

func render(t *testing.T, fields []string, rows [][]string, noLegend bool) string {
	t.Helper()
	var sb strings.Builder
	if err := renderTable(&sb, fields, rows, noLegend); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func TestListMachinesTable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fields   string
		full     bool
		noLegend bool
		want     string
	}{
		{
			name:   "default",
			fields: defaultMachineFields,
			want: "MACHINE\t\tIP\t\tMETADATA\n" +
				"22222222...\t127.0.0.2\tdisk=hdd,region=us-west-1\n" +
				"33333333...\t127.0.0.3\tdisk=ssd,region=us-east-1\n" +
				"3d1219c7...\t127.0.0.1\track=r1,region=us-east-1\n" +
				"44444444...\t-\t\t-\n",
		},
		{
			name:     "full no legend",
			fields:   "machine",
			full:     true,
			noLegend: true,
			want: "22222222aaaabbbbccccddddeeeeffff\n" +
				"33333333aaaabbbbccccddddeeeeffff\n" +
				"3d1219c7aaaabbbbccccddddeeeeffff\n" +
				"44444444aaaabbbbccccddddeeeeffff\n",
		},
		{
			name:   "reordered",
			fields: "ip,machine",
			want: "IP\t\tMACHINE\n" +
				"127.0.0.2\t22222222...\n" +
				"127.0.0.3\t33333333...\n" +
				"127.0.0.1\t3d1219c7...\n" +
				"-\t\t44444444...\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields, err := parseFields(tc.fields, validMachineField)
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, fields, machineRows(testMachines, fields, tc.full), tc.noLegend)
			if got != tc.want {
				t.Fatalf("got:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
}

func TestParseFieldsErrors(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		valid func(string) bool
		err   string
	}{
		{"", validMachineField, "Must define output format"},
		{"machine,bogus", validMachineField, `Invalid key in output format: "bogus"`},
		{"unit,", validUnitField, `Invalid key in output format: ""`},
		{"unit,machine,target", validUnitField, `Invalid key in output format: "target"`},
		{"unit,tmachine", validUnitFileField, ""},
		{"unit,hash,load", validUnitField, ""},
	} {
		_, err := parseFields(tc.spec, tc.valid)
		if tc.err == "" {
			if err != nil {
				t.Errorf("parseFields(%q): %v", tc.spec, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.err {
			t.Errorf("parseFields(%q) = %v, want %q", tc.spec, err, tc.err)
		}
	}
}

// Units as in fleet's live sample (reference 1a).
func sampleUnits() []client.Unit {
	web := opts("Unit", "Description", "web", "Service", "ExecStart", "/bin/true")
	return []client.Unit{
		{Name: "web@2.service", Options: web, DesiredState: "launched", CurrentState: "inactive"},
		{Name: "hello.service", Options: opts("Unit", "Description", "Hello World", "Service", "ExecStart", "/bin/sleep 1000"), DesiredState: "loaded", CurrentState: "inactive", MachineID: "33333333aaaabbbbccccddddeeeeffff"},
		{Name: "glob.service", Options: opts("Service", "ExecStart", "/bin/true", "X-Fleet", "Global", "true"), DesiredState: "launched"},
		{Name: "web@1.service", Options: web, DesiredState: "launched", CurrentState: "launched", MachineID: "3d1219c7aaaabbbbccccddddeeeeffff"},
		{Name: "lost.service", Options: opts("Service", "ExecStart", "/bin/true"), DesiredState: "launched", CurrentState: "launched", MachineID: "99999999aaaa"},
	}
}

func TestListUnitFilesTable(t *testing.T) {
	units := sampleUnits()
	machines := machineIndex(testMachines)
	states := []client.UnitState{
		{Name: "glob.service", MachineID: "22222222aaaabbbbccccddddeeeeffff", SystemdActiveState: "active"},
		{Name: "glob.service", MachineID: "33333333aaaabbbbccccddddeeeeffff", SystemdActiveState: "activating"},
		{Name: "glob.service", MachineID: "3d1219c7aaaabbbbccccddddeeeeffff", SystemdActiveState: "active"},
		{Name: "web@1.service", MachineID: "3d1219c7aaaabbbbccccddddeeeeffff", SystemdActiveState: "active"},
	}
	webHash := unitHash(units[0])
	helloHash := unitHash(units[1])
	globHash := unitHash(units[2])
	lostHash := unitHash(units[4])
	if len(webHash) != 40 {
		t.Fatalf("hash %q", webHash)
	}

	fields, _ := parseFields(defaultUnitFileFields, validUnitFileField)
	got := render(t, fields, unitFileRows(units, machines, states, fields, false), false)
	want := "UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\n" +
		"glob.service\t" + globHash[:7] + "\tlaunched\tlaunched(3)\tglobal\n" +
		"hello.service\t" + helloHash[:7] + "\tloaded\t\tinactive\t33333333.../127.0.0.3\n" +
		"lost.service\t" + lostHash[:7] + "\tlaunched\tlaunched\t99999999...\n" +
		"web@1.service\t" + webHash[:7] + "\tlaunched\tlaunched\t3d1219c7.../127.0.0.1\n" +
		"web@2.service\t" + webHash[:7] + "\tlaunched\tinactive\t-\n"
	if got != want {
		t.Fatalf("default:\n%s\nwant:\n%s\n%q", got, want, got)
	}

	fields, _ = parseFields("unit,hash,target,global,desc", validUnitFileField)
	got = render(t, fields, unitFileRows(units[1:3], machines, nil, fields, true), true)
	want = "glob.service\t" + globHash + "\tglobal\t\t\t\t\t\ttrue\t-\n" +
		"hello.service\t" + helloHash + "\t33333333aaaabbbbccccddddeeeeffff/127.0.0.3\tfalse\tHello World\n"
	if got != want {
		t.Fatalf("full:\n%q\nwant:\n%q", got, want)
	}
}

func TestGlobalStateSummary(t *testing.T) {
	st := func(active ...string) []client.UnitState {
		var out []client.UnitState
		for _, a := range active {
			out = append(out, client.UnitState{Name: "g.service", SystemdActiveState: a})
		}
		return out
	}
	for _, tc := range []struct {
		states []client.UnitState
		want   string
	}{
		{nil, "-"},
		{st("active", "active", "active"), "launched(3)"},
		{st("active", "inactive", "failed"), "launched(1),loaded(2)"},
		{st("inactive"), "loaded(1)"},
	} {
		if got := globalStateSummary(tc.states); got != tc.want {
			t.Errorf("globalStateSummary(%v) = %q, want %q", tc.states, got, tc.want)
		}
	}
}

func TestListUnitsTable(t *testing.T) {
	machines := machineIndex(testMachines)
	states := []client.UnitState{
		{Name: "web@2.service", MachineID: "22222222aaaabbbbccccddddeeeeffff", Hash: "045cc8f0123456789012345678901234567890ab", SystemdLoadState: "loaded", SystemdActiveState: "active", SystemdSubState: "running"},
		{Name: "glob.service", MachineID: "3d1219c7aaaabbbbccccddddeeeeffff", SystemdLoadState: "loaded", SystemdActiveState: "failed", SystemdSubState: "failed"},
		{Name: "glob.service", MachineID: "22222222aaaabbbbccccddddeeeeffff", SystemdLoadState: "loaded", SystemdActiveState: "active", SystemdSubState: "running"},
		{Name: "odd.service", MachineID: "abcdef"},
	}
	fields, _ := parseFields(defaultUnitFields, validUnitField)
	got := render(t, fields, unitRows(states, machines, fields, false), false)
	want := "UNIT\t\tMACHINE\t\t\tACTIVE\tSUB\n" +
		"glob.service\t22222222.../127.0.0.2\tactive\trunning\n" +
		"glob.service\t3d1219c7.../127.0.0.1\tfailed\tfailed\n" +
		"odd.service\tabcdef...\t\t-\t-\n" +
		"web@2.service\t22222222.../127.0.0.2\tactive\trunning\n"
	if got != want {
		t.Fatalf("default:\n%q\nwant:\n%q", got, want)
	}
	fields, _ = parseFields("unit,hash,load", validUnitField)
	got = render(t, fields, unitRows(states[:1], machines, fields, false), true)
	if want := "web@2.service\t045cc8f\tloaded\n"; got != want {
		t.Fatalf("hash: %q want %q", got, want)
	}
	got = render(t, fields, unitRows(states[:1], machines, fields, true), true)
	if want := "web@2.service\t045cc8f0123456789012345678901234567890ab\tloaded\n"; got != want {
		t.Fatalf("full hash: %q want %q", got, want)
	}
}

func TestLegends(t *testing.T) {
	m := client.Machine{ID: "3d1219c7aaaabbbb", PrimaryIP: "127.0.0.1"}
	for _, tc := range []struct{ got, want string }{
		{machineFullLegend(m, false), "3d1219c7.../127.0.0.1"},
		{machineFullLegend(m, true), "3d1219c7aaaabbbb/127.0.0.1"},
		{machineFullLegend(client.Machine{ID: "3d1219c7aaaabbbb"}, false), "3d1219c7..."},
		{machineIDLegend("abc", false), "abc..."},
		{machineLegendIn(nil, "3d1219c7aaaabbbb", false), "3d1219c7..."},
	} {
		if tc.got != tc.want {
			t.Errorf("legend %q, want %q", tc.got, tc.want)
		}
	}
}

func TestJSONRenderers(t *testing.T) {
	var sb strings.Builder
	if err := writeJSON(&sb, machinesJSON(testMachines[3:])); err != nil {
		t.Fatal(err)
	}
	if want := "[\n  {\n    \"machine\": \"44444444aaaabbbbccccddddeeeeffff\"\n  }\n]\n"; sb.String() != want {
		t.Fatalf("machines json %q", sb.String())
	}
	ufs := unitFilesJSON(sampleUnits()[2:3], []client.UnitState{{Name: "glob.service", SystemdActiveState: "active"}})
	if len(ufs) != 1 || !ufs[0].Global || ufs[0].State != "launched(1)" || ufs[0].Target != "global" || len(ufs[0].Hash) != 40 {
		t.Fatalf("unit files json %+v", ufs)
	}
	if got := unitStatesJSON(nil, nil); got == nil || len(got) != 0 {
		t.Fatalf("empty list must render as []: %#v", got)
	}
}

// list-machines --fields capacity (and -l, which adds it by default): the
// CPUs and memory a machine offers; "-" for one that advertises none.
func TestListMachinesCapacity(t *testing.T) {
	ms := []client.Machine{
		{ID: "11111111aaaabbbbccccddddeeeeffff", PrimaryIP: "127.0.0.1", Capacity: &fleet.Resources{CPUMilli: 2000, MemoryBytes: 23_450_000_000}},
		{ID: "22222222aaaabbbbccccddddeeeeffff", PrimaryIP: "127.0.0.2", Capacity: &fleet.Resources{MemoryBytes: 1 << 30}},
		{ID: "33333333aaaabbbbccccddddeeeeffff", PrimaryIP: "127.0.0.3"},
	}
	fields, err := parseFields(defaultMachineFields+",capacity", validMachineField)
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, fields, machineRows(ms, fields, true), false)
	want := "MACHINE\t\t\t\t\tIP\t\tMETADATA\tCAPACITY\n" +
		"11111111aaaabbbbccccddddeeeeffff\t127.0.0.1\t-\t\tcpu=2,memory=21.8G\n" +
		"22222222aaaabbbbccccddddeeeeffff\t127.0.0.2\t-\t\tmemory=1G\n" +
		"33333333aaaabbbbccccddddeeeeffff\t127.0.0.3\t-\t\t-\n"
	if got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
}
