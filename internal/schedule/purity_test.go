package schedule

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// impure are the standard packages that do I/O or bring randomness,
// concurrency or the runtime in.
var impure = map[string]bool{
	"math/rand": true, "math/rand/v2": true, "crypto/rand": true,
	"os": true, "os/exec": true, "os/signal": true, "syscall": true, "io/ioutil": true, "io/fs": true,
	"net": true, "net/http": true, "unsafe": true, "log": true, "log/slog": true,
	"runtime": true, "sync": true, "context": true, "embed": true, "plugin": true,
}

// clockFuncs are the time functions that read the clock or start timers.
var clockFuncs = map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true}

// stdlibAnd allows the standard library but its impure packages, and
// the other packages listed.
func stdlibAnd(pkgs ...string) func(string) bool {
	return func(p string) bool {
		if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
			return slices.Contains(pkgs, p)
		}
		return !impure[p] && !strings.HasPrefix(p, "net/")
	}
}

// only allows the packages listed.
func only(pkgs ...string) func(string) bool {
	return func(p string) bool { return slices.Contains(pkgs, p) }
}

// TestPurity keeps the pure packages pure (docs/architecture.md;
// ARCHITECTURE.md principle 1): their non-test files import only what
// their row allows (no I/O, randomness or concurrency), never call
// time.Now and friends (time is there for Duration values) and, where the
// row says so, declare no package-level variables.
func TestPurity(t *testing.T) {
	const fleetPkg = "github.com/fleetd/fleet/internal/fleet"
	for _, pkg := range []struct {
		dir     string // from this package's directory
		allowed func(importPath string) bool
		noVars  bool
	}{
		{dir: "../fleet", allowed: stdlibAnd()},
		{dir: "../schedule", allowed: stdlibAnd(fleetPkg), noVars: true},
		{dir: "../unitfile", allowed: only(
			"bytes", "crypto/sha1", "encoding/hex", "errors", "fmt", "path", "reflect", "strconv", "strings",
			"time", "unicode", "unicode/utf8",
			"github.com/coreos/go-systemd/v22/unit", fleetPkg,
		)},
	} {
		t.Run(filepath.Base(pkg.dir), func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join(pkg.dir, "*.go"))
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			fset := token.NewFileSet()
			for _, name := range files {
				if strings.HasSuffix(name, "_test.go") {
					continue
				}
				f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
				if err != nil {
					t.Fatal(err)
				}
				checked++
				checkPure(t, fset, f, pkg.allowed, pkg.noVars)
			}
			if checked == 0 {
				t.Fatal("no source files checked")
			}
		})
	}
}

// checkPure reports f's imports that allowed refuses, its clock calls and,
// with noVars, its package-level variables.
func checkPure(t *testing.T, fset *token.FileSet, f *ast.File, allowed func(string) bool, noVars bool) {
	t.Helper()
	name := fset.Position(f.Package).Filename
	timeName := ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if !allowed(p) {
			t.Errorf("%s imports %s, which a pure package may not (the rules: internal/schedule/purity_test.go)", name, p)
		}
		if p == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok && timeName != "" && x.Name == timeName && clockFuncs[sel.Sel.Name] {
				t.Errorf("%s uses time.%s, which a pure package may not", fset.Position(sel.Pos()), sel.Sel.Name)
			}
		}
		return true
	})
	if !noVars {
		return
	}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
			t.Errorf("%s declares a package-level variable", fset.Position(g.Pos()))
		}
	}
}
