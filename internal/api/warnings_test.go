package api

import (
	"reflect"
	"testing"
)

// TestSubmitWarnings: a unit with keys systemd does not know is accepted
// (201, empty body as fleet) and each key is named in an X-Fleet-Warning
// header.
func TestSubmitWarnings(t *testing.T) {
	tests := []struct {
		name string
		body string
		code int
		want []string
	}{
		{"misspelt key in [Service]",
			unitBody("a.service", "Service|ExecStart|/bin/true", "Service|ExecStrat|/bin/true"), 201,
			[]string{"a.service: Unknown key name 'ExecStrat' in section 'Service', ignoring."}},
		{"several, in order",
			unitBody("b.service", "Unit|Descripton|x", "Service|ExecStart|/bin/true", "Install|WantedBY|multi-user.target"), 201,
			[]string{"b.service: Unknown key name 'Descripton' in section 'Unit', ignoring.",
				"b.service: Unknown key name 'WantedBY' in section 'Install', ignoring."}},
		{"known keys only",
			unitBody("c.service", "Unit|Description|x", "Service|ExecStart|/bin/true", "Install|WantedBy|multi-user.target"), 201,
			nil},
		{"X- keys and unknown sections are not checked",
			unitBody("d.service", "Service|ExecStart|/bin/true", "Service|X-Mine|1", "Socket|ListenStrem|80"), 201,
			nil},
		{"a rejected unit gets no warning",
			unitBody("e.service", "Service|ExecStrat|/bin/true", "X-Fleet|MachineID|a", "X-Fleet|Global|true"), 400,
			nil},
	}
	e := newEnv(t, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.do("PUT", "/fleet/v1/units/"+unitNameOf(tt.body)+"?alt=json", "application/json", tt.body)
			if got.code != tt.code {
				t.Fatalf("PUT: %d %s, want %d", got.code, got.body, tt.code)
			}
			if tt.code == 201 && got.body != "" {
				t.Errorf("body %q, want empty", got.body)
			}
			if w := got.header.Values(WarningHeader); !reflect.DeepEqual(w, tt.want) {
				t.Errorf("%s = %q, want %q", WarningHeader, w, tt.want)
			}
		})
	}
	// A desired-state change of an existing unit checks nothing.
	got := e.do("PUT", "/fleet/v1/units/a.service?alt=json", "application/json", `{"desiredState":"loaded"}`)
	if got.code != 204 || len(got.header.Values(WarningHeader)) != 0 {
		t.Errorf("state change: %d %q", got.code, got.header.Values(WarningHeader))
	}
}

func unitNameOf(body string) string {
	// bodies are built by unitBody: {"name":"x.service",...
	const p = `{"name":"`
	rest := body[len(p):]
	for i := range rest {
		if rest[i] == '"' {
			return rest[:i]
		}
	}
	return rest
}
