package unitfile

import (
	"reflect"
	"testing"
)

func TestValueValuesDescription(t *testing.T) {
	opts := mustParse(t, `[Unit]
Description=first
After=a.service
Description=second

[Service]
Environment=A=1
Environment=B=2
ExecStartPre=/bin/one
ExecStartPre=
ExecStartPre=/bin/two
ExecStartPre=/bin/three
ExecStop=/bin/x
ExecStop=
`)
	if v, ok := Value(opts, "Unit", "Description"); !ok || v != "second" {
		t.Errorf("rule 31: Value(Description) = %q, %v; want last value", v, ok)
	}
	if v, ok := Value(opts, "Unit", "Missing"); ok || v != "" {
		t.Errorf("rule 31: Value(Missing) = %q, %v", v, ok)
	}
	if v, ok := Value(opts, "Service", "ExecStop"); !ok || v != "" {
		t.Errorf("rule 31: Value(ExecStop) = %q, %v; want empty last value", v, ok)
	}
	if got, want := Values(opts, "Service", "Environment"), []string{"A=1", "B=2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rule 31: Values(Environment) = %q, want %q", got, want)
	}
	if got, want := Values(opts, "Service", "ExecStartPre"), []string{"/bin/two", "/bin/three"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rule 31: Values(ExecStartPre) = %q, want %q (empty assignment resets)", got, want)
	}
	if got := Values(opts, "Service", "ExecStop"); got != nil {
		t.Errorf("rule 31: Values(ExecStop) = %q, want nil", got)
	}
	if got := Values(opts, "Unit", "Missing"); got != nil {
		t.Errorf("rule 31: Values(Missing) = %q, want nil", got)
	}
	if d := Description(opts); d != "second" {
		t.Errorf("rule 31: Description = %q", d)
	}
	if d := Description(mustParse(t, "[Service]\nExecStart=/bin/true\n")); d != "" {
		t.Errorf("rule 31: Description without one = %q", d)
	}
}
