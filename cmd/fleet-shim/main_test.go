package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps fleet-shim small: one runs per unit, and every package
// linked in initialises in each of them.
func TestDeps(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	heavy := []string{
		"go.etcd.io/",
		"google.golang.org/grpc",
		"google.golang.org/protobuf",
		"github.com/golang/protobuf",
		"github.com/gogo/protobuf",
		"github.com/prometheus/",
		"go.uber.org/zap",
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps: no packages")
	}
	for _, d := range deps {
		for _, h := range heavy {
			if strings.HasPrefix(d, h) {
				t.Errorf("fleet-shim depends on %s", d)
			}
		}
	}
}
