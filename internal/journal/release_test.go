package journal

import (
	"fmt"
	"os"
	"testing"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestReleaseKeepsFDsFlat: appending to 450 unit names and releasing each
// leaves no file open; the logs stay readable.
func TestReleaseKeepsFDsFlat(t *testing.T) {
	j, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	before := openFDs(t)
	for i := range 450 {
		name := fmt.Sprintf("churn-%03d.service", i)
		if err := j.Log(name, "sh", 1, "hello"); err != nil {
			t.Fatal(err)
		}
		if err := j.Release(name); err != nil {
			t.Fatal(err)
		}
	}
	if after := openFDs(t); after > before+2 {
		t.Fatalf("%d fds open after 450 released units, %d before", after, before)
	}
	// The most recent ones are kept (retention, retention_test.go).
	es, err := j.Tail("churn-447.service", 0)
	if err != nil || len(es) != 1 || es[0].Line != "hello" {
		t.Fatalf("tail after release: %v %v", es, err)
	}
	// A released unit can be written again.
	if err := j.Log("churn-447.service", "sh", 1, "again"); err != nil {
		t.Fatal(err)
	}
	if es, _ := j.Tail("churn-447.service", 0); len(es) != 2 {
		t.Fatalf("tail after a second append: %v", es)
	}
	// Without Release, every name keeps its file and lock open.
	for i := range 50 {
		if err := j.Log(fmt.Sprintf("kept-%03d.service", i), "sh", 1, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if after := openFDs(t); after < before+50 {
		t.Fatalf("only %d fds open with 50 unreleased units (%d before): is the test measuring anything?", after, before)
	}
}
