package tmpl

import (
	"io/fs"
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
			name: "full",
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
			name: "literal multi-line and quoted key",
			in:   "[template]\n\"src\" = 'x'\ndest = '/d'\nkeys = ['/']\nreload_cmd = '''\necho 'hi' \\n'''\n",
			want: ResourceConfig{Src: "x", Dest: "/d", Keys: []string{"/"}, ReloadCmd: "echo 'hi' \\n"},
		},
		{
			name: "line continuation in basic multi-line",
			in:   "[template]\nsrc = 'x'\ndest = '/d'\nkeys = ['/']\ncheck_cmd = \"\"\"a \\\n    b\"\"\"\n",
			want: ResourceConfig{Src: "x", Dest: "/d", Keys: []string{"/"}, CheckCmd: "a b"},
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
		{"unknown key", head + "relaod_cmd = \"x\"\n", `bad.toml:5: unknown key "relaod_cmd" in [template]`},
		{"unknown table", head + "[other]\nx = \"y\"\n", "bad.toml: unknown table [other]"},
		{"key outside table", "src = \"s\"\n" + head, `bad.toml:1: key "src" outside the [template] table`},
		{"missing table", "# nothing\n", "missing [template] table"},
		{"missing required", "[template]\nsrc = \"s\"\n", "missing required key(s): dest, keys"},
		{"empty keys", "[template]\nsrc = \"s\"\ndest = \"/d\"\nkeys = []\n", "bad.toml:4: keys is empty"},
		{"wrong type", "[template]\nsrc = [\"s\"]\n", `bad.toml:2: key "src": want string, got array of strings`},
		{"keys not array", "[template]\nkeys = \"/k\"\n", `key "keys": want array of strings, got string`},
		{"mode int", head + "mode = 644\n", `key "mode": want a string such as "0644"`},
		{"mode leading zero int", head + "mode = 0644\n", "leading zeros are not allowed"},
		{"mode bad", head + "mode = \"rw-r--r--\"\n", `invalid mode "rw-r--r--"`},
		{"duplicate key", head + "src = \"t\"\n", `bad.toml:5: key "src" defined twice`},
		{"duplicate table", head + "[template]\n", "table [template] defined twice"},
		{"unterminated string", "[template]\nsrc = \"abc\n", "bad.toml:2: unterminated string"},
		{"unterminated array", "[template]\nkeys = [\"a\",\n", "unterminated array"},
		{"non-string array", "[template]\nkeys = [1, 2]\n", "arrays may only hold strings"},
		{"bool", "[template]\nsrc = true\n", "booleans are not supported"},
		{"garbage after value", "[template]\nsrc = \"a\" \"b\"\n", `bad.toml:2: unexpected "\"b\"" after value`},
		{"no equals", "[template]\nsrc \"a\"\n", `expected = after key "src"`},
		{"missing value", "[template]\nsrc =\n", "bad.toml:2: missing value"},
		{"bad escape", "[template]\nsrc = \"\\q\"\n", `invalid escape \q`},
		{"dotted key", "[template]\na.b = \"x\"\n", "dotted keys are not supported"},
		{"array of tables", "[[template]]\n", "arrays of tables"},
		{"owner and uid", head + "owner = \"a\"\nuid = 1\n", "both owner and uid set"},
		{"negative uid", head + "uid = -1\n", "out of range"},
		{"invalid utf8", "[template]\nsrc = \"\xff\"\n", "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseResource("bad.toml", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
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
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rc, err := ParseResource("fuzz.toml", data)
		if err == nil && (rc.Src == "" || rc.Dest == "" || len(rc.Keys) == 0) {
			t.Fatalf("accepted a resource without src/dest/keys: %+v", rc)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.toml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
