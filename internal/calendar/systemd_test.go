package calendar

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// analyze runs `systemd-analyze calendar --iterations=5 SPEC` in UTC and
// returns the normalized form and the elapses it prints (whole seconds).
func analyze(t *testing.T, bin, spec string) (norm string, elapses []time.Time, ok bool) {
	t.Helper()
	cmd := exec.Command(bin, "calendar", "--iterations=5", spec)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C", "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", nil, false
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, found := strings.Cut(line, ": ")
		if !found {
			continue
		}
		switch {
		case key == "Normalized form":
			norm = val
		case key == "Next elapse" || strings.HasPrefix(key, "Iter. #"):
			if val == "never" {
				continue
			}
			e, err := time.Parse("Mon 2006-01-02 15:04:05 MST", val)
			if err != nil {
				t.Fatalf("cannot parse systemd-analyze elapse %q: %v", val, err)
			}
			elapses = append(elapses, e)
		}
	}
	if norm == "" {
		t.Fatalf("no normalized form in systemd-analyze output:\n%s", out)
	}
	return norm, elapses, true
}

// TestDifferentialSystemdAnalyze compares Parse, Normalized and Next with
// the systemd-analyze on this machine, when there is one. systemd-analyze
// evaluates from its own "now", so the comparison is retried when a slot
// boundary passes while it runs.
func TestDifferentialSystemdAnalyze(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; skipping the differential test against systemd")
	}
	specs := []string{
		"Mon..Fri 09:00", "Sat,Sun", "mon,TUESDAY", "Mon,Tue,Wed,Fri", "Mon-Fri", "Mon,Tue,Thu,Fri,Sat,Sun",
		"Mon..Wed,Fri..Sun 1:2", "Mon..Sun", "Mon,Mon..Tue",
		"*-*-1/2", "*:0/15", "*:*:0/2", "*:0/15:0/30", "0..23/6:00", "*-*-1..31/10", "2026/2-1-1", "*-1/3-1",
		"*-02~1", "Mon *-05~07/1", "*-*~03/2", "*-*~1..5", "*-*~1..5/2", "*-*~5/2", "*-*~02",
		"*-02-29", "Mon *-02-29", "*-*-31", "*-02-30",
		"12-25", "26-01-01", "69-01-01", "70-01-01", "2199-01-01", "2026-02-29",
		"hourly", "minutely", "daily", "weekly", "monthly", "quarterly", "semiannually", "annually", "yearly",
		"Mon", "9:0", "*-*-* *:*:*", "*-1", "*-*-1,15,3,1", "*-*-1..5,3", "*-*-1..5/2,3", "1,1:00", "9:00,30",
		"*:001", "*:*:1..2", "*:*:1..2/1", "*-*-* *:*:00/1", "*:*:0..59/1",
		"09:00 UTC", "09:00 utc", "09:00 Europe/Berlin", "*-*-1 1:2 America/New_York", "Mon *-*-* 09:00 UTC",
		"@1600000000", "@0", "Mon..Fri 9-5", "Mon,Wed..Fri 2026-1-1",
		// invalid in both
		"Sat..Mon", "*-*-*/2", "*/2:00", "*-02~0", "*-*~5..1", "*-*-5..1", "2300-01-01", "1969-01-01",
		"2026-01-01 24:00", "*:*:60", "09", "2026-*", "*-*-32", "*-13-01", "*-*-1/0", "Moo", "Mond",
		"2026-01-01 00:00:00 Mars/Olympus", "Mon..Fry 09:00", "*:*:59.9999999", "*:*:1.", "*:*:.5",
	}
	for _, spec := range specs {
		t.Run(spec, func(t *testing.T) {
			ours, perr := Parse(spec)
			for attempt := 0; ; attempt++ {
				start := time.Now()
				norm, elapses, ok := analyze(t, bin, spec)
				if !ok {
					if perr == nil {
						t.Fatalf("systemd-analyze rejects %q, we accept it as %q", spec, ours.Normalized())
					}
					return
				}
				if perr != nil {
					t.Fatalf("systemd-analyze accepts %q (normalized %q), we reject it: %v", spec, norm, perr)
				}
				if got := ours.Normalized(); got != norm {
					t.Fatalf("normalized %q, systemd-analyze says %q", got, norm)
				}
				var got []time.Time
				at := start.In(time.UTC)
				for range len(elapses) {
					n, ok := ours.Next(at)
					if !ok {
						break
					}
					got = append(got, n.Truncate(time.Second))
					at = n
				}
				equal := len(got) == len(elapses)
				for i := 0; equal && i < len(got); i++ {
					equal = got[i].Equal(elapses[i])
				}
				if equal {
					return
				}
				if attempt < 3 {
					continue // a slot may have passed while systemd-analyze ran
				}
				t.Fatalf("from %v: our elapses %v, systemd-analyze %v", start.UTC(), got, elapses)
			}
		})
	}
}
