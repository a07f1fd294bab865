package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func lines(s string) []string { return splitLines(s) }

func TestUnifiedDiff(t *testing.T) {
	var long []string
	for i := 1; i <= 20; i++ {
		long = append(long, strings.Repeat("x", i)+"\n")
	}
	changed := append([]string(nil), long...)
	changed[1] = "two\n"
	changed[17] = "eighteen\n"
	for _, tc := range []struct {
		name string
		a, b []string
		want string
	}{
		{"equal", lines("a\nb\n"), lines("a\nb\n"), ""},
		{"change", lines("a\nb\nc\n"), lines("a\nB\nc\n"), "--- A\n+++ B\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"add to empty", nil, lines("a\nb\n"), "--- A\n+++ B\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"remove all", lines("a\n"), nil, "--- A\n+++ B\n@@ -1 +0,0 @@\n-a\n"},
		{"insert", lines("a\nb\nc\nd\ne\nf\ng\n"), lines("a\nb\nc\nd\nX\ne\nf\ng\n"),
			"--- A\n+++ B\n@@ -2,6 +2,7 @@\n b\n c\n d\n+X\n e\n f\n g\n"},
		{"no newline at end", lines("a\nb"), lines("a\nc"), "--- A\n+++ B\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
		{"two hunks", long, changed, "--- A\n+++ B\n" +
			"@@ -1,5 +1,5 @@\n x\n-xx\n+two\n xxx\n xxxx\n xxxxx\n" +
			"@@ -15,6 +15,6 @@\n " + strings.Repeat("x", 15) + "\n " + strings.Repeat("x", 16) + "\n " + strings.Repeat("x", 17) +
			"\n-" + strings.Repeat("x", 18) + "\n+eighteen\n " + strings.Repeat("x", 19) + "\n " + strings.Repeat("x", 20) + "\n"},
	} {
		var buf bytes.Buffer
		writeUnifiedDiff(&buf, "A", "B", tc.a, tc.b)
		if buf.String() != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, buf.String(), tc.want)
		}
	}
	// Changes close together share a hunk.
	a := lines("1\n2\n3\n4\n5\n6\n7\n8\n9\n")
	b := lines("1\nX\n3\n4\n5\n6\n7\nY\n9\n")
	var buf bytes.Buffer
	writeUnifiedDiff(&buf, "A", "B", a, b)
	if want := "--- A\n+++ B\n@@ -1,9 +1,9 @@\n 1\n-2\n+X\n 3\n 4\n 5\n 6\n 7\n-8\n+Y\n 9\n"; buf.String() != want {
		t.Errorf("one hunk:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestDiffCommand(t *testing.T) {
	rc := newRolloutCluster(t)
	rc.submit("web@.service", webV1, "inactive")
	dir := t.TempDir()
	changed := writeFile(t, dir, "web@.service", webV2)
	r := rc.run("diff", changed)
	wantResult(t, r, 1, "--- web@.service (cluster)\n+++ "+changed+"\n@@ -2,4 +2,4 @@\n Description=web %i\n \n [Service]\n-ExecStart=/bin/web v1\n+ExecStart=/bin/web v2\n", "")

	// Formatting only (comments, blank lines, merged sections): no diff.
	same := writeFile(t, t.TempDir(), "web@.service", "# the web\n[Unit]\n\n\nDescription=web %i\n[Service]\n; note\nExecStart=/bin/web v1\n")
	wantResult(t, rc.run("diff", same), 0, "", "")

	// Not in the cluster: all added.
	added := writeFile(t, dir, "new.service", "[Service]\nExecStart=/bin/true\n")
	wantResult(t, rc.run("diff", added), 1, "--- /dev/null\n+++ "+added+"\n@@ -0,0 +1,2 @@\n+[Service]\n+ExecStart=/bin/true\n", "")

	// The worst of several; trouble is 2.
	r = rc.run("diff", same, added)
	if r.code != 1 || !strings.HasPrefix(r.stdout, "--- /dev/null") {
		t.Errorf("diff same added: %+v", r)
	}
	missing := filepath.Join(dir, "gone.service")
	r = rc.run("diff", same, missing)
	wantResult(t, r, 2, "", "Error: unable to find unit file "+missing+"\n")
	wantResult(t, rc.run("diff"), 2, "", "One unit file must be provided\n")
}
