package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	tests := []struct {
		name, file, content string
		arg                 string // default: the file's path
		code                int
		stderr              string
	}{
		{"good file", "good.service", helloFile, "", 0, ""},
		{"misspelt key is named", "typo.service", "[Service]\nExecStart=/bin/true\nExecStrat=/bin/true\n", "", 1,
			"typo.service: Unknown key name 'ExecStrat' in section 'Service', ignoring.\n"},
		{"name without .service", "typo2.service", "[Service]\nExecStrat=/bin/true\nExecStart=/bin/true\n", "typo2", 1,
			"typo2.service: Unknown key name 'ExecStrat' in section 'Service', ignoring.\n"},
		{"unknown sections and X- keys are fine", "ext.service",
			"[Service]\nExecStart=/bin/true\nX-Mine=1\n[Socket]\nListenStrem=80\n[Install]\nWantedBy=multi-user.target\n", "", 0, ""},
		{"[X-Fleet] unknown key", "xf.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineIDD=abc\n", "", 1,
			"xf.service: unrecognized requirement in [X-Fleet] section: \"MachineIDD\"\n"},
		{"parse error", "bad.service", "ExecStart=/bin/true\n", "", 1, "bad.service: "},
		{"missing file", "", "", "nope.service", 1, "nope.service: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			arg := filepath.Join(dir, tt.arg)
			if tt.file != "" {
				p := writeFile(t, dir, tt.file, tt.content)
				if tt.arg == "" {
					arg = p
				}
			}
			r := runCLI(t, t.Context(), nil, "verify", arg)
			if r.code != tt.code || r.stdout != "" || !strings.HasPrefix(r.stderr, tt.stderr) || (tt.stderr == "" && r.stderr != "") {
				t.Fatalf("got %+v, want code %d stderr %q", r, tt.code, tt.stderr)
			}
		})
	}
}

func TestSubmitPrintsUnknownKeys(t *testing.T) {
	f := newFakeCluster(t)
	dir := t.TempDir()
	p := writeFile(t, dir, "typo.service", "[Service]\nExecStart=/bin/true\nExecStrat=/bin/true\n")
	for _, cmd := range []string{"submit", "load", "start"} {
		t.Run(cmd, func(t *testing.T) {
			f.mu.Lock()
			delete(f.units, "typo.service")
			delete(f.states, "typo.service")
			f.mu.Unlock()
			r := f.run(t, nil, cmd, p)
			want := "WARNING: Unit typo.service: Unknown key name 'ExecStrat' in section 'Service', ignoring.\n"
			if r.code != 0 || r.stderr != want {
				t.Fatalf("got %+v\nwant stderr %q", r, want)
			}
			if f.unit("typo.service") == nil {
				t.Fatal("unit not submitted")
			}
		})
	}
	// a unit already in the registry is not submitted again: nothing to say
	r := f.run(t, nil, "submit", p)
	wantResult(t, r, 0, "", "")
}

// TestSubmitPrintsServerWarnings: warnings of the server are printed,
// once even when the local check finds the same.
func TestSubmitPrintsServerWarnings(t *testing.T) {
	f := newFakeCluster(t)
	f.putWarnings = map[string][]string{"typo.service": {
		"typo.service: Unknown key name 'ExecStrat' in section 'Service', ignoring.",
		"typo.service: something only the server knows",
	}}
	p := writeFile(t, t.TempDir(), "typo.service", "[Service]\nExecStart=/bin/true\nExecStrat=/bin/true\n")
	wantResult(t, f.run(t, nil, "submit", p), 0, "Unit typo.service inactive\n",
		"WARNING: Unit typo.service: Unknown key name 'ExecStrat' in section 'Service', ignoring.\n"+
			"WARNING: Unit typo.service: something only the server knows\n")
}
