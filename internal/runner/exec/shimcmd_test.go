package exec

import (
	"errors"
	"os"
	"slices"
	"testing"
)

func TestResolveShimCommand(t *testing.T) {
	errNo := errors.New("no")
	exe := func(p string, err error) func() (string, error) {
		return func() (string, error) { return p, err }
	}
	has := func(paths ...string) func(string) bool {
		return func(p string) bool { return slices.Contains(paths, p) }
	}
	inPath := func(p string) func(string) (string, error) {
		return func(file string) (string, error) {
			if file != ShimBinary {
				t.Errorf("LookPath(%q), want %q", file, ShimBinary)
			}
			if p == "" {
				return "", errNo
			}
			return p, nil
		}
	}
	for _, tc := range []struct {
		name string
		l    ShimLookup
		want []string
	}{
		{"next to the executable", ShimLookup{exe("/opt/fleet/fleetd", nil), has("/opt/fleet/fleet-shim"), inPath("/usr/bin/fleet-shim")},
			[]string{"/opt/fleet/fleet-shim"}},
		{"in PATH", ShimLookup{exe("/opt/fleet/fleetd", nil), has("/elsewhere/fleet-shim"), inPath("/usr/bin/fleet-shim")},
			[]string{"/usr/bin/fleet-shim"}},
		{"fallback to fleetd shim", ShimLookup{exe("/opt/fleet/fleetd", nil), has(), inPath("")},
			[]string{"/opt/fleet/fleetd", "shim"}},
		{"go run", ShimLookup{exe("/tmp/go-build1/b001/exe/fleetd", nil), IsExecutableFile, inPath("")},
			[]string{"/tmp/go-build1/b001/exe/fleetd", "shim"}},
		{"no executable, in PATH", ShimLookup{exe("", errNo), has("/fleet-shim"), inPath("/usr/bin/fleet-shim")},
			[]string{"/usr/bin/fleet-shim"}},
		{"nothing", ShimLookup{exe("", errNo), has(), inPath("")}, nil},
		{"no lookups", ShimLookup{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ResolveShimCommand(tc.l); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestResolveShimCommandFiles(t *testing.T) {
	dir := t.TempDir()
	fleetd := dir + "/fleetd"
	l := ShimLookup{
		Executable:   func() (string, error) { return fleetd, nil },
		IsExecutable: IsExecutableFile,
		LookPath:     func(string) (string, error) { return "", os.ErrNotExist },
	}
	if got, want := ResolveShimCommand(l), []string{fleetd, "shim"}; !slices.Equal(got, want) {
		t.Errorf("without fleet-shim: got %q, want %q", got, want)
	}
	shim := dir + "/" + ShimBinary
	if err := os.WriteFile(shim, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := ResolveShimCommand(l), []string{fleetd, "shim"}; !slices.Equal(got, want) {
		t.Errorf("non-executable fleet-shim: got %q, want %q", got, want)
	}
	if err := os.Chmod(shim, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, want := ResolveShimCommand(l), []string{shim}; !slices.Equal(got, want) {
		t.Errorf("with fleet-shim: got %q, want %q", got, want)
	}
}
