package exec

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
	"github.com/fleetd/fleet/internal/unitfile/unitfiletest"
)

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`/bin/sh -c "echo hi"`, `a'b'c "d\"e" \x41`, `\`, `"`, "a\tb\nc", `$FOO ${BAR} $$`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitWords(s)
		if err != nil {
			return
		}
		again, err := SplitWords(unitfile.JoinWords(words))
		if err != nil {
			t.Fatalf("quoted form of %q does not split: %v", words, err)
		}
		if len(words) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(words, again) {
			t.Fatalf("round trip: %q -> %q", words, again)
		}
		// Splitting must never panic on anything derived from the input.
		SplitWords(strings.Join(words, " "))
		env := newEnviron()
		env.set("A", "x y")
		for _, w := range words {
			expandWord(w, env.lookup)
		}
		specifiers{name: "a@b.service"}.expand(s)
	})
}

func TestExpandWord(t *testing.T) {
	env := newEnviron()
	env.set("SPLIT", "  one two  ")
	env.set("ONE", "x y")
	look := env.lookup
	cases := []struct {
		in   string
		want []string
	}{
		{"$SPLIT", []string{"one", "two"}},
		{"${SPLIT}", []string{"  one two  "}},
		{"a${ONE}b", []string{"ax yb"}},
		{"$MISSING", []string{}},
		{"${MISSING}", []string{""}},
		{"$$SPLIT", []string{"$SPLIT"}},
		{"echo $HOME", []string{"echo $HOME"}},
		{"cost: 5$", []string{"cost: 5$"}},
		{"${bad-name}", []string{"${bad-name}"}},
	}
	for _, c := range cases {
		if got := expandWord(c.in, look); !reflect.DeepEqual(got, c.want) {
			t.Errorf("expandWord(%q) = %q want %q", c.in, got, c.want)
		}
	}
}

func TestSpecifiers(t *testing.T) {
	sp := specifiers{name: "web-app@a\\x2db-c.service", hostname: "h", machineID: "m", bootID: "b", user: "root", uid: "0", home: "/root", shell: "/bin/sh"}
	got := sp.expand("%n|%N|%p|%P|%i|%I|%f|%H|%m|%b|%u|%U|%h|%s|%t|%%|%z")
	want := `web-app@a\x2db-c.service|web-app@a\x2db-c|web-app|web/app|a\x2db-c|a-b/c|/a-b/c|h|m|b|root|0|/root|/bin/sh|/run|%|%z`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (specifiers{name: "plain.service"}).expand("%p %i %N"); got != "plain  plain" {
		t.Errorf("plain: %q", got)
	}
}

func TestParseEnvFile(t *testing.T) {
	in := "# comment\n; other\n\nA=1\n  B = two words  \nexport C=\"quoted \\\"x\\\" $y\"\nD='single $z'\nE=cont\\\ninued\nF=\n"
	got, err := parseEnvFile(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "B=two words", `C=quoted "x" $y`, "D=single $z", "E=continued", "F="}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if _, err := parseEnvFile("NOEQUALS\n"); err == nil {
		t.Error("line without = accepted")
	}
}

func TestParseEnvironment(t *testing.T) {
	a, bad, err := parseEnvironment(`"GREETING=hello world" FOO=bar 'X=1' =bad 9X=1`)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, []string{"GREETING=hello world", "FOO=bar", "X=1"}) || len(bad) != 2 {
		t.Errorf("assign %q bad %q", a, bad)
	}
}

func TestExecPrefix(t *testing.T) {
	p, rest := parseExecPrefix("-@:/bin/sh sh -c x")
	if !p.ignoreFailure || !p.argv0 || !p.noEnv || rest != "/bin/sh sh -c x" {
		t.Errorf("%+v %q", p, rest)
	}
	p, rest = parseExecPrefix("+!/bin/true")
	if p.ignoreFailure || rest != "/bin/true" {
		t.Errorf("%+v %q", p, rest)
	}
}

// The primitives table (internal/unitfile/unitfiletest) through the
// runner's own path: options as the runner gets them, parseConfig, the
// specifier adapter and commandLine. unitfile's TestPrimitives* feed the
// same table through unitfile, so both read a unit the same way.

// loadService runs parseConfig on a service with one ExecStart= (unless
// extra has one) and the extra options.
func loadService(t *testing.T, extra ...fleet.UnitOption) (*config, error) {
	t.Helper()
	opts := extra
	hasStart := false
	for _, o := range extra {
		hasStart = hasStart || o.Name == kindStart
	}
	if !hasStart {
		opts = append([]fleet.UnitOption{{Section: "Service", Name: kindStart, Value: "/bin/true"}}, extra...)
	}
	return parseConfig("x.service", opts)
}

func svc(name, value string) fleet.UnitOption {
	return fleet.UnitOption{Section: "Service", Name: name, Value: value}
}

