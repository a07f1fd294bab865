package unitfile

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/fleetd/fleet/internal/fleet"
)

// opt is shorthand for a fleet.UnitOption in tables.
func opt(section, name, value string) fleet.UnitOption {
	return fleet.UnitOption{Section: section, Name: name, Value: value}
}

// goSystemd parses data with go-systemd alone, for comparison.
func goSystemd(t *testing.T, data string) []fleet.UnitOption {
	t.Helper()
	raw, err := unit.DeserializeOptions(strings.NewReader(data))
	if err != nil {
		t.Fatalf("go-systemd: %v", err)
	}
	out := make([]fleet.UnitOption, len(raw))
	for i, o := range raw {
		out[i] = opt(o.Section, o.Name, o.Value)
	}
	return out
}

func TestParseOK(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []fleet.UnitOption
		// sameAsGoSystemd: go-systemd alone gives the same options.
		sameAsGoSystemd bool
	}{
		{
			name:            "rule 11: file order, duplicates kept, only first '=' splits",
			in:              "[X-Fleet]\nConflicts=a*.service\nConflicts=b*.service\nMachineMetadata=az=a\n",
			want:            []fleet.UnitOption{opt("X-Fleet", "Conflicts", "a*.service"), opt("X-Fleet", "Conflicts", "b*.service"), opt("X-Fleet", "MachineMetadata", "az=a")},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 11: repeated sections kept in file order",
			in:              "[X-Fleet]\nA=1\n[Service]\nB=2\n[Unit]\nC=3\n[X-Fleet]\nD=4\n",
			want:            []fleet.UnitOption{opt("X-Fleet", "A", "1"), opt("Service", "B", "2"), opt("Unit", "C", "3"), opt("X-Fleet", "D", "4")},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 11: continuation keeps backslash and newline",
			in:              "[Service]\nExecStart=/usr/bin/docker run --name web-%i \\\n  -p 80:80 \\\n  nginx:alpine\nRestart=always\n",
			want:            []fleet.UnitOption{opt("Service", "ExecStart", "/usr/bin/docker run --name web-%i \\\n  -p 80:80 \\\n  nginx:alpine"), opt("Service", "Restart", "always")},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 11: blank line after trailing backslash keeps a newline",
			in:              "[Service]\nA=1 \\\n\nB=2\n",
			want:            []fleet.UnitOption{opt("Service", "A", "1 \\\n"), opt("Service", "B", "2")},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 11: backslash on the last line with final newline",
			in:              "[Service]\nA=1 \\\n",
			want:            []fleet.UnitOption{opt("Service", "A", "1 \\\n")},
			sameAsGoSystemd: true,
		},
		{
			name: "rule 11: backslash on the last line without final newline is read as with one",
			in:   "[Service]\nA=1 \\",
			want: []fleet.UnitOption{opt("Service", "A", "1 \\\n")},
		},
		{
			name:            "rule 11: no quote or escape or specifier processing, no inline comments",
			in:              "[Service]\nEnvironment=\"GREETING=hello world\" 'X=1'\nDescription=foo # x\nAfter=x ; y\nExecStart=/bin/echo %i %n %%i \"quoted \\\"inner\\\"\"\n",
			want:            []fleet.UnitOption{opt("Service", "Environment", `"GREETING=hello world" 'X=1'`), opt("Service", "Description", "foo # x"), opt("Service", "After", "x ; y"), opt("Service", "ExecStart", `/bin/echo %i %n %%i "quoted \"inner\""`)},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 11: empty value kept",
			in:              "[X-Fleet]\nConflicts=a\nConflicts=\nConflicts=b\n",
			want:            []fleet.UnitOption{opt("X-Fleet", "Conflicts", "a"), opt("X-Fleet", "Conflicts", ""), opt("X-Fleet", "Conflicts", "b")},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 11: names and values trimmed, case kept",
			in:              "[unit]\n  description   =   Hello  World  \n\tAfter=\ta.service\t\n",
			want:            []fleet.UnitOption{opt("unit", "description", "Hello  World"), opt("unit", "After", "a.service")},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 7: comments and blank lines before and between sections",
			in:              "# a comment\n; another\n\n[Unit]\n# inside\nDescription=x\n\n   ; indented comment\n[Service]\nExecStart=/bin/true\n",
			want:            []fleet.UnitOption{opt("Unit", "Description", "x"), opt("Service", "ExecStart", "/bin/true")},
			sameAsGoSystemd: true,
		},
		{
			name: "rule 7: comment lines inside a continuation are skipped",
			in:   "[Service]\nExecStart=/usr/bin/docker run \\\n# publish the port\n  -p 80:80 \\\n  ; and the image\n  nginx\nRestart=always\n",
			want: []fleet.UnitOption{opt("Service", "ExecStart", "/usr/bin/docker run \\\n  -p 80:80 \\\n  nginx"), opt("Service", "Restart", "always")},
		},
		{
			name: "rule 7: a comment ending in a backslash does not swallow the next line",
			in:   "[Service]\n# old flags \\\nExecStart=/bin/true\n",
			want: []fleet.UnitOption{opt("Service", "ExecStart", "/bin/true")},
		},
		{
			name: "rule 3: BOM at the start dropped",
			in:   "\uFEFF[Unit]\nDescription=x\n",
			want: []fleet.UnitOption{opt("Unit", "Description", "x")},
		},
		{
			name:            "rule 5: CRLF line ends",
			in:              "[Unit]\r\nDescription=x\r\n\r\n[Service]\r\nExecStart=/bin/true\r\n",
			want:            []fleet.UnitOption{opt("Unit", "Description", "x"), opt("Service", "ExecStart", "/bin/true")},
			sameAsGoSystemd: true,
		},
		{
			name: "rule 5: CRLF continuation",
			in:   "[Service]\r\nExecStart=/bin/echo \\\r\n  hi\r\n",
			want: []fleet.UnitOption{opt("Service", "ExecStart", "/bin/echo \\\n  hi")},
		},
		{
			name:            "rule 9: section header with trailing blanks and leading indentation",
			in:              "  [Unit]   \nDescription=x\n",
			want:            []fleet.UnitOption{opt("Unit", "Description", "x")},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 11: continuation line may look like a header or lack '='",
			in:              "[Service]\nExecStart=/bin/sh -c \\\n[notasection] \\\n  no equals here\n",
			want:            []fleet.UnitOption{opt("Service", "ExecStart", "/bin/sh -c \\\n[notasection] \\\n  no equals here")},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 12: empty section between sections is fine",
			in:              "[Unit]\n[Service]\nExecStart=/bin/true\n",
			want:            []fleet.UnitOption{opt("Service", "ExecStart", "/bin/true")},
			sameAsGoSystemd: true,
		},
		{
			name:            "rule 6: a line of 2047 bytes is accepted",
			in:              "[Service]\nExecStart=" + strings.Repeat("x", MaxLineLength-len("ExecStart=")) + "\n",
			want:            []fleet.UnitOption{opt("Service", "ExecStart", strings.Repeat("x", MaxLineLength-len("ExecStart=")))},
			sameAsGoSystemd: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse:\n got %q\nwant %q", got, tt.want)
			}
			if tt.sameAsGoSystemd {
				if gs := goSystemd(t, tt.in); !reflect.DeepEqual(got, gs) {
					t.Fatalf("differs from go-systemd:\n got %q\n  gs %q", got, gs)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int    // expected ParseError.Line
		msg  string // substring of the message
	}{
		{"rule 4: empty file", "", 0, "unit file is empty"},
		{"rule 4: white space only", " \n\t\n", 0, "unit file is empty"},
		{"rule 4: BOM only", "\uFEFF", 0, "unit file is empty"},
		{"rule 1: larger than MaxSize", "[Unit]\nDescription=" + strings.Repeat("x", 1200000-len("[Unit]\nDescription=")), 0, "unit file is 1200000 bytes; the limit is 1048576"},
		{"rule 2: NUL byte", "[Unit]\nDescription=a\x00b\n", 2, "NUL byte"},
		{"rule 2: invalid UTF-8", "[Unit]\nDescription=x\n\nA=\xff\xfe\n", 4, "not valid UTF-8"},
		{"rule 8: option before the first section", "Description=x\n[Unit]\nA=1\n", 1, `"Description=x" comes before the first [Section] header`},
		{"rule 8: option before section after comments", "# hello\n\nExecStart=/bin/true\n[Service]\n", 3, "before the first [Section] header"},
		{"rule 8: BOM not at the start is content", "\n\uFEFF[Unit]\nA=1\n", 2, "before the first [Section] header"},
		{"rule 8: no section at all (comments only)", "# just a comment\n; and another\n", 0, "no [Section] header"},
		{"rule 10: line without '='", "[Unit]\nDescription=x\nfoo bar\n", 3, `"foo bar" is not a Key=Value line (missing '=')`},
		{"rule 10: empty option name", "[Unit]\n = x\n", 2, "option without a name"},
		{"rule 10: carriage return in option name", "[Unit]\nA\rB=x\n", 2, "carriage return"},
		{"rule 11: a blank line ends a continuation", "[Service]\nA=1 \\\n\nnot an option\n", 4, "missing '='"},
		{"rule 10: spaces after a backslash (value would end in one)", "[Service]\nA=1 \\   \nB=2\n", 2, "backslash followed by white space"},
		{"rule 10: spaces after a backslash on a continuation's last line", "[Service]\nA=1 \\\n  2 \\\t\nB=2\n", 3, "backslash followed by white space"},
		{"rule 10: spaces after a backslash at the end of the file", "[Service]\nA=1\\ ", 2, "backslash followed by white space"},
		{"rule 9: garbage after section name", "[Unit] trailing\nA=1\n", 1, `found garbage after section header [Unit]: "trailing"`},
		{"rule 9: unterminated section header", "[Unit\nA=1\n", 1, "unable to find end of section header"},
		{"rule 9: empty section name", "[]\nA=1\n", 1, "empty section name"},
		{"rule 6: a line of 2048 bytes", "[Service]\nExecStart=" + strings.Repeat("x", MaxLineLength+1-len("ExecStart=")) + "\n", 2, "line is 2048 bytes; the limit is 2047"},
		{"rule 6: a 3000-byte line in a continuation", "[Service]\nExecStart=a \\\n" + strings.Repeat("y", 3000) + "\n", 3, "line is 3000 bytes"},
		{"rule 12: sections without options", "[Unit]\n[Service]\n", 0, "no options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded with %q", opts)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			if pe.Line != tt.line {
				t.Errorf("line = %d, want %d (%v)", pe.Line, tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if tt.line > 0 && !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("error %q does not start with its line", err)
			}
		})
	}
}

// TestParseGoSystemdDrops documents inputs go-systemd accepts silently or
// mangles, and Parse rejects or fixes.
func TestParseGoSystemdDrops(t *testing.T) {
	in := "Description=dropped\n[Unit]\nA=1\n"
	if gs := goSystemd(t, in); len(gs) != 1 {
		t.Fatalf("go-systemd changed: %q", gs)
	}
	if _, err := Parse([]byte(in)); err == nil {
		t.Fatal("Parse accepted an option before the first section")
	}
	in = "[Service]\nExecStart=/bin/echo \\\n# c\n  hi\n"
	if _, err := unit.DeserializeOptions(strings.NewReader(in)); err == nil {
		t.Fatal("go-systemd now accepts a comment in a continuation; revisit rule 7")
	}
}
