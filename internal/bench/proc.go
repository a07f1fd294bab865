package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// procStat is a process's CPU time and memory as /proc reports them.
type procStat struct {
	CPU   time.Duration // user + system
	RSS   int64         // bytes, now
	HWM   int64         // bytes, peak RSS
	At    time.Time
	Valid bool
}

// clock ticks per second for /proc/<pid>/stat; 100 on every Linux we run on.
const clkTck = 100

func readProc(pid int) procStat {
	st := procStat{At: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return st
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return st
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	st.CPU = time.Duration(ut+stt) * time.Second / clkTck
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			st.RSS = n * 1024
		case "VmHWM":
			st.HWM = n * 1024
		}
	}
	st.Valid = true
	return st
}

// cpuPercent is the CPU used between a and b, in percent of one core.
func cpuPercent(a, b procStat) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(b.CPU-a.CPU) / float64(wall)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// smapsMem is a process's resident and private memory from
// /proc/<pid>/smaps_rollup (bytes): Rss, and Private_Clean +
// Private_Dirty (what the process alone holds).
func smapsMem(pid int) (rss, private int64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "Rss":
			rss = n * 1024
		case "Private_Clean", "Private_Dirty":
			private += n * 1024
		}
	}
	return rss, private, true
}

// processesOf lists the PIDs whose executable is exe.
func processesOf(exe string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && p == exe {
			out = append(out, pid)
		}
	}
	return out
}
