package unitfile

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/fleetd/fleet/internal/fleet"
)

// kappaTest is the template `fleetctl cat kappa-test@.service` printed in
// seed 004, whose `list-unit-files --full` hash the seed also shows.
const kappaTest = `[Unit]
Description=kappa-test
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/usr/bin/docker kill kappa-test-%i
ExecStartPre=-/usr/bin/docker rm kappa-test-%i
ExecStart=/usr/bin/docker run --name=kappa-test-%i --hostname=kappa-test-%i -p 8000 centos:centos6 /bin/sh -c 'cd /tmp/ ; hostname -s > index.html ; python -m SimpleHTTPServer'
ExecStop=/usr/bin/docker stop kappa-test-%i

[Install]
WantedBy=multi-user.target

[X-Fleet]
X-Conflicts=kappa-test-@*.service
`

const kappaTestHash = "559024d01378ac913e63c18dfd75f7a58d1f0bf8"

func goSystemdSerialize(t *testing.T, opts []fleet.UnitOption) []byte {
	t.Helper()
	raw := make([]*unit.UnitOption, len(opts))
	for i, o := range opts {
		raw[i] = unit.NewUnitOption(o.Section, o.Name, o.Value)
	}
	b, err := io.ReadAll(unit.Serialize(raw))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSerializeMatchesGoSystemd(t *testing.T) {
	tests := []struct {
		name string
		opts []fleet.UnitOption
	}{
		{"rule 14: no options", nil},
		{"rule 14: one option", []fleet.UnitOption{opt("Unit", "Description", "x")}},
		{"rule 14: sections in first-appearance order, blank line between", []fleet.UnitOption{
			opt("Unit", "Description", "Hello World"),
			opt("Service", "ExecStart", "/bin/sh -c 'while true; do echo hi; sleep 1; done'"),
			opt("X-Fleet", "Conflicts", "hello*"),
			opt("X-Fleet", "MachineMetadata", "region=us-east-1"),
		}},
		{"rule 14: repeated sections merged into the first", []fleet.UnitOption{
			opt("X-Fleet", "A", "1"), opt("Service", "B", "2"), opt("Unit", "C", "3"), opt("X-Fleet", "D", "4"), opt("Service", "E", "5"),
		}},
		{"rule 14: continuations and trailing newline kept", []fleet.UnitOption{
			opt("Service", "ExecStart", "/usr/bin/docker run \\\n  -p 80:80 \\\n  nginx"),
			opt("Service", "ExecStop", "x \\\n"),
		}},
		{"rule 14: empty values and odd names", []fleet.UnitOption{
			opt("", "", ""), opt("X-Fleet", "Conflicts", ""), opt("Unit", "Desc ription", "a=b=c"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Serialize(tt.opts)
			want := goSystemdSerialize(t, tt.opts)
			if !bytes.Equal(got, want) {
				t.Fatalf("Serialize:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestSerializeParsedFilesMatchGoSystemd(t *testing.T) {
	for name, data := range seedUnits {
		t.Run(name, func(t *testing.T) {
			opts, err := Parse([]byte(data))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got, want := Serialize(opts), goSystemdSerialize(t, opts); !bytes.Equal(got, want) {
				t.Fatalf("Serialize:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestHashSeedKappaTest(t *testing.T) {
	opts, err := Parse([]byte(kappaTest))
	if err != nil {
		t.Fatal(err)
	}
	if got := Hash(opts); got != kappaTestHash {
		t.Fatalf("rule 15: Hash = %s, want %s (the hash fleet printed)", got, kappaTestHash)
	}
	if got := Serialize(opts); string(got) != kappaTest[:len(kappaTest)-1]+"\n" {
		t.Fatalf("rule 14: fleetctl cat output differs:\n%s", got)
	}
}

func TestHashIgnoresFormatting(t *testing.T) {
	a := "# comment\n[Unit]\nDescription = x \n\n[Service]\nExecStart=/bin/true\n"
	b := "[Unit]\r\nDescription=x\r\n[Service]\r\nExecStart=/bin/true"
	oa, err := Parse([]byte(a))
	if err != nil {
		t.Fatal(err)
	}
	ob, err := Parse([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if Hash(oa) != Hash(ob) {
		t.Fatalf("rule 15: same options, different hashes")
	}
	if h := Hash(nil); h != "da39a3ee5e6b4b0d3255bfef95601890afd80709" {
		t.Fatalf("Hash(nil) = %s, want SHA1 of nothing", h)
	}
}

func TestGrouped(t *testing.T) {
	in := []fleet.UnitOption{opt("X-Fleet", "A", "1"), opt("Service", "B", "2"), opt("X-Fleet", "C", "3")}
	want := []fleet.UnitOption{opt("X-Fleet", "A", "1"), opt("X-Fleet", "C", "3"), opt("Service", "B", "2")}
	if got := Grouped(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("Grouped = %q, want %q", got, want)
	}
	back, err := Parse(Serialize(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("rule 16: Parse(Serialize) = %q, want %q", back, want)
	}
}

// TestHashEqualsFleetsForSeeds checks the compatibility promise: for every
// seed unit go-systemd (so fleet) could parse, the hash is fleet's.
func TestHashEqualsFleetsForSeeds(t *testing.T) {
	checked := 0
	for name, data := range seedUnits {
		raw, err := unit.DeserializeOptions(bytes.NewReader([]byte(data)))
		if err != nil {
			continue // fleet could not read it (e.g. a comment in a continuation)
		}
		b, err := io.ReadAll(unit.Serialize(raw))
		if err != nil {
			t.Fatal(err)
		}
		fleetHash := fmt.Sprintf("%x", sha1.Sum(b))
		if got := Hash(mustParse(t, data)); got != fleetHash {
			t.Errorf("rule 15: %s: Hash = %s, fleet's = %s", name, got, fleetHash)
		}
		checked++
	}
	if checked < len(seedUnits)-1 {
		t.Fatalf("only %d of %d seed units checked", checked, len(seedUnits))
	}
}
