package unitfile

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
)

func TestUnknownKeys(t *testing.T) {
	o := func(section, name string) fleet.UnitOption {
		return fleet.UnitOption{Section: section, Name: name, Value: "x"}
	}
	tests := []struct {
		name string
		opts []fleet.UnitOption
		want []KeyWarning
	}{
		{"misspelt key in [Service] is named",
			[]fleet.UnitOption{o("Service", "ExecStart"), o("Service", "ExecStrat")},
			[]KeyWarning{{"Service", "ExecStrat"}}},
		{"every key the exec runner supports is known",
			[]fleet.UnitOption{o("Unit", "Description"), o("Unit", "After"), o("Unit", "Requires"), o("Unit", "BindsTo"),
				o("Unit", "Requisite"), o("Unit", "Wants"), o("Service", "Type"), o("Service", "RemainAfterExit"),
				o("Service", "GuessMainPID"), o("Service", "PIDFile"), o("Service", "ExecStartPre"),
				o("Service", "ExecStartPost"), o("Service", "ExecStop"), o("Service", "ExecStopPost"),
				o("Service", "Environment"), o("Service", "EnvironmentFile"), o("Service", "WorkingDirectory"),
				o("Service", "User"), o("Service", "Group"), o("Service", "Restart"), o("Service", "RestartSec"),
				o("Service", "TimeoutStartSec"), o("Service", "TimeoutStopSec"), o("Service", "TimeoutSec"),
				o("Service", "KillMode"), o("Service", "KillSignal"), o("Service", "SendSIGKILL")},
			nil},
		{"documented systemd keys accepted and ignored are known",
			[]fleet.UnitOption{o("Unit", "Documentation"), o("Unit", "StartLimitBurst"), o("Unit", "ConditionPathExists"),
				o("Service", "LimitNOFILE"), o("Service", "StandardOutput"), o("Service", "MemoryMax"),
				o("Service", "ExecReload"), o("Install", "WantedBy"), o("Install", "Alias")},
			nil},
		{"unknown keys in [Unit] and [Install] are named",
			[]fleet.UnitOption{o("Unit", "Descripton"), o("Install", "WantedBY")},
			[]KeyWarning{{"Unit", "Descripton"}, {"Install", "WantedBY"}}},
		{"key names are case-sensitive as in systemd",
			[]fleet.UnitOption{o("Service", "execstart")},
			[]KeyWarning{{"Service", "execstart"}}},
		{"a key is named once per section",
			[]fleet.UnitOption{o("Service", "ExecStrat"), o("Service", "ExecStrat"), o("Unit", "ExecStrat")},
			[]KeyWarning{{"Service", "ExecStrat"}, {"Unit", "ExecStrat"}}},
		{"a key known in another section is still unknown in this one",
			[]fleet.UnitOption{o("Install", "ExecStart")},
			[]KeyWarning{{"Install", "ExecStart"}}},
		{"X- keys are never named",
			[]fleet.UnitOption{o("Service", "X-Whatever"), o("Unit", "X-Foo")},
			nil},
		{"keys of unknown sections are never named",
			[]fleet.UnitOption{o("Socket", "ListenStrem"), o("Timer", "OnCalendr"), o("Custom", "Foo")},
			nil},
		{"[X-Fleet] and [X-Service] have their own checks",
			[]fleet.UnitOption{o("X-Fleet", "Bogus"), o("X-Service", "Bogus")},
			nil},
		{"section names are case-sensitive: [service] is not checked",
			[]fleet.UnitOption{o("service", "ExecStrat")},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UnknownKeys(tt.opts); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UnknownKeys = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestUnknownKeyWarnings(t *testing.T) {
	tests := []struct {
		name string
		unit string
		opts []fleet.UnitOption
		want []string
	}{
		{"systemd's words, with the unit", "x.service",
			[]fleet.UnitOption{{Section: "Service", Name: "ExecStrat", Value: "/bin/true"}},
			[]string{"x.service: Unknown key name 'ExecStrat' in section 'Service', ignoring."}},
		{"control characters are escaped (one line)", "x.service",
			[]fleet.UnitOption{{Section: "Service", Name: "Bad\nKey", Value: "1"}},
			[]string{`x.service: Unknown key name 'Bad\nKey' in section 'Service', ignoring.`}},
		{"nothing to say", "x.service",
			[]fleet.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/true"}},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UnknownKeyWarnings(tt.unit, tt.opts); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UnknownKeyWarnings = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsKnownKey(t *testing.T) {
	tests := []struct {
		section, key string
		want         bool
	}{
		{"Service", "ExecStart", true},
		{"Service", "ExecStrat", false},
		{"Service", "X-Mine", true},
		{"Socket", "Anything", true},
		{"Install", "WantedBy", true},
	}
	for _, tt := range tests {
		if got := IsKnownKey(tt.section, tt.key); got != tt.want {
			t.Errorf("IsKnownKey(%q, %q) = %v, want %v", tt.section, tt.key, got, tt.want)
		}
	}
}

// TestRunnerKeysKnown: every key the exec runner interprets (a quoted,
// capitalized case label of its config parser) is known in [Unit] or
// [Service], so that a key the runner acts on is never warned about.
func TestRunnerKeysKnown(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "runner", "exec", "config.go"))
	if err != nil {
		t.Skipf("runner source not found: %v", err)
	}
	caseRE := regexp.MustCompile(`(?m)^\s*case ((?:"[^"]*",?\s*)+):`)
	litRE := regexp.MustCompile(`"([A-Z][A-Za-z]*)"`)
	n := 0
	for _, m := range caseRE.FindAllStringSubmatch(string(src), -1) {
		for _, l := range litRE.FindAllStringSubmatch(m[1], -1) {
			k := l[1]
			if k == "Unit" || k == "Service" {
				continue // section names
			}
			n++
			if !knownKeys["Unit"][k] && !knownKeys["Service"][k] {
				t.Errorf("runner key %q is unknown to unitfile (add it to runnerUnitKeys or runnerServiceKeys)", k)
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d runner keys: the parser's layout changed", n)
	}
}
