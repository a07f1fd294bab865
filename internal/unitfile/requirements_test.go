package unitfile

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
)

// mustParse parses a unit file or fails the test.
func mustParse(t *testing.T, data string) []fleet.UnitOption {
	t.Helper()
	opts, err := Parse([]byte(data))
	if err != nil {
		t.Fatalf("Parse(%q): %v", data, err)
	}
	return opts
}

func TestRequirements(t *testing.T) {
	tests := []struct {
		name     string
		unit     string
		file     string
		want     fleet.Requirements
		warnings []string
	}{
		{
			name: "no [X-Fleet] section",
			unit: "a.service",
			file: "[Service]\nExecStart=/bin/true\n",
			want: fleet.Requirements{},
		},
		{
			name: "rule 20: several [X-Fleet] sections merge",
			unit: "a.service",
			file: "[X-Fleet]\nConflicts=b.service\n[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=c.service\nMachineOf=d.service\n",
			want: fleet.Requirements{Conflicts: []string{"b.service", "c.service"}, MachineOf: []string{"d.service"}},
		},
		{
			name: "rule 21: quoted multi-values split on spaces outside quotes",
			unit: "a.service",
			file: "[X-Fleet]\nMachineMetadata=\"region=us-east-1\" \"diskType=SSD\"\n",
			want: fleet.Requirements{Metadata: map[string][]string{"region": {"us-east-1"}, "diskType": {"SSD"}}},
		},
		{
			name: "rule 21: spaces inside quotes are kept",
			unit: "a.service",
			file: "[X-Fleet]\nMachineMetadata=\"name=my box\" \"rack=r1\"\n",
			want: fleet.Requirements{Metadata: map[string][]string{"name": {"my box"}, "rack": {"r1"}}},
		},
		{
			name: "rule 21: not quoted at both ends: one value",
			unit: "a.service",
			file: "[X-Fleet]\nMachineMetadata=\"region=a\" region=b\n",
			want: fleet.Requirements{},
		},
		{
			name: "rule 21: quoted MachineOf list",
			unit: "a.service",
			file: "[X-Fleet]\nMachineOf=\"b.service\" \"c.service\"\n",
			want: fleet.Requirements{MachineOf: []string{"b.service", "c.service"}},
		},
		{
			name: "rule 22: %p in MachineOf of an instance",
			unit: "web@1.service",
			file: "[X-Fleet]\nMachineOf=%p.socket\n",
			want: fleet.Requirements{MachineOf: []string{"web.socket"}},
		},
		{
			name: "rule 22: %i in a quoted MachineMetadata",
			unit: "web@blue.service",
			file: "[X-Fleet]\nMachineMetadata=\"instancename=%i\"\n",
			want: fleet.Requirements{Metadata: map[string][]string{"instancename": {"blue"}}},
		},
		{
			name: "rule 22: %n %N %p %i",
			unit: "foo@bar.service",
			file: "[X-Fleet]\nMachineOf=%n\nMachineOf=%N.socket\nMachineOf=%p-helper@%i.service\n",
			want: fleet.Requirements{MachineOf: []string{"foo@bar.service", "foo@bar.socket", "foo-helper@bar.service"}},
		},
		{
			name: "rule 22: specifiers in Conflicts of a sidekick",
			unit: "web-discovery@3.service",
			file: "[X-Fleet]\nMachineOf=web@%i.service\nConflicts=%p@*.service\n",
			want: fleet.Requirements{MachineOf: []string{"web@3.service"}, Conflicts: []string{"web-discovery@*.service"}},
		},
		{
			name: "rule 22: %i of a template is empty, so MachineOf=web@%i.service names the template",
			unit: "web-discovery@.service",
			file: "[X-Fleet]\nMachineOf=web@%i.service\n",
			want: fleet.Requirements{MachineOf: []string{"web@.service"}},
		},
		{
			name: "rule 22: no expansion outside [X-Fleet]",
			unit: "web@1.service",
			file: "[Service]\nExecStart=/bin/echo %i\n[X-Fleet]\nMachineOf=%p.socket\n",
			want: fleet.Requirements{MachineOf: []string{"web.socket"}},
		},
		{
			name: "rule 22: no expansion for a name without a dot",
			unit: "noext",
			file: "[X-Fleet]\nMachineOf=%p.socket\n",
			want: fleet.Requirements{MachineOf: []string{"%p.socket"}},
		},
		{
			name: "rule 23: first MachineID wins",
			unit: "a.service",
			file: "[X-Fleet]\nMachineID=111\nMachineID=222\n",
			want: fleet.Requirements{MachineID: "111"},
		},
		{
			name: "rule 23: MachineID before X-ConditionMachineID before X-ConditionMachineBootID",
			unit: "a.service",
			file: "[X-Fleet]\nX-ConditionMachineBootID=333\nX-ConditionMachineID=222\nMachineID=111\n",
			want: fleet.Requirements{MachineID: "111"},
		},
		{
			name: "rule 23: legacy X-ConditionMachineID",
			unit: "a.service",
			file: "[X-Fleet]\nX-ConditionMachineBootID=333\nX-ConditionMachineID=222\n",
			want: fleet.Requirements{MachineID: "222"},
		},
		{
			name: "rule 23: legacy X-ConditionMachineBootID",
			unit: "a.service",
			file: "[X-Fleet]\nX-ConditionMachineBootID=333\n",
			want: fleet.Requirements{MachineID: "333"},
		},
		{
			name: "rule 24: legacy X-ConditionMachineOf, then MachineOf",
			unit: "a.service",
			file: "[X-Fleet]\nMachineOf=b.service\nX-ConditionMachineOf=c.service\n",
			want: fleet.Requirements{MachineOf: []string{"c.service", "b.service"}},
		},
		{
			name: "rule 25: same key OR, keys AND, lines don't matter",
			unit: "a.service",
			file: "[X-Fleet]\nMachineMetadata=\"region=a\" \"job=foo\"\nMachineMetadata=\"region=b\" \"job=bar\"\n",
			want: fleet.Requirements{Metadata: map[string][]string{"region": {"a", "b"}, "job": {"foo", "bar"}}},
		},
		{
			name: "rule 25: malformed metadata values ignored",
			unit: "a.service",
			file: "[X-Fleet]\nMachineMetadata=novalue\nMachineMetadata=a=b=c\nMachineMetadata==x\nMachineMetadata=k=\nMachineMetadata=ok=yes\n",
			want: fleet.Requirements{Metadata: map[string][]string{"ok": {"yes"}}},
		},
		{
			name: "rule 25: legacy X-ConditionMachineMetadata merges",
			unit: "a.service",
			file: "[X-Fleet]\nMachineMetadata=role=web\nX-ConditionMachineMetadata=role=logs\n",
			want: fleet.Requirements{Metadata: map[string][]string{"role": {"logs", "web"}}},
		},
		{
			name: "rule 26: Conflicts space-separated and repeated",
			unit: "a.service",
			file: "[X-Fleet]\nConflicts=b*.service c?.service\nConflicts=[de].service\n",
			want: fleet.Requirements{Conflicts: []string{"b*.service", "c?.service", "[de].service"}},
		},
		{
			name: "rule 26: legacy X-Conflicts",
			unit: "kappa-test@1.service",
			file: "[X-Fleet]\nX-Conflicts=kappa-test@*.service\n",
			want: fleet.Requirements{Conflicts: []string{"kappa-test@*.service"}},
		},
		{
			name: "rule 26: Replaces",
			unit: "new.service",
			file: "[X-Fleet]\nReplaces=old.service older*.service\n",
			want: fleet.Requirements{Replaces: []string{"old.service", "older*.service"}},
		},
		{
			name: "rule 27: Global truthy values",
			unit: "a.service",
			file: "[X-Fleet]\nGlobal=TRUE\n",
			want: fleet.Requirements{Global: true},
		},
		{
			name: "rule 27: Global last value wins",
			unit: "a.service",
			file: "[X-Fleet]\nGlobal=yes\nGlobal=false\n",
			want: fleet.Requirements{},
		},
		{
			name: "rule 27: Global t, on, 1",
			unit: "a.service",
			file: "[X-Fleet]\nGlobal=0\nGlobal=t\n[X-Fleet]\nGlobal=On\nGlobal=1\n",
			want: fleet.Requirements{Global: true},
		},
		{
			name: "rule 27: Global unknown value is false",
			unit: "a.service",
			file: "[X-Fleet]\nGlobal=enabled\n",
			want: fleet.Requirements{},
		},
		{
			name: "rule 27: StopOnDisconnect defaults to false",
			unit: "a.service",
			file: "[X-Fleet]\nGlobal=true\n",
			want: fleet.Requirements{Global: true},
		},
		{
			name: "rule 27: StopOnDisconnect truthy values",
			unit: "a.service",
			file: "[X-Fleet]\nStopOnDisconnect=yes\n",
			want: fleet.Requirements{StopOnDisconnect: true},
		},
		{
			name: "rule 27: StopOnDisconnect last value wins",
			unit: "a.service",
			file: "[X-Fleet]\nStopOnDisconnect=true\n[X-Fleet]\nStopOnDisconnect=false\n",
			want: fleet.Requirements{},
		},
		{
			name: "rule 27: StopOnDisconnect unknown value is false, and no warning",
			unit: "a.service",
			file: "[X-Fleet]\nStopOnDisconnect=maybe\nConflicts=b.service\n",
			want: fleet.Requirements{Conflicts: []string{"b.service"}},
		},
		{
			name: "Job=true marks a run-to-completion unit",
			unit: "a.service",
			file: "[X-Fleet]\nJob=true\n",
			want: fleet.Requirements{Job: true},
		},
		{
			name: "Job last value wins, no warning",
			unit: "a.service",
			file: "[X-Fleet]\nJob=true\nJob=false\n",
			want: fleet.Requirements{},
		},
		{
			name: "rule 28: empty values and duplicates dropped",
			unit: "a.service",
			file: "[X-Fleet]\nMachineID=\nMachineID=abc\nMachineOf=\nMachineOf=b.service\nMachineOf=b.service\nConflicts=\nConflicts=x y x\n",
			want: fleet.Requirements{MachineID: "abc", MachineOf: []string{"b.service"}, Conflicts: []string{"x", "y"}},
		},
		{
			name:     "rule 29: unknown keys warn once each, in order",
			unit:     "a.service",
			file:     "[X-Fleet]\nFoo=1\nConflicts=b\nBar=2\nFoo=3\nmachineid=lowercase\n",
			want:     fleet.Requirements{Conflicts: []string{"b"}},
			warnings: []string{`unrecognized requirement in [X-Fleet] section: "Foo"`, `unrecognized requirement in [X-Fleet] section: "Bar"`, `unrecognized requirement in [X-Fleet] section: "machineid"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := Requirements(tt.unit, mustParse(t, tt.file))
			if err != nil {
				t.Fatalf("Requirements: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Requirements:\n got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings = %q, want %q", warnings, tt.warnings)
			}
		})
	}
}

func TestSplitMultiValue(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`a=1`, []string{"a=1"}},
		{`"a=1"`, []string{"a=1"}},
		{`"a=1" "b=2"`, []string{"a=1", "b=2"}},
		{`"a=1"  "b=2"`, []string{"a=1", "", "b=2"}}, // fleet's byte loop: two spaces, an empty value
		{`"a b" c "d"`, []string{"a b", "c", "d"}},
		{`"`, []string{""}},
		{`""`, []string{""}},
		{`"a`, []string{`"a`}},
	}
	for _, tt := range tests {
		if got := splitMultiValue(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("rule 21: splitMultiValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRequirementsBadPattern(t *testing.T) {
	for _, key := range []string{"Conflicts", "X-Conflicts", "Replaces"} {
		_, _, err := Requirements("a.service", mustParse(t, "[X-Fleet]\n"+key+"=web[.service\n"))
		if err == nil || !strings.Contains(err.Error(), `pattern "web[.service"`) {
			t.Errorf("rule 26: %s=web[.service: err = %v", key, err)
		}
	}
}

func TestValidateOptions(t *testing.T) {
	tests := []struct {
		name    string
		unit    string
		file    string
		wantErr string
	}{
		{"rule 30: plain unit", "a.service", "[Service]\nExecStart=/bin/true\n", ""},
		{"rule 30: template with specifiers", "web@.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=web@*.service\nMachineMetadata=\"region=%i\"\n", ""},
		{"rule 30: Global with Conflicts and MachineMetadata is allowed", "g.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\nConflicts=x.service\nMachineMetadata=role=web\n", ""},
		{"rule 30: MachineOf with Conflicts that do not match", "a.service", "[X-Fleet]\nMachineOf=db.service\nConflicts=web*.service\n", ""},
		{"rule 30: MachineID+MachineOf", "a.service", "[X-Fleet]\nMachineID=abc\nMachineOf=b.service\n", "MachineID cannot be used with Peers"},
		{"rule 30: legacy X-ConditionMachineID+X-ConditionMachineOf", "a.service", "[X-Fleet]\nX-ConditionMachineID=abc\nX-ConditionMachineOf=b.service\n", "MachineID cannot be used with Peers"},
		{"rule 30: MachineID+Conflicts", "a.service", "[X-Fleet]\nMachineID=abc\nConflicts=b*\n", "MachineID cannot be used with Conflicts"},
		{"rule 30: MachineID+Global", "a.service", "[X-Fleet]\nMachineID=abc\nGlobal=true\n", "MachineID cannot be used with Global"},
		{"rule 30: MachineID+Global=false is fine", "a.service", "[X-Fleet]\nMachineID=abc\nGlobal=false\n", ""},
		{"rule 30: MachineID+Replaces", "a.service", "[X-Fleet]\nMachineID=abc\nReplaces=b.service\n", "MachineID cannot be used with Replaces"},
		{"rule 30: Global+MachineOf", "a.service", "[X-Fleet]\nGlobal=true\nMachineOf=b.service\n", "Global cannot be used with Peers"},
		{"rule 30: Global+Replaces", "a.service", "[X-Fleet]\nGlobal=true\nReplaces=b.service\n", "Global cannot be used with Replaces"},
		{"rule 30: Conflicts+Replaces", "a.service", "[X-Fleet]\nConflicts=b.service\nReplaces=c.service\n", "Conflicts cannot be used with Replaces"},
		{"rule 30: peer matches conflict", "a.service", "[X-Fleet]\nMachineOf=web@1.service\nConflicts=web@*.service\n", `unresolvable requirements: peer "web@1.service" matches conflict "web@*.service"`},
		{"rule 30: peer matches conflict after specifiers", "side@1.service", "[X-Fleet]\nMachineOf=%p@%i.service\nConflicts=side@*\n", `unresolvable requirements: peer "side@1.service" matches conflict "side@*"`},
		{"rule 30: peer matches replace", "a.service", "[X-Fleet]\nMachineOf=old.service\nReplaces=old*\n", `unresolvable requirements: peer "old.service" matches replace "old*"`},
		{"rule 30: malformed Conflicts glob", "a.service", "[X-Fleet]\nConflicts=[a\n", `invalid Conflicts pattern "[a": syntax error in pattern`},
		{"rule 30: malformed Replaces glob", "a.service", "[X-Fleet]\nReplaces=[x\n", `invalid Replaces pattern "[x"`},
		{"rule 30: unknown keys are not errors", "a.service", "[X-Fleet]\nFoo=bar\n", ""},
		{"Job=true with Type=oneshot", "j.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n[X-Fleet]\nJob=true\n", ""},
		{"Job=true without Type", "j.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nJob=true\n", "[X-Fleet] Job=true requires [Service] Type=oneshot, but the unit's Type is simple (the default)"},
		{"Job=true with Type=simple", "j.service", "[Service]\nType=forking\nExecStart=/bin/true\n[X-Fleet]\nJob=true\n", "requires [Service] Type=oneshot, but the unit's Type is forking"},
		{"Job=false with Type=simple", "j.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nJob=false\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateOptions(tt.unit, mustParse(t, tt.file))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ValidateOptions = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("ValidateOptions = nil, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("ValidateOptions = %q, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestValidateOptionsAPI covers options that arrive over the API as JSON,
// not from Parse.
func TestValidateOptionsAPI(t *testing.T) {
	tests := []struct {
		name    string
		opts    []fleet.UnitOption
		wantErr string
	}{
		{"rule 30: no options", nil, "unit has no options"},
		{"rule 30: fine", []fleet.UnitOption{opt("Unit", "Description", "x"), opt("X-Fleet", "Global", "true")}, ""},
		{"rule 30: interleaved sections are fine", []fleet.UnitOption{opt("X-Fleet", "A", "1"), opt("Unit", "B", "2"), opt("X-Fleet", "C", "3")}, ""},
		{"rule 30: continuation value is fine", []fleet.UnitOption{opt("Service", "ExecStart", "/bin/echo \\\n  hi")}, ""},
		{"rule 30: newline without backslash injects an option", []fleet.UnitOption{opt("Service", "ExecStart", "/bin/true\nUser=root")}, "does not survive serialization"},
		{"rule 30: trailing space", []fleet.UnitOption{opt("Unit", "Description", "x ")}, "does not survive serialization"},
		{"rule 30: '=' in name", []fleet.UnitOption{opt("Unit", "A=B", "x")}, "does not survive serialization"},
		{"rule 30: ']' in section", []fleet.UnitOption{opt("Un]it", "A", "x")}, "options do not form a valid unit file: line 1: found garbage"},
		{"rule 30: empty name", []fleet.UnitOption{opt("Unit", "", "x")}, "option without a name"},
		{"rule 30: too many Conflicts", append([]fleet.UnitOption{opt("X-Fleet", "Conflicts", "u1@*.service u2@*.service")}, manyConflicts(MaxRequirementValues+1)...), "too many Conflicts values (1025); the limit is 1024"},
		{"rule 30: 1024 Conflicts are fine", manyConflicts(MaxRequirementValues), ""},
		{"rule 30: overlong line", []fleet.UnitOption{opt("Service", "ExecStart", strings.Repeat("x", 3000))}, "the limit is 2047"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateOptions("a.service", tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ValidateOptions = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("ValidateOptions = nil, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("ValidateOptions = %q, want %q", err, tt.wantErr)
			}
		})
	}
}

// manyConflicts returns n Conflicts options with distinct patterns.
func manyConflicts(n int) []fleet.UnitOption {
	opts := make([]fleet.UnitOption, n)
	for i := range opts {
		opts[i] = opt("X-Fleet", "Conflicts", fmt.Sprintf("u%d@*.service", i))
	}
	return opts
}

// TestRequirementsPlacement covers rules 39-42 (see Requirements).
func TestRequirementsPlacement(t *testing.T) {
	res := func(cpu, mem int64) fleet.Requirements {
		return fleet.Requirements{Resources: fleet.Resources{CPUMilli: cpu, MemoryBytes: mem}}
	}
	ops := func(cs ...string) fleet.Requirements {
		var r fleet.Requirements
		for i := 0; i < len(cs); i += 3 {
			r.MetadataOps = append(r.MetadataOps, fleet.MetadataCond{Key: cs[i], Op: cs[i+1], Value: cs[i+2]})
		}
		return r
	}
	tests := []struct {
		name string
		unit string
		file string
		want fleet.Requirements
	}{
		{"rule 39: MachineOf glob", "side@1.service", "[X-Fleet]\nMachineOf=db@*.service\n",
			fleet.Requirements{MachineOf: []string{"db@*.service"}}},
		{"rule 39: MachineOf glob with specifiers", "side@blue.service", "[X-Fleet]\nMachineOf=%i-db@*.service\n",
			fleet.Requirements{MachineOf: []string{"blue-db@*.service"}}},
		{"rule 39: MachineOf with a backslash escape is a name", "a.service", "[X-Fleet]\nMachineOf=foo\\x2dbar.service\n",
			fleet.Requirements{MachineOf: []string{`foo\x2dbar.service`}}},
		{"rule 40: !=", "a.service", "[X-Fleet]\nMachineMetadata=disk!=hdd\n", ops("disk", "!=", "hdd")},
		{"rule 40: every operator, in file order, with =", "a.service",
			"[X-Fleet]\nMachineMetadata=\"cores>=8\" \"mem<=64\" \"gen>3\" \"temp<-1.5\" \"role=web\"\nMachineMetadata=version>=1.2.10\nMachineMetadata=cores>=8\n",
			fleet.Requirements{Metadata: map[string][]string{"role": {"web"}},
				MetadataOps: ops("cores", ">=", "8", "mem", "<=", "64", "gen", ">", "3", "temp", "<", "-1.5", "version", ">=", "1.2.10").MetadataOps}},
		{"rule 40: legacy X-ConditionMachineMetadata takes operators", "a.service", "[X-Fleet]\nX-ConditionMachineMetadata=disk!=ssd\n", ops("disk", "!=", "ssd")},
		{"rule 40: specifiers in an operator value", "a@7.service", "[X-Fleet]\nMachineMetadata=slot!=%i\n", ops("slot", "!=", "7")},
		{"rule 40: '!' without '=' belongs to the key", "a.service", "[X-Fleet]\nMachineMetadata=a!b=c\n",
			fleet.Requirements{Metadata: map[string][]string{"a!b": {"c"}}}},
		{"rule 40: != value may hold '!'", "a.service", "[X-Fleet]\nMachineMetadata=k!=x!y\n", ops("k", "!=", "x!y")},
		{"rule 25 kept: '=' with a second '=' is ignored", "a.service", "[X-Fleet]\nMachineMetadata=a=b>=c\n", fleet.Requirements{}},
		{"rule 41: Memory=400M", "a.service", "[X-Fleet]\nMemory=400M\n", res(0, 400<<20)},
		{"rule 41: Memory= bytes, last value wins", "a.service", "[X-Fleet]\nMemory=1G\nMemory=1000\n", res(0, 1000)},
		{"rule 41: Memory=1.5G", "a.service", "[X-Fleet]\nMemory=1.5G\n", res(0, 3<<29)},
		{"rule 41: Memory=2 T with a space", "a.service", "[X-Fleet]\nMemory=2 T\n", res(0, 2<<40)},
		{"rule 41: Memory=infinity reserves nothing", "a.service", "[X-Fleet]\nMemory=infinity\n[Service]\nMemoryMax=1G\n", res(0, 0)},
		{"rule 41: Memory= beats MemoryMax=", "a.service", "[X-Fleet]\nMemory=100M\n[Service]\nMemoryMax=1G\n", res(0, 100<<20)},
		{"rule 41: MemoryMax= default", "a.service", "[Service]\nMemoryMax=30M\n", res(0, 30<<20)},
		{"rule 41: MemoryMax= last value", "a.service", "[Service]\nMemoryMax=30M\nMemoryMax=40K\n", res(0, 40<<10)},
		{"rule 41: MemoryMax=infinity", "a.service", "[Service]\nMemoryMax=infinity\n", res(0, 0)},
		{"rule 41: MemoryMax= percentage reserves nothing", "a.service", "[Service]\nMemoryMax=50%\n", res(0, 0)},
		{"rule 41: empty Memory= counts as absent", "a.service", "[X-Fleet]\nMemory=\n[Service]\nMemoryMax=1K\n", res(0, 1024)},
		{"rule 41: Memory= from the instance name", "cache@512M.service", "[X-Fleet]\nMemory=%i\n", res(0, 512<<20)},
		{"rule 42: CPU=0.5", "a.service", "[X-Fleet]\nCPU=0.5\n", res(500, 0)},
		{"rule 42: CPU=2", "a.service", "[X-Fleet]\nCPU=2\n", res(2000, 0)},
		{"rule 42: CPU=50%", "a.service", "[X-Fleet]\nCPU=50%\n", res(500, 0)},
		{"rule 42: CPU= rounds up to a milli-CPU", "a.service", "[X-Fleet]\nCPU=0.0001\n", res(1, 0)},
		{"rule 42: CPUQuota=20%", "a.service", "[Service]\nCPUQuota=20%\n", res(200, 0)},
		{"rule 42: CPUQuota=150%", "a.service", "[Service]\nCPUQuota=150%\n", res(1500, 0)},
		{"rule 42: CPU= beats CPUQuota=", "a.service", "[X-Fleet]\nCPU=1\n[Service]\nCPUQuota=20%\n", res(1000, 0)},
		{"rules 41-42: both", "a.service", "[X-Fleet]\nCPU=250%\nMemory=400M\n", res(2500, 400<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := Requirements(tt.unit, mustParse(t, tt.file))
			if err != nil {
				t.Fatalf("Requirements: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Requirements:\n got %+v\nwant %+v", got, tt.want)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings %q", warnings)
			}
			if err := ValidateOptions(tt.unit, mustParse(t, tt.file)); err != nil {
				t.Errorf("ValidateOptions: %v", err)
			}
		})
	}
}

// TestRequirementsPlacementErrors: bad sizes, CPU amounts, operators and
// patterns are errors naming the key and value (the API answers 400).
func TestRequirementsPlacementErrors(t *testing.T) {
	tests := []struct {
		name, file, wantErr string
	}{
		{"rule 39: malformed MachineOf glob", "[X-Fleet]\nMachineOf=db@[.service\n", `invalid MachineOf pattern "db@[.service"`},
		{"rule 40: ordering needs a number or version", "[X-Fleet]\nMachineMetadata=cores>=many\n", `invalid MachineMetadata=cores>=many: >= needs a number or a version (1.2.10), not "many"`},
		{"rule 40: version with a letter", "[X-Fleet]\nMachineMetadata=kernel>5.15.0-91\n", `not "5.15.0-91"`},
		{"rule 40: empty key", "[X-Fleet]\nMachineMetadata=!=x\n", "empty metadata key"},
		{"rule 40: empty value", "[X-Fleet]\nMachineMetadata=disk!=\n", `no value after "!="`},
		{"rule 40: value with an operator", "[X-Fleet]\nMachineMetadata=a<b=c\n", `value "b=c" contains an operator`},
		{"rule 40: legacy key named", "[X-Fleet]\nX-ConditionMachineMetadata=n<x\n", "invalid X-ConditionMachineMetadata=n<x"},
		{"rule 41: negative Memory=", "[X-Fleet]\nMemory=-1G\n", "invalid [X-Fleet] Memory=-1G: size is negative"},
		{"rule 41: unknown suffix", "[X-Fleet]\nMemory=400MB\n", `invalid [X-Fleet] Memory=400MB: unknown size suffix "MB"`},
		{"rule 41: lower-case suffix", "[X-Fleet]\nMemory=400m\n", `unknown size suffix "m"`},
		{"rule 41: percent Memory=", "[X-Fleet]\nMemory=50%\n", `unknown size suffix "%"`},
		{"rule 41: not a number", "[X-Fleet]\nMemory=lots\n", "invalid [X-Fleet] Memory=lots: not a size"},
		{"rule 41: trailing dot", "[X-Fleet]\nMemory=1.G\n", "not a size"},
		{"rule 41: too large", "[X-Fleet]\nMemory=9E\n", "size too large"},
		{"rule 41: bad MemoryMax=", "[Service]\nMemoryMax=1Gb\n", `invalid [Service] MemoryMax=1Gb: unknown size suffix "Gb"`},
		{"rule 41: negative MemoryMax=", "[Service]\nMemoryMax=-5\n", "invalid [Service] MemoryMax=-5: size is negative"},
		{"rule 42: negative CPU=", "[X-Fleet]\nCPU=-1\n", "invalid [X-Fleet] CPU=-1: CPU amount is negative"},
		{"rule 42: malformed CPU=", "[X-Fleet]\nCPU=two\n", "invalid [X-Fleet] CPU=two: not a CPU amount"},
		{"rule 42: CPU= trailing dot", "[X-Fleet]\nCPU=1.\n", "not a CPU amount"},
		{"rule 42: CPUQuota= without %", "[Service]\nCPUQuota=20\n", "invalid [Service] CPUQuota=20: want a percentage"},
		{"rule 42: CPUQuota= malformed", "[Service]\nCPUQuota=x%\n", "invalid [Service] CPUQuota=x%: not a CPU amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := mustParse(t, tt.file)
			_, _, err := Requirements("a.service", opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Requirements error = %v, want %q", err, tt.wantErr)
			}
			if err := ValidateOptions("a.service", opts); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateOptions error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		inf  bool
		err  bool
	}{
		{"0", 0, false, false},
		{"1", 1, false, false},
		{"1K", 1024, false, false},
		{"400M", 400 << 20, false, false},
		{"1G", 1 << 30, false, false},
		{"1T", 1 << 40, false, false},
		{"1P", 1 << 50, false, false},
		{"7E", 7 << 60, false, false},
		{"0.5K", 512, false, false},
		{"1.5", 1, false, false},
		{"1.999999999999G", 2147483646, false, false}, // nine fraction digits count, floor
		{"1.25E", 5 << 58, false, false},
		{" 3 G ", 3 << 30, false, false},
		{"infinity", 0, true, false},
		{"9223372036854775807", 1<<63 - 1, false, false},
		{"9223372036854775808", 0, false, true},
		{"8E", 0, false, true},
		{"7.99999999999E", 0, false, false}, // checked below: below 8E
		{"", 0, false, true},
		{"-1", 0, false, true},
		{"+1", 0, false, true},
		{"1KB", 0, false, true},
		{"1k", 0, false, true},
		{"1B", 0, false, true},
		{"1.2.3", 0, false, true},
		{".5G", 0, false, true},
		{"1 G 2", 0, false, true},
		{"Infinity", 0, false, true},
	}
	for _, tt := range tests {
		got, inf, err := ParseSize(tt.in)
		if (err != nil) != tt.err || inf != tt.inf || !tt.err && tt.in != "7.99999999999E" && got != tt.want {
			t.Errorf("rule 41: ParseSize(%q) = %d, %v, %v; want %d, %v, err=%v", tt.in, got, inf, err, tt.want, tt.inf, tt.err)
		}
	}
	if got, _, _ := ParseSize("7.99999999999E"); got <= 7<<60 || got > 1<<63-1 {
		t.Errorf("ParseSize(7.99999999999E) = %d", got)
	}
}

func TestParseCPU(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"1", 1000, false},
		{"0.5", 500, false},
		{".5", 500, false},
		{"2.25", 2250, false},
		{"0.0001", 1, false},
		{"1.0010", 1001, false},
		{"50%", 500, false},
		{"20%", 200, false},
		{"150%", 1500, false},
		{"12.5%", 125, false},
		{"12.34%", 124, false},
		{"100 %", 1000, false},
		{"", 0, true},
		{"%", 0, true},
		{".", 0, true},
		{"1.", 0, true},
		{"-0.5", 0, true},
		{"1e3", 0, true},
		{"two", 0, true},
		{"1,5", 0, true},
		{"50%%", 0, true},
		{"9999999999999999", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseCPU(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("rule 42: ParseCPU(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestIsNumberIsVersion(t *testing.T) {
	for _, tt := range []struct {
		in           string
		num, version bool
	}{
		{"8", true, true}, {"-1", true, false}, {"0.5", true, true}, {"1.2.10", false, true},
		{"", false, false}, {"-", false, false}, {".5", false, false}, {"1.", false, false},
		{"1..2", false, false}, {"v1.2", false, false}, {"1e3", false, false}, {"-1.2.3", false, false},
	} {
		if IsNumber(tt.in) != tt.num || IsVersion(tt.in) != tt.version {
			t.Errorf("rule 40: %q: IsNumber %v IsVersion %v, want %v %v", tt.in, IsNumber(tt.in), IsVersion(tt.in), tt.num, tt.version)
		}
	}
}

// FuzzPlacementParsers: ParseSize, ParseCPU and the MachineMetadata
// operator split never panic, and what they accept is consistent.
func FuzzPlacementParsers(f *testing.F) {
	for _, s := range []string{"400M", "1.5G", "-1", "infinity", "0.5", "50%", "disk!=hdd", "cores>=8", "v>=1.2.10", "a!b=c", "<", "!", "k<=", "9E", "1.999999999999E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, inf, err := ParseSize(s); err == nil && (n < 0 || inf && n != 0) {
			t.Fatalf("ParseSize(%q) = %d, %v", s, n, inf)
		}
		if n, err := ParseCPU(s); err == nil && n < 0 {
			t.Fatalf("ParseCPU(%q) = %d", s, n)
		}
		key, op, val, err := parseMetadataCond(s)
		if err != nil || op == "" {
			return
		}
		if key == "" || val == "" || key+op+val != s {
			t.Fatalf("parseMetadataCond(%q) = %q %q %q", s, key, op, val)
		}
		if op != "=" && op != "!=" && !IsNumber(val) && !IsVersion(val) {
			t.Fatalf("parseMetadataCond(%q) accepted %q for %s", s, val, op)
		}
	})
}
