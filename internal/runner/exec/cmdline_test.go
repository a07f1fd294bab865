package exec

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitWords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{`/bin/echo a  b`, []string{"/bin/echo", "a", "b"}},
		{`/bin/sh -c "echo 'hi there'"`, []string{"/bin/sh", "-c", "echo 'hi there'"}},
		{`a"b c"d 'e f'`, []string{"ab cd", "e f"}},
		{`x\ y \"q\" \x41\101\n`, []string{"x y", `"q"`, "AA\n"}},
		{`"" ''`, []string{"", ""}},
		{"  \t ", nil},
		{`'a\'b'`, []string{"a'b"}},
	}
	for _, c := range cases {
		got, err := SplitWords(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitWords(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`"abc`, `'abc`, `abc\`, `\xZZ`} {
		if _, err := SplitWords(bad); err == nil {
			t.Errorf("SplitWords(%q) succeeded", bad)
		}
	}
}

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`/bin/sh -c "echo hi"`, `a'b'c "d\"e" \x41`, `\`, `"`, "a\tb\nc", `$FOO ${BAR} $$`} {
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

func TestParseTimespan(t *testing.T) {
	cases := map[string]time.Duration{
		"90": 90 * time.Second, "5s": 5 * time.Second, "1min 30s": 90 * time.Second,
		"500ms": 500 * time.Millisecond, "1min30s": 90 * time.Second, "2h": 2 * time.Hour,
		"1.5s": 1500 * time.Millisecond, "0": 0, "3 days": 72 * time.Hour,
	}
	for in, want := range cases {
		d, inf, err := ParseTimespan(in)
		if err != nil || inf || d != want {
			t.Errorf("ParseTimespan(%q) = %v %v %v; want %v", in, d, inf, err, want)
		}
	}
	if _, inf, err := ParseTimespan("infinity"); !inf || err != nil {
		t.Error("infinity")
	}
	for _, bad := range []string{"", "abc", "5 parsecs", "s"} {
		if _, _, err := ParseTimespan(bad); err == nil {
			t.Errorf("ParseTimespan(%q) succeeded", bad)
		}
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

func TestJoinContinuations(t *testing.T) {
	in := "/usr/bin/docker run --name web-%i \\\n  -p 80:80 \\\n  nginx:alpine"
	if got := joinContinuations(in); got != "/usr/bin/docker run --name web-%i -p 80:80 nginx:alpine" {
		t.Errorf("got %q", got)
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
