package unitfile

import (
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
		"fmt": true, "path": true, "reflect": true, "strings": true,
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
