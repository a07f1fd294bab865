package tmpl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTemplateFunctions(t *testing.T) {
	f := newFixture(t, nil)
	for k, v := range map[string]string{
		"/app/services/web/a":         "10.0.0.1:80",
		"/app/services/web/b":         "10.0.0.2:80",
		"/app/services/web/cc":        "10.0.0.3:80",
		"/app/services/db/main/host":  "db1",
		"/app/services/db/main/port":  "5432",
		"/app/config/json":            `{"a":"x","n":2}`,
		"/app/config/arr":             `["p","q"]`,
		"/app/config/b64":             "aGVsbG8=",
		"/app/config/num":             "42",
		"/app/config/flag":            "true",
		"/outside":                    "no",
		"/app2/sibling-prefix-not-in": "no",
	} {
		f.put(k, v)
	}
	f.writeTemplate("fn.tmpl", "")
	f.writeResource("fn.toml", "[template]\nsrc = \"fn.tmpl\"\ndest = \""+f.out("fn")+"\"\nprefix = \"/app\"\nkeys = [\"/\"]\n")
	d := f.daemon(Options{Env: []string{"FOO=bar", "EMPTY="}})
	r := d.res[0]
	snap, err := d.fetch(f.ctx(), r)
	if err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(f.confDir, "templates", "fn.tmpl")

	tests := []struct {
		fn, tmpl, want string
		wantErr        string // substring of the error, if one is expected
		contains       bool   // want is a substring of the output
	}{
		{fn: "getv", tmpl: `{{getv "/config/num"}}`, want: "42"},
		{fn: "getv", tmpl: `{{getv "config/num"}}`, want: "42"},
		{fn: "getv default", tmpl: `{{getv "/missing" "dflt"}}`, want: "dflt"},
		{fn: "getv default unused", tmpl: `{{getv "/config/num" "dflt"}}`, want: "42"},
		{fn: "getv missing", tmpl: `{{getv "/missing"}}`, wantErr: "key does not exist: /missing"},
		{fn: "getv outside prefix", tmpl: `{{getv "/outside" "hidden"}}`, want: "hidden"},
		{fn: "gets", tmpl: `{{range gets "/services/web/*"}}{{.Key}}={{.Value}};{{end}}`, want: "/services/web/a=10.0.0.1:80;/services/web/b=10.0.0.2:80;/services/web/cc=10.0.0.3:80;"},
		{fn: "gets glob", tmpl: `{{range gets "/services/*/main/*"}}{{.Value}},{{end}}`, want: "db1,5432,"},
		{fn: "gets none", tmpl: `{{len (gets "/nothing/*")}}`, want: "0"},
		{fn: "gets bad pattern", tmpl: `{{gets "/a/["}}`, wantErr: "bad pattern"},
		{fn: "getvs", tmpl: `{{join (getvs "/services/web/*") " "}}`, want: "10.0.0.1:80 10.0.0.2:80 10.0.0.3:80"},
		{fn: "getvs bad pattern", tmpl: `{{getvs "["}}`, wantErr: "bad pattern"},
		{fn: "get", tmpl: `{{with get "/config/num"}}{{.Key}}:{{.Value}}{{end}}`, want: "/config/num:42"},
		{fn: "get missing", tmpl: `{{get "/nope"}}`, wantErr: "key does not exist: /nope"},
		{fn: "ls", tmpl: `{{join (ls "/services/web") ","}}`, want: "a,b,cc"},
		{fn: "ls dirs", tmpl: `{{join (ls "/services") ","}}|{{join (ls "/") ","}}`, want: "db,web|config,services"},
		{fn: "lsdir", tmpl: `{{join (lsdir "/services") ","}}|{{join (lsdir "/services/db") ","}}|{{join (lsdir "/services/web") ","}}`, want: "db,web|main|"},
		{fn: "exists", tmpl: `{{exists "/config/num"}} {{exists "/services"}} {{exists "/outside"}}`, want: "true false false"},
		{fn: "base", tmpl: `{{base "/services/web/a"}}`, want: "a"},
		{fn: "dir", tmpl: `{{dir "/services/web/a"}}`, want: "/services/web"},
		{fn: "split", tmpl: `{{index (split "a:b:c" ":") 1}}`, want: "b"},
		{fn: "join", tmpl: `{{join (split "a:b:c" ":") "-"}}`, want: "a-b-c"},
		{fn: "json", tmpl: `{{$j := json (getv "/config/json")}}{{$j.a}}{{$j.n}}`, want: "x2"},
		{fn: "json bad", tmpl: `{{json "nope"}}`, wantErr: "json:"},
		{fn: "jsonArray", tmpl: `{{range jsonArray (getv "/config/arr")}}{{.}}{{end}}`, want: "pq"},
		{fn: "jsonArray bad", tmpl: `{{jsonArray "{}"}}`, wantErr: "jsonArray:"},
		{fn: "toUpper", tmpl: `{{toUpper "abC"}}`, want: "ABC"},
		{fn: "toLower", tmpl: `{{toLower "AbC"}}`, want: "abc"},
		{fn: "contains", tmpl: `{{contains "haystack" "st"}} {{contains "haystack" "x"}}`, want: "true false"},
		{fn: "replace", tmpl: `{{replace "a-b-c" "-" "_" -1}} {{replace "a-b-c" "-" "_" 1}}`, want: "a_b_c a_b-c"},
		{fn: "trimSuffix", tmpl: `{{trimSuffix "web.example.com" ".com"}}`, want: "web.example"},
		{fn: "datetime", tmpl: `{{(datetime).Year}}`, want: fmt.Sprint(time.Now().Year())},
		{fn: "map", tmpl: `{{$m := map "k" "v" "n" 1}}{{$m.k}}{{$m.n}}`, want: "v1"},
		{fn: "map odd", tmpl: `{{map "k"}}`, wantErr: "odd number"},
		{fn: "map non-string key", tmpl: `{{map 1 2}}`, wantErr: "not a string"},
		{fn: "getenv", tmpl: `{{getenv "FOO"}} {{getenv "NOPE"}}. {{getenv "NOPE" "d"}} {{getenv "EMPTY" "e"}}`, want: "bar . d e"},
		{fn: "atoi", tmpl: `{{add (atoi (getv "/config/num")) 1}}`, want: "43"},
		{fn: "atoi bad", tmpl: `{{atoi "x"}}`, wantErr: "invalid syntax"},
		{fn: "add", tmpl: `{{add 2 3}}`, want: "5"},
		{fn: "sub", tmpl: `{{sub 2 3}}`, want: "-1"},
		{fn: "mul", tmpl: `{{mul 4 3}}`, want: "12"},
		{fn: "div", tmpl: `{{div 7 2}}`, want: "3"},
		{fn: "div zero", tmpl: `{{div 7 0}}`, wantErr: "division by zero"},
		{fn: "mod", tmpl: `{{mod 7 4}}`, want: "3"},
		{fn: "mod zero", tmpl: `{{mod 7 0}}`, wantErr: "division by zero"},
		{fn: "seq", tmpl: `{{range seq 1 3}}{{.}}{{end}}|{{len (seq 3 1)}}`, want: "123|0"},
		{fn: "reverse strings", tmpl: `{{join (reverse (ls "/services/web")) ","}}`, want: "cc,b,a"},
		{fn: "reverse kvs", tmpl: `{{range reverse (gets "/services/web/*")}}{{base .Key}}{{end}}`, want: "ccba"},
		{fn: "reverse non-slice", tmpl: `{{reverse 1}}`, wantErr: "want a slice"},
		{fn: "sortByLength", tmpl: `{{join (sortByLength (split "ccc,a,bb,b" ",")) ","}}`, want: "a,b,bb,ccc"},
		{fn: "sortKVByLength", tmpl: `{{range sortKVByLength (gets "/services/*/*")}}{{base .Key}}{{end}}`, want: "abcc"},
		{fn: "base64Encode", tmpl: `{{base64Encode "hello"}}`, want: "aGVsbG8="},
		{fn: "base64Decode", tmpl: `{{base64Decode (getv "/config/b64")}}`, want: "hello"},
		{fn: "base64Decode bad", tmpl: `{{base64Decode "!!"}}`, wantErr: "base64Decode"},
		{fn: "parseBool", tmpl: `{{if parseBool (getv "/config/flag")}}on{{end}}`, want: "on"},
		{fn: "parseBool bad", tmpl: `{{parseBool "maybe"}}`, wantErr: "invalid syntax"},
		{fn: "lookupIP", tmpl: `{{range lookupIP "127.0.0.1"}}{{.}}{{end}}`, want: "127.0.0.1"},
		{fn: "lookupIP localhost", tmpl: `{{range lookupIP "localhost"}}{{.}} {{end}}`, want: "127.0.0.1", contains: true},
		{fn: "lookupIPV4", tmpl: `{{range lookupIPV4 "localhost"}}{{.}} {{end}}`, want: "127.0.0.1 "},
		{fn: "fileExists", tmpl: fmt.Sprintf(`{{fileExists %q}} {{fileExists %q}}`, existing, existing+".nope"), want: "true false"},
	}
	for _, tc := range tests {
		t.Run(tc.fn, func(t *testing.T) {
			if err := os.WriteFile(r.tmpl, []byte(tc.tmpl), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := d.render(f.ctx(), r, snap)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q (output %q)", err, tc.wantErr, out)
				}
				if !strings.Contains(err.Error(), "fn.tmpl:1:") {
					t.Errorf("error %q does not name the template and line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.contains && !strings.Contains(string(out), tc.want) || !tc.contains && string(out) != tc.want {
				t.Errorf("%s\n got %q\nwant %q", tc.tmpl, out, tc.want)
			}
		})
	}
}
