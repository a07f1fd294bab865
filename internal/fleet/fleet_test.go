package fleet

import "testing"

func TestParseJobState(t *testing.T) {
	for _, s := range []string{"inactive", "loaded", "launched"} {
		if got, err := ParseJobState(s); err != nil || string(got) != s {
			t.Errorf("ParseJobState(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "bogus", "Launched", "active"} {
		if _, err := ParseJobState(s); err == nil {
			t.Errorf("ParseJobState(%q) accepted", s)
		}
	}
}

func TestIsTemplate(t *testing.T) {
	cases := map[string]bool{"web@.service": true, "web@1.service": false, "web.service": false, "a@b@.service": false}
	for name, want := range cases {
		if got := IsTemplate(name); got != want {
			t.Errorf("IsTemplate(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestMetadataString(t *testing.T) {
	m := Machine{Metadata: map[string]string{"region": "us-east-1", "az": "a"}}
	if got := m.MetadataString(); got != "az=a,region=us-east-1" {
		t.Errorf("got %q", got)
	}
	if got := (Machine{}).MetadataString(); got != "-" {
		t.Errorf("empty metadata: got %q", got)
	}
	if got := (Machine{ID: "0123456789abcdef"}).ShortID(); got != "01234567" {
		t.Errorf("ShortID %q", got)
	}
}
