package schedule

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPurity keeps the package pure (ARCHITECTURE.md principle 1): its
// non-test files import only the standard library and internal/fleet, no
// I/O, randomness or clock packages, never call time.Now and friends, and
// declare no package-level variables.
func TestPurity(t *testing.T) {
	const self = "github.com/fleetd/fleet/internal/fleet"
	denied := map[string]bool{
		"math/rand": true, "math/rand/v2": true, "crypto/rand": true,
		"os": true, "os/exec": true, "os/signal": true, "syscall": true, "io/ioutil": true, "io/fs": true,
		"net": true, "net/http": true, "unsafe": true, "log": true, "log/slog": true,
		"runtime": true, "sync": true, "context": true, "embed": true, "plugin": true,
	}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true}
	files, err := filepath.Glob("*.go")
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
		timeName := ""
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(p, "/")
			switch {
			case p == self:
			case strings.Contains(first, "."):
				t.Errorf("%s imports %s: only the standard library and internal/fleet are allowed", name, p)
			case denied[p] || strings.HasPrefix(p, "net/"):
				t.Errorf("%s imports %s: no I/O, clock, randomness or concurrency in the scheduler", name, p)
			case p == "time":
				timeName = "time"
				if imp.Name != nil {
					timeName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && timeName != "" && x.Name == timeName && clock[sel.Sel.Name] {
					t.Errorf("%s: %s uses time.%s", name, fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
				t.Errorf("%s: %s declares a package-level variable", name, fset.Position(g.Pos()))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}
