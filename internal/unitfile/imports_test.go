package unitfile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPureImports keeps the package pure: its non-test files import only
// these packages (no I/O, clock or randomness).
func TestPureImports(t *testing.T) {
	allowed := map[string]bool{
		"bytes": true, "crypto/sha1": true, "encoding/hex": true, "errors": true,
		"fmt": true, "path": true, "reflect": true, "strconv": true, "strings": true,
		// time only for Duration values: TestNoClock forbids its clock.
		"time":    true,
		"unicode": true, "unicode/utf8": true,
		"github.com/coreos/go-systemd/v22/unit":  true,
		"github.com/fleetd/fleet/internal/fleet": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[p] {
				t.Errorf("%s imports %q, which a pure package may not", name, p)
			}
		}
	}
}

// TestNoClock keeps the package free of the clock and of timers: time is
// imported for time.Duration only.
func TestNoClock(t *testing.T) {
	forbidden := map[string]bool{
		"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && forbidden[sel.Sel.Name] {
				t.Errorf("%s uses time.%s, which a pure package may not", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
