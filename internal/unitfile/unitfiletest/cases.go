// Package unitfiletest holds the inputs and expected results of systemd's
// value primitives (internal/unitfile: ParseTimespan, ParseBool,
// JoinContinuations, ParseName, ExpandSpecifiers, SplitExecLine), so that
// unitfile's tests and the exec runner's tests feed the same table through
// their own paths and show that both read a unit the same way.
//
// It is test data: only tests import it.
package unitfiletest

import "time"

// Timespan is a time span (TimeoutStartSec=, RestartSec=, CheckInterval=
// ...) and its meaning.
type Timespan struct {
	In       string
	D        time.Duration
	Infinity bool // "infinity", or too long for a time.Duration
	Err      bool
}

// Timespans follow systemd.time(7) and systemd's parse_sec.
var Timespans = []Timespan{
	{In: "90", D: 90 * time.Second},
	{In: "0", D: 0},
	{In: "5s", D: 5 * time.Second},
	{In: "1min 30s", D: 90 * time.Second},
	{In: "1min30s", D: 90 * time.Second},
	{In: "1m30s", D: 90 * time.Second},
	{In: "1h 30min", D: 90 * time.Minute},
	{In: "1h30", D: time.Hour + 30*time.Second},
	{In: "5 5", D: 10 * time.Second},
	{In: "500ms", D: 500 * time.Millisecond},
	{In: "500msec", D: 500 * time.Millisecond},
	{In: "250us", D: 250 * time.Microsecond},
	{In: "250usec", D: 250 * time.Microsecond},
	{In: "250\u00b5s", D: 250 * time.Microsecond},
	{In: "250\u03bcs", D: 250 * time.Microsecond},
	{In: "10 sec", D: 10 * time.Second},
	{In: "10seconds", D: 10 * time.Second},
	{In: "1second", D: time.Second},
	{In: "2 minutes", D: 2 * time.Minute},
	{In: "2h", D: 2 * time.Hour},
	{In: "2hr", D: 2 * time.Hour},
	{In: "1 hour", D: time.Hour},
	{In: "3 days", D: 72 * time.Hour},
	{In: "1d", D: 24 * time.Hour},
	{In: "1w", D: 7 * 24 * time.Hour},
	{In: "2 weeks", D: 14 * 24 * time.Hour},
	{In: "1M", D: 2629800 * time.Second},
	{In: "1 month", D: 2629800 * time.Second},
	{In: "1y", D: 31557600 * time.Second},
	{In: "2years", D: 2 * 31557600 * time.Second},
	{In: "200y", D: 200 * 31557600 * time.Second},
	{In: "1.5s", D: 1500 * time.Millisecond},
	{In: "1.001s", D: 1001 * time.Millisecond},
	{In: ".5s", D: 500 * time.Millisecond},
	{In: "0.5", D: 500 * time.Millisecond},
	{In: "1.5h", D: 90 * time.Minute},
	{In: "1.5us", D: time.Microsecond}, // systemd's resolution is 1us
	{In: "12.34s.56", D: 12900 * time.Millisecond},
	{In: "  5s\t", D: 5 * time.Second},
	{In: "infinity", Infinity: true},
	{In: " infinity ", Infinity: true},
	{In: "300y", Infinity: true}, // beyond a time.Duration
	{In: "", Err: true},
	{In: "   ", Err: true},
	{In: "soon", Err: true},
	{In: "s", Err: true},
	{In: "5 parsecs", Err: true},
	{In: "5x", Err: true},
	{In: "5S", Err: true},
	{In: "5s s", Err: true},
	{In: "-1s", Err: true},
	{In: "5s -1s", Err: true},
	{In: "1..2s", Err: true},
	{In: "1.", Err: true},
	{In: "3.sec", Err: true},
	{In: "12.34.56", Err: true},
	{In: "1e3", Err: true},
	{In: "0x10", Err: true},
	{In: "inf", Err: true},
	{In: "Infinity", Err: true},
	{In: "infinityx", Err: true},
	{In: "99999999999999999999", Err: true},
	{In: "9999999999999y", Err: true}, // beyond systemd's USEC_INFINITY
}

// Bool is a boolean (RemainAfterExit=, SendSIGKILL=, CheckTCP= ...).
type Bool struct {
	In   string
	Want bool
	Err  bool
}

