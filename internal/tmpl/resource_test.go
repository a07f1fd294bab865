package tmpl

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseResourceGood(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ResourceConfig
	}{
		{
			name: "full, comments, multi-line array and string",
			in: `# a comment
[template]
src = "haproxy.cfg.tmpl"   # trailing comment
dest = '/etc/haproxy/haproxy.cfg'
prefix = "/app"
keys = [
  "/services/web",  # first
  '/haproxy',
]
owner = "root"
group = "root"
mode = "0640"
check_cmd = "haproxy -c -f {{.src}}"
reload_cmd = """
systemctl reload haproxy
"""
`,
			want: ResourceConfig{
				Src: "haproxy.cfg.tmpl", Dest: "/etc/haproxy/haproxy.cfg", Prefix: "/app",
				Keys:  []string{"/services/web", "/haproxy"},
				Owner: "root", Group: "root", Mode: 0o640,
				CheckCmd: "haproxy -c -f {{.src}}", ReloadCmd: "systemctl reload haproxy\n",
			},
		},
		{
			name: "minimal, CRLF, uid/gid ints, escapes",
			in:   "[template]\r\nsrc=\"a\\tb\\u00e9\"\r\ndest=\"/x\"\r\nkeys=[\"/k\",]\r\nuid=1_000\r\ngid=0\r\nmode=\"4755\"\r\n",
			want: ResourceConfig{Src: "a\tb\u00e9", Dest: "/x", Keys: []string{"/k"}, Owner: "1000", Group: "0", Mode: 0o755 | fs.ModeSetuid},
		},
		{
			name: "mode as a string keeps its leading zero",
			in:   "[template]\nsrc = 's'\ndest = '/d'\nkeys = ['/k']\nmode = \"0644\"\n",
			want: ResourceConfig{Src: "s", Dest: "/d", Keys: []string{"/k"}, Mode: 0o644},
		},
		{
			name: "literal multi-line and quoted key",
			in:   "[template]\n\"src\" = 'x'\ndest = '/d'\nkeys = ['/']\nreload_cmd = '''\necho 'hi' \\n'''\n",
			want: ResourceConfig{Src: "x", Dest: "/d", Keys: []string{"/"}, ReloadCmd: "echo 'hi' \\n"},
		},
		{
			name: "line continuation in basic multi-line",
			in:   "[template]\nsrc = 'x'\ndest = '/d'\nkeys = ['/']\ncheck_cmd = \"\"\"a \\\n    b\"\"\"\n",
			want: ResourceConfig{Src: "x", Dest: "/d", Keys: []string{"/"}, CheckCmd: "a b"},
		},
		{
			name: "inline table",
			in:   "template = { src = \"x\", dest = \"/d\", keys = [\"/a\", \"/b\"], uid = 0 }\n",
			want: ResourceConfig{Src: "x", Dest: "/d", Keys: []string{"/a", "/b"}, Owner: "0"},
		},
		{
			name: "dotted keys",
			in:   "template.src = \"x\"\ntemplate.dest = \"/d\"\ntemplate.keys = [\"/\"]\n",
			want: ResourceConfig{Src: "x", Dest: "/d", Keys: []string{"/"}},
		},
		{
			name: "hexadecimal and signed integers",
			in:   "[template]\nsrc = 'x'\ndest = '/d'\nkeys = ['/']\nuid = 0x3e8\ngid = +5\n",
			want: ResourceConfig{Src: "x", Dest: "/d", Keys: []string{"/"}, Owner: "1000", Group: "5"},
		},
		{
			name: "empty table and comments after it",
			in:   "[template] # resource\n\n# the keys\nsrc = 'x' # s\ndest = '/d'\nkeys = ['/'] # k\n# end",
			want: ResourceConfig{Src: "x", Dest: "/d", Keys: []string{"/"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResource("t.toml", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			tc.want.File = "t.toml"
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseResourceBad(t *testing.T) {
	const head = "[template]\nsrc = \"s\"\ndest = \"/d\"\nkeys = [\"/k\"]\n"
	tests := []struct {
		name, in, want string
	}{
		// Unknown keys and tables, by full name and line.
		{"unknown key", head + "relaod_cmd = \"x\"\n", `bad.toml:5: unknown key "template.relaod_cmd" (did you mean "reload_cmd"?)`},
		{"unknown key, no suggestion", head + "watch = true\n", `bad.toml:5: unknown key "template.watch"`},
		{"misspelt key holding a float", head + "chek_cmd = 1.5\n", `bad.toml:5: unknown key "template.chek_cmd" (did you mean "check_cmd"?)`},
		{"key in the wrong case", head + "Mode = \"0644\"\n", `bad.toml:5: unknown key "template.Mode" (names are case-sensitive: did you mean "mode"?)`},
		{"key in the wrong case beside the right one", "[template]\nSRC = 1\nsrc = \"s\"\n", `bad.toml:2: unknown key "template.SRC"`},
		{"table in the wrong case", "[Template]\nsrc = \"s\"\n", `bad.toml:1: unknown table [Template] (names are case-sensitive: did you mean [template]?)`},
		{"unknown table", head + "[other]\nx = \"y\"\n", `bad.toml:5: unknown table [other] (only [template] is allowed)`},
		{"unknown sub-table", head + "[template.extra]\nx = 1\n", `bad.toml:5: unknown key "template.extra"`},
		{"unknown inline table", head + "extra = { x = 1 }\n", `bad.toml:5: unknown key "template.extra"`},
		{"dotted key", "[template]\na.b = \"x\"\n", `bad.toml:2: unknown key "template.a.b"`},
		{"key outside table", "src = \"s\"\n" + head, `bad.toml:1: key "src" outside the [template] table`},
		{"unknown top-level key", "tempalte = 1\n" + head, `bad.toml:1: unknown key "tempalte" (only the [template] table is allowed) (did you mean "template"?)`},
		{"quoted unknown key", head + "\"a b\" = 1\n", `bad.toml:5: unknown key "template.\"a b\""`},
		{
			"every problem, in line order",
			head + "relaod_cmd = \"x\"\nmode = 644\n[other]\n",
			"bad.toml:5: unknown key \"template.relaod_cmd\" (did you mean \"reload_cmd\"?)\n" +
				"bad.toml:7: unknown table [other] (only [template] is allowed)",
		},
		{
			"every type problem, in line order",
			"[template]\nmode = 644\nsrc = 1\ndest = false\nkeys = [1]\n",
			"bad.toml:2: key \"template.mode\": want a string such as \"0644\", got integer\n" +
				"bad.toml:3: key \"template.src\": want string, got integer\n" +
				"bad.toml:4: key \"template.dest\": want string, got boolean\n" +
				"bad.toml:5: key \"template.keys\": want array of strings, got array holding integer",
		},

		// The resource.
		{"missing table", "# nothing\n", "bad.toml: missing [template] table"},
		{"template not a table", "template = \"x\"\n", `bad.toml:1: key "template": want a table, got string`},
		{"array of tables", "[[template]]\nsrc = \"s\"\n", `bad.toml:1: key "template": want a table, got array of tables`},
		{"missing required", "[template]\nsrc = \"s\"\n", "bad.toml: missing required key(s): dest, keys"},
		{"empty src", "[template]\nsrc = \"\"\ndest = \"/d\"\nkeys = [\"/\"]\n", "bad.toml: missing required key(s): src"},
		{"empty keys", "[template]\nsrc = \"s\"\ndest = \"/d\"\nkeys = []\n", "bad.toml:4: keys is empty"},
		{"empty key", "[template]\nsrc = \"s\"\ndest = \"/d\"\n\nkeys = [\"/a\", \"\"]\n", "bad.toml:5: keys holds an empty key"},
		{"owner and uid", head + "owner = \"a\"\nuid = 1\n", "bad.toml: both owner and uid set"},
		{"group and gid", head + "gid = 1\ngroup = \"a\"\n", "bad.toml: both group and gid set"},

		// Types and values.
		{"wrong type", "[template]\nsrc = [\"s\"]\n", `bad.toml:2: key "template.src": want string, got array`},
		{"keys not array", "[template]\nkeys = \"/k\"\n", `bad.toml:2: key "template.keys": want array of strings, got string`},
		{"non-string array", "[template]\nkeys = [1, 2]\n", `bad.toml:2: key "template.keys": want array of strings, got array holding integer`},
		{"float", "[template]\nsrc = 1.5\n", `bad.toml:2: key "template.src": want string, got float`},
		{"boolean", "[template]\nsrc = true\n", `bad.toml:2: key "template.src": want string, got boolean`},
		{"datetime", "[template]\nsrc = 1979-05-27T07:32:00Z\n", `bad.toml:2: key "template.src": want string, got datetime`},
		{"inline table value", "[template]\nsrc = { a = 1 }\n", `bad.toml:2: key "template.src": want string, got table`},
		{"uid float", head + "uid = 1.0\n", `bad.toml:5: key "template.uid": want integer, got float`},
		{"uid string", head + "uid = \"0\"\n", `bad.toml:5: key "template.uid": want integer, got string`},
		{"negative uid", head + "uid = -1\n", `bad.toml:5: key "template.uid": id -1 out of range`},
		{"mode int", head + "mode = 644\n", `bad.toml:5: key "template.mode": want a string such as "0644", got integer`},
		{"mode bad", head + "mode = \"rw-r--r--\"\n", `bad.toml:5: key "template.mode": invalid mode "rw-r--r--"`},
		{"mode too big", head + "mode = \"17777\"\n", `bad.toml:5: key "template.mode": invalid mode "17777" (want octal such as "0644")`},

		// Syntax errors, with their line.
		{"mode leading zero int", head + "mode = 0644\n", `bad.toml:5: Invalid integer "0644": cannot have leading zeroes (write mode as a string, e.g. "0644")`},
		{"duplicate key", head + "src = \"t\"\n", `bad.toml:5: Key 'template.src' has already been defined.`},
		{"duplicate table", head + "[template]\n", `bad.toml:5: Key 'template' has already been defined.`},
		{"unterminated string", "[template]\nsrc = \"abc\n", "bad.toml:2: strings cannot contain newlines"},
		{"unterminated multi-line string", "[template]\n\nsrc = '''abc\n\n", `bad.toml:4: unexpected EOF; expected "'''"`},
		{"unterminated array", "[template]\nkeys = [\"a\",\n", "bad.toml:2: unexpected EOF"},
		{"garbage after value", "[template]\nsrc = \"a\" \"b\"\n", `bad.toml:2: expected a top-level item to end with a newline`},
		{"no equals", "[template]\nsrc \"a\"\n", `bad.toml:2: expected '.' or '='`},
		{"missing value", "[template]\nsrc =\n", `bad.toml:2: expected value but found '\n' instead`},
		{"bad escape", "[template]\nsrc = \"\\q\"\n", `bad.toml:2: invalid escape in string '\q'`},
		{"invalid utf8", "[template]\nsrc = \"\xff\"\n", "bad.toml:2: invalid UTF-8 byte: 0xff"},
		{"unclosed table header", "\n[template\nsrc = \"s\"\n", `bad.toml:3: expected '.' or ']' to end table name`},
		{"NUL byte", "[template]\x00", "bad.toml:1: TOML files cannot contain control characters: '0x00'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseResource("bad.toml", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to start with %q", err, tc.want)
			}
		})
	}
}

// TestParseResourceExample parses the example shipped in examples/haproxy.
func TestParseResourceExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "haproxy", "conf.d", "haproxy.toml"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ParseResource("haproxy.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Src != "haproxy.cfg.tmpl" || rc.Dest != "/etc/haproxy/haproxy.cfg" || !reflect.DeepEqual(rc.Keys, []string{"/services", "/haproxy"}) ||
		rc.Mode != 0o644 || !strings.HasPrefix(rc.ReloadCmd, "P=/run/haproxy.pid;") {
		t.Errorf("%+v", rc)
	}
}

// TestParseResourceDeterministic: the same file gives the same error every
// time, although the decoder visits tables in map order.
func TestParseResourceDeterministic(t *testing.T) {
	in := "[template]\nSrc = 1\nsrc = 's'\nsRc = []\n[Template]\nkeys = 1\n[other]\n[x.y]\nz = 1\n"
	_, first := ParseResource("d.toml", []byte(in))
	if first == nil {
		t.Fatal("no error")
	}
	for range 50 {
		if _, err := ParseResource("d.toml", []byte(in)); err == nil || err.Error() != first.Error() {
			t.Fatalf("error %q, then %q", first, err)
		}
	}
	for _, want := range []string{`d.toml:2: unknown key "template.Src"`, `d.toml:4: unknown key "template.sRc"`, "d.toml:5: unknown table [Template]", "d.toml:7: unknown table [other]", "d.toml:8: unknown table [x.y]"} {
		if !strings.Contains(first.Error(), want) {
			t.Errorf("error %q\nwant it to contain %q", first, want)
		}
	}
}

// TestParseResourceManyProblems: the problems reported are bounded.
func TestParseResourceManyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("[template]\n")
	for i := range 25 {
		b.WriteString("k" + strings.Repeat("x", i) + " = 1\n")
	}
	_, err := ParseResource("m.toml", []byte(b.String()))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxProblems+1 || lines[0] != `m.toml:2: unknown key "template.k"` || lines[maxProblems] != "m.toml: and 15 more problems" {
		t.Errorf("error:\n%s", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"", "abc", 3}, {"chek_cmd", "check_cmd", 1}, {"relaod_cmd", "reload_cmd", 2}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func FuzzParseResource(f *testing.F) {
	seeds := []string{
		"[template]\nsrc = \"s\"\ndest = \"/d\"\nkeys = [\"/k\"]\n",
		"[template]\nkeys = [\n'a', # c\n\"b\",\n]\nmode = \"0644\"\nuid = 12\n",
		"[template]\nreload_cmd = \"\"\"\nx \\\n y\"\"\"\ncheck_cmd = '''a''''\n",
		"a = \"\\u00e9\\U0001F600\"\n[t]\n",
		"[template]\nsrc = \"\\",
		"[template]\nx = -0x1F\ny = 1__0\n",
		"\"\"\"",
		"template = { src = \"s\", dest = \"/d\", keys = [\"/k\"], uid = 0, mode = \"4755\" }\n",
		"template.src = 's'\ntemplate.dest = '/d'\ntemplate.keys = ['/']\n",
		"[template]\nSRC = 1.5\nsrc = true\nkeys = [[1], {a = 2}]\n[Template.x]\n[[other]]\n",
		"[[template]]\nsrc = 1979-05-27\n",
		"[template]\n\"a,b\" = 1\n\"-\" = 2\n\"\" = 3\n",
		"templaTe= '1'\ntemplate.27= []#", // an implicit table beside one differing in case
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rc, err := ParseResource("fuzz.toml", data)
		if err == nil {
			if rc.Src == "" || rc.Dest == "" || len(rc.Keys) == 0 {
				t.Fatalf("accepted a resource without src/dest/keys: %+v", rc)
			}
			for _, k := range rc.Keys {
				if k == "" {
					t.Fatalf("accepted an empty key: %+v", rc)
				}
			}
			return
		}
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), "fuzz.toml") {
				t.Fatalf("error does not name the file: %q", err)
			}
		}
		if _, err2 := ParseResource("fuzz.toml", data); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("error %q, then %q", err, err2)
		}
	})
}
