package exec

import (
	"os"
	"path/filepath"
)

// ShimBinary is the name of the dedicated shim executable (cmd/fleet-shim):
// the shim alone, without the rest of fleetd linked in, so that each
// running unit costs a few hundred kilobytes of private memory instead of
// a full fleetd's package initialisation.
const ShimBinary = "fleet-shim"

// ShimLookup is what ResolveShimCommand consults; fleetd passes
// os.Executable, a regular-executable-file check and exec.LookPath.
type ShimLookup struct {
	// Executable returns the path of the running fleetd.
	Executable func() (string, error)
	// IsExecutable reports whether path is an executable regular file.
	IsExecutable func(path string) bool
	// LookPath searches PATH for file, like exec.LookPath.
	LookPath func(file string) (string, error)
}

// ResolveShimCommand returns the command that starts a unit's shim (the
// runner's Options.Shim): ShimBinary next to the running executable, else
// ShimBinary found in PATH, else the running executable's hidden `shim`
// subcommand (a lone fleetd binary, or `go run ./cmd/fleetd`). It returns
// nil when none is available: units then run as fleetd's children. The
// path returned is absolute, as shims are started in "/".
func ResolveShimCommand(l ShimLookup) []string {
	exe, exeErr := "", error(nil)
	if l.Executable != nil {
		exe, exeErr = l.Executable()
	} else {
		exeErr = os.ErrNotExist
	}
	if exeErr == nil && exe != "" {
		if abs, err := filepath.Abs(exe); err == nil {
			exe = abs
		}
		next := filepath.Join(filepath.Dir(exe), ShimBinary)
		if l.IsExecutable != nil && l.IsExecutable(next) {
			return []string{next}
		}
	}
	if l.LookPath != nil {
		if p, err := l.LookPath(ShimBinary); err == nil && p != "" {
			if abs, err := filepath.Abs(p); err == nil {
				return []string{abs}
			}
		}
	}
	if exeErr != nil || exe == "" {
		return nil
	}
	return []string{exe, "shim"}
}

// IsExecutableFile reports whether path is a regular file with an execute
// bit set (for ShimLookup.IsExecutable).
func IsExecutableFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