// Bools follow systemd's parse_boolean. Values reach it stripped.
var Bools = []Bool{
	{In: "1", Want: true}, {In: "yes", Want: true}, {In: "y", Want: true},
	{In: "true", Want: true}, {In: "t", Want: true}, {In: "on", Want: true},
	{In: "YES", Want: true}, {In: "True", Want: true}, {In: "ON", Want: true},
	{In: "Y", Want: true}, {In: "T", Want: true},
	{In: "0"}, {In: "no"}, {In: "n"}, {In: "false"}, {In: "f"}, {In: "off"},
	{In: "NO"}, {In: "False"}, {In: "OFF"}, {In: "N"}, {In: "F"},
	{In: "", Err: true}, {In: "maybe", Err: true}, {In: "2", Err: true},
	{In: "tru", Err: true}, {In: "oui", Err: true}, {In: "yes please", Err: true},
}

// Continuation is a raw value as Parse keeps it (backslash-newline
// continuations included) and the value systemd uses.
type Continuation struct {
	In, Want string
}

// Continuations follow systemd's config parser: the backslash becomes a
// space, the lines are joined as they are, the value is stripped.
var Continuations = []Continuation{
	{In: "/bin/true", Want: "/bin/true"},
	{In: " padded\t", Want: "padded"},
	{In: "a\\\nb", Want: "a b"},
	{In: "a \\\nb", Want: "a  b"},
	{In: "a \\\n  b", Want: "a    b"},
	{In: "a \\\r\n  b", Want: "a    b"},
	{In: "a\\\r\nb", Want: "a b"},
	{In: "/usr/bin/docker run \\\n  -p 80:80 \\\n\tnginx", Want: "/usr/bin/docker run    -p 80:80  \tnginx"},
	{In: "x\\\n\\\ny", Want: "x  y"},
	{In: "a \\\n", Want: "a"},
	{In: `C:\dir`, Want: `C:\dir`},
	{In: `a\nb`, Want: `a\nb`},
}

// Name is a unit name taken apart, and NameFormat expanded for it.
type Name struct {
	Name     string
	Prefix   string
	Instance string
	Suffix   string
	Template bool
	Expanded string
}

// NameFormat holds the specifiers that come from the unit name.
const NameFormat = "%n|%N|%p|%P|%i|%I|%f"

// Names: the suffix starts at the last '.', the instance after the first
// '@' before it (systemd's unit_name_to_prefix and unit_name_to_instance).
var Names = []Name{
	{Name: "hello.service", Prefix: "hello", Suffix: ".service",
		Expanded: "hello.service|hello|hello|hello|||/hello"},
	{Name: "web@.service", Prefix: "web", Suffix: ".service", Template: true,
		Expanded: "web@.service|web@|web|web|||/web"},
	{Name: "web@1.service", Prefix: "web", Instance: "1", Suffix: ".service",
		Expanded: "web@1.service|web@1|web|web|1|1|/1"},
	{Name: `web-app@a\x2db-c.service`, Prefix: "web-app", Instance: `a\x2db-c`, Suffix: ".service",
		Expanded: `web-app@a\x2db-c.service|web-app@a\x2db-c|web-app|web/app|a\x2db-c|a-b/c|/a-b/c`},
	{Name: "web@10.0.0.1.socket", Prefix: "web", Instance: "10.0.0.1", Suffix: ".socket",
		Expanded: "web@10.0.0.1.socket|web@10.0.0.1|web|web|10.0.0.1|10.0.0.1|/10.0.0.1"},
	{Name: "a@b@c.service", Prefix: "a", Instance: "b@c", Suffix: ".service",
		Expanded: "a@b@c.service|a@b@c|a|a|b@c|b@c|/b@c"},
	{Name: "mnt-data.mount", Prefix: "mnt-data", Suffix: ".mount",
		Expanded: "mnt-data.mount|mnt-data|mnt-data|mnt/data|||/mnt/data"},
	{Name: "noext", Prefix: "noext",
		Expanded: "noext|noext|noext|noext|||/noext"},
	// A leading dot is the suffix's dot: the prefix is empty (systemd
	// refuses such a name; ValidateName too).
	{Name: ".service", Suffix: ".service",
		Expanded: ".service||||||/"},
}

