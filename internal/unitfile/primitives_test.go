package unitfile

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile/unitfiletest"
)

// The primitives table (unitfiletest) through unitfile's own paths: the
// functions themselves and the [X-Service] keys that use them. The exec
// runner's TestPrimitivesTable feeds the same table through the runner.

func serviceOpts(kvs ...string) []fleet.UnitOption {
	opts := []fleet.UnitOption{
		{Section: ServiceSection, Name: "Name", Value: "w"},
		{Section: ServiceSection, Name: "Port", Value: "80"},
	}
	for i := 0; i < len(kvs); i += 2 {
		opts = append(opts, fleet.UnitOption{Section: ServiceSection, Name: kvs[i], Value: kvs[i+1]})
	}
	return opts
}

func TestPrimitivesTimespan(t *testing.T) {
	for _, tc := range unitfiletest.Timespans {
		d, inf, err := ParseTimespan(tc.In)
		if (err != nil) != tc.Err || d != tc.D || inf != tc.Infinity {
			t.Errorf("ParseTimespan(%q) = %v, %v, %v; want %v, %v, error %v", tc.In, d, inf, err, tc.D, tc.Infinity, tc.Err)
		}
		// CheckInterval= takes finite, positive spans up to maxCheckSpan.
		if strings.TrimSpace(tc.In) == "" {
			continue // an empty CheckInterval= is the default
		}
		svcs, err := Services("a.service", serviceOpts("CheckInterval", tc.In))
		if ok := !tc.Err && !tc.Infinity && tc.D > 0 && tc.D <= maxCheckSpan; ok {
			if err != nil || svcs[0].CheckInterval != tc.D {
				t.Errorf("CheckInterval=%s: %+v, %v; want %v", tc.In, svcs, err, tc.D)
			}
		} else if err == nil {
			t.Errorf("CheckInterval=%s accepted: %+v", tc.In, svcs)
		}
	}
}

func TestPrimitivesBool(t *testing.T) {
	for _, tc := range unitfiletest.Bools {
		b, err := ParseBool(tc.In)
		if (err != nil) != tc.Err || b != tc.Want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, error %v", tc.In, b, err, tc.Want, tc.Err)
		}
		if tc.In == "" {
			continue // an empty CheckTCP= is the default
		}
		svcs, err := Services("a.service", serviceOpts("CheckTCP", tc.In))
		if (err != nil) != tc.Err || (err == nil && svcs[0].CheckTCP != tc.Want) {
			t.Errorf("CheckTCP=%s: %+v, %v; want %v, error %v", tc.In, svcs, err, tc.Want, tc.Err)
		}
	}
}

func TestPrimitivesContinuation(t *testing.T) {
	for _, tc := range unitfiletest.Continuations {
		if got := JoinContinuations(tc.In); got != tc.Want {
			t.Errorf("JoinContinuations(%q) = %q, want %q", tc.In, got, tc.Want)
		}
	}
}

func TestPrimitivesName(t *testing.T) {
	for _, tc := range unitfiletest.Names {
		n := ParseName(tc.Name)
		want := Name{Full: tc.Name, Prefix: tc.Prefix, Instance: tc.Instance, Suffix: tc.Suffix,
			Template: tc.Template, IsInstance: tc.Instance != ""}
		if n != want {
			t.Errorf("ParseName(%q) = %+v, want %+v", tc.Name, n, want)
		}
		if got := ExpandSpecifiers(unitfiletest.NameFormat, Specifiers{Unit: tc.Name}); got != tc.Expanded {
			t.Errorf("ExpandSpecifiers(%q) for %s:\n got %s\nwant %s", unitfiletest.NameFormat, tc.Name, got, tc.Expanded)
		}
	}
}

func tableSpecifiers(unit string) Specifiers {
	return Specifiers{Unit: unit, Hostname: unitfiletest.Hostname, MachineID: unitfiletest.MachineID,
		BootID: unitfiletest.BootID, User: unitfiletest.User, UID: unitfiletest.UID,
		Home: unitfiletest.Home, Shell: unitfiletest.Shell}
}

