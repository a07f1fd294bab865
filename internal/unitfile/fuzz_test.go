package unitfile

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParse checks rule 16 and that nothing panics: whatever Parse accepts
// serializes to a file Parse accepts again, with the same options (grouped
// by section) and the same hash, and ValidateOptions' round-trip check
// passes.
func FuzzParse(f *testing.F) {
	for _, u := range seedUnits {
		f.Add([]byte(u))
	}
	for _, s := range []string{
		"",
		"[Unit]\n",
		"[X-Fleet]\nA=1\n[Service]\nB=2\n[X-Fleet]\nC=3\n",
		"[Service]\nA=1 \\\n\nB=2\n",
		"[Service]\nA=1 \\",
		"[Service]\nA=x \\\n# c\n  y \\\n; d\nB=2\n",
		"[Service]\r\nA=x \\\r\n  y\r\n",
		"\uFEFF[Unit]\nDescription=x\n",
		"[Unit] x\n",
		"[Unit\n",
		"Description=x\n[Unit]\n",
		"[Unit]\nno equals\n",
		"[Unit]\nA=\"q\" \"r\"\n",
		"[X-Fleet]\nMachineMetadata=\"a=%i\" \"b=%p\"\nMachineOf=%n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts, err := Parse(data)
		if err != nil {
			return
		}
		ser := Serialize(opts)
		back, err := Parse(ser)
		if err != nil {
			t.Fatalf("Parse(Serialize(opts)) failed: %v\ninput %q\nserialized %q", err, data, ser)
		}
		if want := Grouped(opts); !reflect.DeepEqual(back, want) {
			t.Fatalf("round trip changed the options:\ninput %q\n  got %q\n want %q", data, back, want)
		}
		if Hash(back) != Hash(opts) {
			t.Fatalf("round trip changed the hash for %q", data)
		}
		if again := Serialize(back); !bytes.Equal(again, ser) {
			t.Fatalf("Serialize not stable:\n%q\n%q", ser, again)
		}
		// The rest must not panic; errors are fine.
		_ = ValidateOptions("web@1.service", opts)
		_, _, _ = Requirements("web@.service", opts)
		for _, o := range opts {
			_ = JoinContinuations(o.Value)
		}
	})
}