func TestPrimitivesTable(t *testing.T) {
	t.Run("timespans", func(t *testing.T) {
		for _, tc := range unitfiletest.Timespans {
			// TimeoutStartSec=, TimeoutStopSec=: 0 and infinity are none (0).
			timeout := tc.D
			if tc.Infinity {
				timeout = 0
			}
			for _, key := range []string{"TimeoutStartSec", "TimeoutStopSec"} {
				c, err := loadService(t, svc(key, tc.In))
				if (err != nil) != tc.Err {
					t.Errorf("%s=%s: error %v, want error %v", key, tc.In, err, tc.Err)
					continue
				}
				if err != nil {
					continue
				}
				got := c.timeoutStop
				if key == "TimeoutStartSec" {
					got = c.timeoutStart
				}
				if got != timeout {
					t.Errorf("%s=%s: %v, want %v", key, tc.In, got, timeout)
				}
			}
			// RestartSec=: no infinity.
			c, err := loadService(t, svc("RestartSec", tc.In))
			if wantErr := tc.Err || tc.Infinity; (err != nil) != wantErr {
				t.Errorf("RestartSec=%s: error %v, want error %v", tc.In, err, wantErr)
			} else if err == nil && c.restartSec != tc.D {
				t.Errorf("RestartSec=%s: %v, want %v", tc.In, c.restartSec, tc.D)
			}
			// StartLimitIntervalSec=: infinity never forgets (an empty value
			// is the default).
			if strings.TrimSpace(tc.In) == "" {
				continue
			}
			c, err = loadService(t, fleet.UnitOption{Section: "Unit", Name: "StartLimitIntervalSec", Value: tc.In})
			want := tc.D
			if tc.Infinity {
				want = math.MaxInt64
			}
			if (err != nil) != tc.Err {
				t.Errorf("StartLimitIntervalSec=%s: error %v, want error %v", tc.In, err, tc.Err)
			} else if err == nil && c.startLimitInterval != want {
				t.Errorf("StartLimitIntervalSec=%s: %v, want %v", tc.In, c.startLimitInterval, want)
			}
		}
	})
	t.Run("booleans", func(t *testing.T) {
		for _, tc := range unitfiletest.Bools {
			for _, key := range []string{"RemainAfterExit", "GuessMainPID", "SendSIGKILL"} {
				c, err := loadService(t, svc(key, tc.In))
				if (err != nil) != tc.Err {
					t.Errorf("%s=%s: error %v, want error %v", key, tc.In, err, tc.Err)
					continue
				}
				if err != nil {
					continue
				}
				got := map[string]bool{"RemainAfterExit": c.remainAfterExit, "GuessMainPID": c.guessMainPID, "SendSIGKILL": c.sendSIGKILL}[key]
				if got != tc.Want {
					t.Errorf("%s=%s: %v, want %v", key, tc.In, got, tc.Want)
				}
			}
		}
	})
	t.Run("continuations", func(t *testing.T) {
		for _, tc := range unitfiletest.Continuations {
			c, err := loadService(t, fleet.UnitOption{Section: "Unit", Name: "Description", Value: tc.In})
			if err != nil || c.description != tc.Want {
				t.Errorf("Description=%q: %q, %v; want %q", tc.In, c.description, err, tc.Want)
			}
		}
	})
	t.Run("names", func(t *testing.T) {
		for _, tc := range unitfiletest.Names {
			if got := (specifiers{name: tc.Name}).expand(unitfiletest.NameFormat); got != tc.Expanded {
				t.Errorf("%s for %s:\n got %s\nwant %s", unitfiletest.NameFormat, tc.Name, got, tc.Expanded)
			}
		}
	})
	t.Run("specifiers", func(t *testing.T) {
		for _, tc := range unitfiletest.Specifiers {
			sp := specifiers{name: tc.Unit, hostname: unitfiletest.Hostname, machineID: unitfiletest.MachineID,
				bootID: unitfiletest.BootID, user: unitfiletest.User, uid: unitfiletest.UID,
				home: unitfiletest.Home, shell: unitfiletest.Shell}
			if got := sp.expand(tc.In); got != tc.Want {
				t.Errorf("%q for %s = %q, want %q", tc.In, tc.Unit, got, tc.Want)
			}
		}
	})
	t.Run("exec lines", func(t *testing.T) {
		for _, tc := range unitfiletest.ExecLines {
			c, err := loadService(t, svc(kindStart, tc.In))
			if (err != nil) != tc.Err {
				t.Errorf("ExecStart=%q: error %v, want error %v", tc.In, err, tc.Err)
				continue
			}
			if err != nil {
				continue
			}
			l := c.exec[kindStart][0]
			if l.ignoreFailure != tc.IgnoreFailure || l.argv0 != tc.Argv0 || l.noEnv != tc.NoEnv {
				t.Errorf("ExecStart=%q: prefix %+v, want -%v @%v :%v", tc.In, l.execPrefix, tc.IgnoreFailure, tc.Argv0, tc.NoEnv)
			}
			env := newEnviron()
			env.set("HOME", "/root")
			env.set("USER", "root")
			_, path, argv, err := commandLine(l, specifiers{name: "x.service"}, env)
			if err != nil {
				t.Errorf("ExecStart=%q: %v", tc.In, err)
				continue
			}
			words := argv
			if l.argv0 {
				words = append([]string{path}, argv...)
			} else if path != argv[0] {
				t.Errorf("ExecStart=%q: path %q, argv %q", tc.In, path, argv)
			}
			if !reflect.DeepEqual(words, tc.Words) {
				t.Errorf("ExecStart=%q: words %q, want %q", tc.In, words, tc.Words)
			}
		}
	})
}