// Values the Specifier cases assume for the specifiers that do not come
// from the unit name.
const (
	Hostname  = "host1"
	MachineID = "0123456789abcdef0123456789abcdef"
	BootID    = "fedcba9876543210fedcba9876543210"
	User      = "core"
	UID       = "500"
	Home      = "/home/core"
	Shell     = "/bin/bash"
)

// Specifier is a value with %-specifiers, expanded for Unit.
type Specifier struct {
	Unit, In, Want string
}

// Specifiers are expanded in one pass; %% is a percent sign; unknown
// specifiers are kept.
var Specifiers = []Specifier{
	{Unit: "web@1.service", In: "no specifiers", Want: "no specifiers"},
	{Unit: "web@1.service", In: "web-%i", Want: "web-1"},
	{Unit: "web@1.service", In: "%H|%m|%b|%t|%u|%U|%h|%s",
		Want: Hostname + "|" + MachineID + "|" + BootID + "|/run|" + User + "|" + UID + "|" + Home + "|" + Shell},
	{Unit: "web@1.service", In: "100%%", Want: "100%"},
	{Unit: "web@1.service", In: "%%i", Want: "%i"},
	{Unit: "web@1.service", In: "%%%i", Want: "%1"},
	{Unit: "web@1.service", In: "%z %", Want: "%z %"},
	{Unit: "web@1.service", In: "50%", Want: "50%"},
	{Unit: "x@%i.service", In: "%i", Want: "%i"}, // a value is not scanned again
}

// ExecLine is an Exec*= value (raw, continuations included) taken apart.
type ExecLine struct {
	In            string
	IgnoreFailure bool
	Argv0         bool
	NoEnv         bool
	Words         []string
	Err           bool
}

// ExecLines follow systemd.service(5), "Command lines". Every executable is
// absolute and no line has a specifier or, without ':', a variable, so
// the runner's expansion leaves the words alone.
var ExecLines = []ExecLine{
	{In: "/bin/echo a  b", Words: []string{"/bin/echo", "a", "b"}},
	{In: `/bin/sh -c "echo 'hi there'"`, Words: []string{"/bin/sh", "-c", "echo 'hi there'"}},
	{In: `/bin/echo a"b c"d 'e f'`, Words: []string{"/bin/echo", "ab cd", "e f"}},
	{In: `/bin/echo x\ y \"q\" \x41\101\n`, Words: []string{"/bin/echo", "x y", `"q"`, "AA\n"}},
	{In: `/bin/echo "" ''`, Words: []string{"/bin/echo", "", ""}},
	{In: `/bin/echo 'a\'b'`, Words: []string{"/bin/echo", "a'b"}},
	{In: `/bin/echo \u00e9 \U0001F600 \s \t`, Words: []string{"/bin/echo", "\u00e9", "\U0001F600", " ", "\t"}},
	{In: "-/bin/false", IgnoreFailure: true, Words: []string{"/bin/false"}},
	{In: "@/bin/sh mysh -c true", Argv0: true, Words: []string{"/bin/sh", "mysh", "-c", "true"}},
	{In: "-@:/bin/sh sh -c x", IgnoreFailure: true, Argv0: true, NoEnv: true, Words: []string{"/bin/sh", "sh", "-c", "x"}},
	{In: "+!/bin/true", Words: []string{"/bin/true"}},
	{In: "!!|/bin/true", Words: []string{"/bin/true"}},
	{In: ":/bin/echo $HOME ${USER}", NoEnv: true, Words: []string{"/bin/echo", "$HOME", "${USER}"}},
	{In: "/usr/bin/docker run \\\n  -p 80:80 \\\n  nginx", Words: []string{"/usr/bin/docker", "run", "-p", "80:80", "nginx"}},
	{In: "/bin/echo a \\\r\n b", Words: []string{"/bin/echo", "a", "b"}},
	{In: `/bin/sh -c "a; \` + "\n" + `  b"`, Words: []string{"/bin/sh", "-c", "a;    b"}},
	{In: `/bin/echo "abc`, Err: true},
	{In: `/bin/echo 'abc`, Err: true},
	{In: `/bin/echo abc\`, Err: true},
	{In: `/bin/echo \xZZ`, Err: true},
	{In: `/bin/echo \u12`, Err: true},
	{In: "-", Err: true},
	{In: "@ ", Err: true},
}
