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
