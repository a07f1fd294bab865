package cli

import "testing"

func TestJobExitCode(t *testing.T) {
	for exit, want := range map[string]int{
		"code=exited, status=3/NOTIMPLEMENTED": 3,
		"code=exited, status=1/FAILURE":        1,
		"code=exited, status=300":              255,
		"code=killed, status=9/KILL":           137,
		"code=dumped, status=11/SEGV":          139,
		"code=exited, status=0/SUCCESS":        1,
		"":                                     1,
		"garbage":                              1,
	} {
		if got := jobExitCode(exit); got != want {
			t.Errorf("jobExitCode(%q) = %d, want %d", exit, got, want)
		}
	}
}