func TestPrimitivesSpecifiers(t *testing.T) {
	for _, tc := range unitfiletest.Specifiers {
		if got := ExpandSpecifiers(tc.In, tableSpecifiers(tc.Unit)); got != tc.Want {
			t.Errorf("ExpandSpecifiers(%q) for %s = %q, want %q", tc.In, tc.Unit, got, tc.Want)
		}
	}
}

func TestPrimitivesExecLine(t *testing.T) {
	for _, tc := range unitfiletest.ExecLines {
		p, words, err := SplitExecLine(JoinContinuations(tc.In))
		if tc.Err {
			if err == nil {
				t.Errorf("SplitExecLine(%q) = %+v %q, want an error", tc.In, p, words)
			}
			continue
		}
		want := ExecPrefix{IgnoreFailure: tc.IgnoreFailure, Argv0: tc.Argv0, NoEnv: tc.NoEnv}
		if err != nil || p != want || !reflect.DeepEqual(words, tc.Words) {
			t.Errorf("SplitExecLine(%q) = %+v %q %v; want %+v %q", tc.In, p, words, err, want, tc.Words)
		}
	}
}

// TestFleetSpecifiers pins where fleet's [X-Fleet] rule and systemd's
// specifiers part.
func TestFleetSpecifiers(t *testing.T) {
	for _, tc := range []struct{ unit, in, fleet, systemd string }{
		{"web@1.service", "%n %N %p %i", "web@1.service web@1 web 1", "web@1.service web@1 web 1"},
		{"web@1.service", "%%i", "%1", "%i"},
		{"web@1.service", "100%%", "100%%", "100%"},
		{"web@1.service", "%H %P %f", "%H %P %f", " web /1"},
		{"prod.service", "%%N", "prodrod", "%N"},
		{"a.service", "x", "x", "x"},
	} {
		if got := expandFleetSpecifiers(tc.in, ParseName(tc.unit)); got != tc.fleet {
			t.Errorf("expandFleetSpecifiers(%q) for %s = %q, want %q", tc.in, tc.unit, got, tc.fleet)
		}
		if got := ExpandSpecifiers(tc.in, Specifiers{Unit: tc.unit}); got != tc.systemd {
			t.Errorf("ExpandSpecifiers(%q) for %s = %q, want %q", tc.in, tc.unit, got, tc.systemd)
		}
	}
}

func FuzzTimespan(f *testing.F) {
	for _, tc := range unitfiletest.Timespans {
		f.Add(tc.In)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, inf, err := ParseTimespan(s)
		if err != nil {
			return
		}
		if inf {
			if d != 0 {
				t.Fatalf("ParseTimespan(%q) = %v and infinite", s, d)
			}
			return
		}
		if d < 0 || d%time.Microsecond != 0 {
			t.Fatalf("ParseTimespan(%q) = %v", s, d)
		}
		// The same span written in microseconds, or padded, reads the same.
		for _, again := range []string{fmt.Sprintf("%dus", d/time.Microsecond), " " + s + "\t"} {
			if d2, inf2, err := ParseTimespan(again); err != nil || inf2 || d2 != d {
				t.Fatalf("ParseTimespan(%q) = %v; ParseTimespan(%q) = %v, %v, %v", s, d, again, d2, inf2, err)
			}
		}
	})
}

func FuzzSplitWords(f *testing.F) {
	for _, tc := range unitfiletest.ExecLines {
		f.Add(tc.In)
	}
	for _, s := range []string{`\`, `"`, "a\tb\nc", `$FOO ${BAR} $$`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitWords(s)
		if err != nil {
			return
		}
		again, err := SplitWords(JoinWords(words))
		if err != nil {
			t.Fatalf("quoted form of %q does not split: %v", words, err)
		}
		if len(words) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(words, again) {
			t.Fatalf("round trip: %q -> %q", words, again)
		}
		_, _, _ = SplitExecLine(JoinContinuations(s))
		_ = ExpandSpecifiers(s, Specifiers{Unit: "a@b.service"})
	})
}
