package keys

import (
	"testing"
)

func TestLayoutRoundTrip(t *testing.T) {
	l := New("/p")
	for _, tc := range []struct {
		key  string
		want Key
	}{
		{l.Unit("web@1.service"), Key{Kind: Unit, Unit: "web@1.service"}},
		{l.Machine("m1"), Key{Kind: Machine, Machine: "m1"}},
		{l.Metadata("m1", "region"), Key{Kind: Metadata, Machine: "m1", Name: "region"}},
		{l.Schedule("m1", "a.service"), Key{Kind: Schedule, Machine: "m1", Unit: "a.service"}},
		{l.Placement("a.service", "m1"), Key{Kind: Placement, Machine: "m1", Unit: "a.service"}},
		{l.State("m1", "a.service"), Key{Kind: State, Machine: "m1", Unit: "a.service"}},
		{l.Reason("a.service"), Key{Kind: Reason, Unit: "a.service"}},
		{l.LeaderPrefix() + "/694d8a", Key{Kind: Leader, Name: "694d8a"}},
		{l.Token("abc"), Key{Kind: Token, Name: "abc"}},
		{l.Revision("web@.service", "abc"), Key{Kind: Revision, Unit: "web@.service", Name: "abc"}},
		{l.Rollout("web@.service"), Key{Kind: Rollout, Unit: "web@.service"}},
		{l.Check("m1", "web@1.service"), Key{Kind: Check, Machine: "m1", Unit: "web@1.service"}},
		{l.Job("j.service", "m1"), Key{Kind: Job, Machine: "m1", Unit: "j.service"}},
	} {
		got, ok := l.Parse(tc.key)
		if !ok || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.key, got, ok, tc.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	l := New("")
	if l.Prefix() != DefaultPrefix {
		t.Fatalf("default prefix %q", l.Prefix())
	}
	for _, key := range []string{
		"/other/units/a.service",
		DefaultPrefix + "units/",
		DefaultPrefix + "units",
		DefaultPrefix + "units/a/b",
		DefaultPrefix + "schedule/m1",
		DefaultPrefix + "schedule/m1/",
		DefaultPrefix + "schedule//a.service",
		DefaultPrefix + "states/m1/a/b",
		DefaultPrefix + "engine/other/1",
		DefaultPrefix + "auth/tokens/",
		DefaultPrefix + "revisions/a.service",
		DefaultPrefix + "revisions/a.service/",
		DefaultPrefix + "rollouts/a/b",
		DefaultPrefix + "nothing/x",
	} {
		if k, ok := l.Parse(key); ok {
			t.Errorf("Parse(%q) = %+v, want refused", key, k)
		}
	}
}

func FuzzParse(f *testing.F) {
	l := New("/p/")
	f.Add("/p/units/a.service")
	f.Add("/p/schedule/m/u")
	f.Add("/p/engine/leader/1")
	f.Fuzz(func(t *testing.T, key string) {
		k, ok := l.Parse(key)
		if !ok {
			return
		}
		// What parses is rebuilt into the same key.
		var back string
		switch k.Kind {
		case Unit:
			back = l.Unit(k.Unit)
		case Machine:
			back = l.Machine(k.Machine)
		case Metadata:
			back = l.Metadata(k.Machine, k.Name)
		case Schedule:
			back = l.Schedule(k.Machine, k.Unit)
		case Placement:
			back = l.Placement(k.Unit, k.Machine)
		case State:
			back = l.State(k.Machine, k.Unit)
		case Reason:
			back = l.Reason(k.Unit)
		case Revision:
			back = l.Revision(k.Unit, k.Name)
		case Rollout:
			back = l.Rollout(k.Unit)
		case Check:
			back = l.Check(k.Machine, k.Unit)
		case Job:
			back = l.Job(k.Unit, k.Machine)
		case Leader:
			back = l.LeaderPrefix() + "/" + k.Name
		case Token:
			back = l.Token(k.Name)
		}
		if back != key {
			t.Fatalf("Parse(%q) = %+v rebuilds %q", key, k, back)
		}
	})
}
