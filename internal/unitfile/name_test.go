package unitfile

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name    string
		unit    string
		wantErr string // "" means valid
	}{
		{"rule 17: plain service", "hello.service", ""},
		{"rule 17: template service", "web@.service", ""},
		{"rule 17: instance service", "web@1.service", ""},
		{"rule 17: all allowed characters", `a-Z_0:9.x\x2d@i.socket`, ""},
		{"rule 17: every unit type", "x.automount", ""},
		{"rule 17: mount", "var-lib.mount", ""},
		{"rule 17: busname", "x.busname", ""},
		{"rule 17: template timer", "backup@daily.timer", ""},
		{"rule 17: template path", "watch@.path", ""},
		{"rule 17: template target", "group@.target", ""},
		{"rule 17: 256 characters", strings.Repeat("a", 248) + ".service", ""},
		{"rule 17: empty", "", "unit name cannot be empty"},
		{"rule 17: 257 characters", strings.Repeat("a", 249) + ".service", "unit name exceeds maximum length (256)"},
		{"rule 17: no dot", "hello", `unit name must contain "."`},
		{"rule 17: ends in dot", "hello.", `unit name cannot end in "."`},
		{"rule 17: unknown type", "x.mount2", `invalid unit type: "mount2"`},
		{"rule 17: type is case-sensitive", "x.Service", `invalid unit type: "Service"`},
		{"rule 17: space", "a b.service", `invalid character ' ' in unit name`},
		{"rule 17: path escape", "../x.service", `invalid character '/' in unit name`},
		{"rule 17: absolute path", "/etc/x.service", `invalid character '/' in unit name`},
		{"rule 17: slash inside", "a/b.service", `invalid character '/' in unit name`},
		{"rule 17: percent", "a%i.service", `invalid character '%' in unit name`},
		{"rule 17: non-ASCII", "café.service", `invalid character 'é' in unit name`},
		{"rule 17: starts with @", "@.service", `unit name cannot start in "@"`},
		{"rule 17: starts with @ and instance", "@x.service", `unit name cannot start in "@"`},
		{"rule 17 (addition): starts with dot", ".service", `unit name cannot start in "."`},
		{"rule 17 (addition): dot-dot", "..service", `unit name cannot start in "."`},
		{"rule 17: template of a mount", "web@.mount", `invalid unit type for template: "mount"`},
		{"rule 17: instance of a device", "x@y.device", `invalid unit type for template: "device"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.unit)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ValidateName(%q) = %v, want nil", tt.unit, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("ValidateName(%q) = nil, want %q", tt.unit, tt.wantErr)
			case tt.wantErr != "" && err.Error() != tt.wantErr:
				t.Fatalf("ValidateName(%q) = %q, want %q", tt.unit, err, tt.wantErr)
			}
		})
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name       string
		in         Name
		unsuffixed string
		template   string
	}{
		{"rule 18: plain", Name{Full: "hello.service", Prefix: "hello", Suffix: ".service"}, "hello", ""},
		{"rule 18: template", Name{Full: "web@.service", Prefix: "web", Suffix: ".service", Template: true}, "web@", "web@.service"},
		{"rule 18: instance", Name{Full: "foo@bar.service", Prefix: "foo", Instance: "bar", Suffix: ".service", IsInstance: true}, "foo@bar", "foo@.service"},
		{"rule 18: dots in instance", Name{Full: "web@10.0.0.1.socket", Prefix: "web", Instance: "10.0.0.1", Suffix: ".socket", IsInstance: true}, "web@10.0.0.1", "web@.socket"},
		{"rule 18: first @ splits", Name{Full: "a@b@c.service", Prefix: "a", Instance: "b@c", Suffix: ".service", IsInstance: true}, "a@b@c", "a@.service"},
		{"rule 18: no dot", Name{Full: "noext", Prefix: "noext"}, "noext", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseName(tt.in.Full)
			if got != tt.in {
				t.Fatalf("ParseName(%q) = %+v, want %+v", tt.in.Full, got, tt.in)
			}
			if u := got.Unsuffixed(); u != tt.unsuffixed {
				t.Errorf("Unsuffixed = %q, want %q", u, tt.unsuffixed)
			}
			if tn := got.TemplateName(); tn != tt.template {
				t.Errorf("TemplateName = %q, want %q", tn, tt.template)
			}
		})
	}
}

func TestNormalizeArg(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"rule 19: bare name gets .service", "foo", "foo.service"},
		{"rule 19: service kept", "foo.service", "foo.service"},
		{"rule 19: path stripped", "units/web@.service", "web@.service"},
		{"rule 19: absolute path stripped", "/home/core/hello.service", "hello.service"},
		{"rule 19: relative escape stripped", "../x.service", "x.service"},
		{"rule 19: socket kept", "fleet.socket", "fleet.socket"},
		{"rule 19: timer kept", "a.timer", "a.timer"},
		{"rule 19: path kept", "a.path", "a.path"},
		{"rule 19: device kept", "a.device", "a.device"},
		{"rule 19: mount kept", "a.mount", "a.mount"},
		{"rule 19: automount kept", "a.automount", "a.automount"},
		{"rule 19: target gets .service (not in fleetctl's list)", "multi-user.target", "multi-user.target.service"},
		{"rule 19: instance without suffix", "web@1", "web@1.service"},
		{"rule 19: trailing slash", "dir/foo/", "foo.service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormalizeArg(tt.in); got != tt.want {
				t.Errorf("NormalizeArg(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
