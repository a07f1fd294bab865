// Package cgroup holds small helpers for resource control through Linux
// control groups, v2 (unified) or v1 (one hierarchy per controller):
// detection of the hierarchies and controllers this process may use,
// creating and removing a unit's cgroup, setting systemd-style limits
// (MemoryMax=, MemoryHigh=, CPUQuota=, CPUWeight=, TasksMax=, IOWeight=),
// joining, listing and signalling its processes, reading its OOM kills and
// CPU usage, and parsing the values of those options.
package cgroup

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Unset marks a limit that is not configured; Infinity one that is
// explicitly unlimited ("infinity").
const (
	Unset    int64 = -1
	Infinity int64 = math.MaxInt64
)

// Limits are a unit's cgroup resource limits. Each field is Unset when the
// unit does not set it.
type Limits struct {
	MemoryMax  int64 // bytes or Infinity
	MemoryHigh int64 // bytes or Infinity
	// CPUQuota is the CPU time allowed per CPUPeriod, in microseconds
	// (CPUQuota=20% is 20000 per 100000), or Infinity.
	CPUQuota  int64
	CPUWeight int64 // 1..10000 (systemd's default is 100)
	TasksMax  int64 // count or Infinity
	IOWeight  int64 // 1..10000
}

// CPUPeriod is the period of CPUQuota= in microseconds (100 ms, as systemd).
const CPUPeriod = 100000

// NoLimits returns Limits with every field Unset.
func NoLimits() Limits {
	return Limits{Unset, Unset, Unset, Unset, Unset, Unset}
}

// Any reports whether any limit is set.
func (l Limits) Any() bool { return l != NoLimits() }

// Controller names, as cgroup v2 spells them.
const (
	Memory = "memory"
	CPU    = "cpu"
	Pids   = "pids"
	IO     = "io"
)

// Controllers returns the v2 controllers the limits need, sorted.
func (l Limits) Controllers() []string {
	var out []string
	if l.CPUQuota != Unset || l.CPUWeight != Unset {
		out = append(out, CPU)
	}
	if l.IOWeight != Unset {
		out = append(out, IO)
	}
	if l.MemoryMax != Unset || l.MemoryHigh != Unset {
		out = append(out, Memory)
	}
	if l.TasksMax != Unset {
		out = append(out, Pids)
	}
	return out
}

// Options returns the names of the options set that need controller c.
func (l Limits) Options(c string) []string {
	var out []string
	add := func(v int64, name string) {
		if v != Unset {
			out = append(out, name)
		}
	}
	switch c {
	case Memory:
		add(l.MemoryMax, "MemoryMax=")
		add(l.MemoryHigh, "MemoryHigh=")
	case CPU:
		add(l.CPUQuota, "CPUQuota=")
		add(l.CPUWeight, "CPUWeight=")
	case Pids:
		add(l.TasksMax, "TasksMax=")
	case IO:
		add(l.IOWeight, "IOWeight=")
	}
	return out
}

// PhysicalMemory returns the machine's RAM in bytes (0 if unknown).
var PhysicalMemory = func() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// ParseSize parses a systemd size: bytes, or a number with a K, M, G, T,
// P or E suffix (base 1024; a trailing "B" or "iB" is accepted),
// "infinity" (Infinity), or, when percent is true, a percentage of the
// physical memory ("50%"). An empty value is Unset. Negative values,
// unknown suffixes and overflows are errors.
func ParseSize(s string, percent bool) (int64, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Unset, nil
	case s == "infinity":
		return Infinity, nil
	case strings.HasPrefix(s, "-"):
		return 0, errors.New("negative size")
	case strings.HasSuffix(s, "%"):
		if !percent {
			return 0, errors.New("a percentage is not allowed here")
		}
		p, err := parsePercent(s)
		if err != nil {
			return 0, err
		}
		mem := PhysicalMemory()
		if mem == 0 {
			return 0, errors.New("physical memory size unknown")
		}
		return int64(float64(mem) * p / 100), nil
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, suf := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	if len(suf) >= 3 && strings.HasSuffix(suf, "iB") {
		suf = strings.TrimSuffix(suf, "iB")
	} else {
		suf = strings.TrimSuffix(suf, "B")
	}
	var mul float64
	switch strings.ToUpper(suf) {
	case "":
		mul = 1
	case "K":
		mul = 1 << 10
	case "M":
		mul = 1 << 20
	case "G":
		mul = 1 << 30
	case "T":
		mul = 1 << 40
	case "P":
		mul = 1 << 50
	case "E":
		mul = 1 << 60
	default:
		return 0, fmt.Errorf("unknown size suffix %q", suf)
	}
	if suf == "" && strings.Contains(num, ".") {
		return 0, fmt.Errorf("invalid size %q: fractional bytes", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	v := f * mul
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v), nil
}

// parsePercent parses "N%" (N may have decimals) into N.
func parsePercent(s string) (float64, error) {
	n := strings.TrimSpace(strings.TrimSuffix(s, "%"))
	if !strings.HasSuffix(s, "%") || n == "" {
		return 0, fmt.Errorf("%q is not a percentage", s)
	}
	if strings.HasPrefix(n, "-") {
		return 0, errors.New("negative percentage")
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a percentage", s)
	}
	return f, nil
}

// ParseCPUQuota parses CPUQuota= ("20%", may exceed 100% on several
// CPUs) into microseconds per CPUPeriod. Empty is Unset.
func ParseCPUQuota(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Unset, nil
	}
	if !strings.HasSuffix(s, "%") {
		return 0, fmt.Errorf("%q is not a percentage (CPUQuota= takes e.g. 20%%)", s)
	}
	p, err := parsePercent(s)
	if err != nil {
		return 0, err
	}
	if p <= 0 {
		return 0, errors.New("CPU quota must be positive")
	}
	q := int64(math.Round(p * CPUPeriod / 100))
	return max(q, 1000), nil // the kernel's minimum quota is 1 ms
}

// ParseWeight parses CPUWeight= or IOWeight=: 1..10000 ("idle" is 0 for
// CPUWeight in systemd; not supported here). Empty is Unset.
func ParseWeight(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Unset, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid weight %q (1..10000)", s)
	}
	if n < 1 || n > 10000 {
		return 0, fmt.Errorf("weight %d out of range (1..10000)", n)
	}
	return n, nil
}

// ParseTasksMax parses TasksMax=: a count, "infinity", or a percentage
// of the kernel's pid_max. Empty is Unset.
func ParseTasksMax(s string) (int64, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Unset, nil
	case s == "infinity":
		return Infinity, nil
	case strings.HasPrefix(s, "-"):
		return 0, errors.New("negative task count")
	case strings.HasSuffix(s, "%"):
		p, err := parsePercent(s)
		if err != nil {
			return 0, err
		}
		return max(int64(float64(pidMax())*p/100), 1), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid task count %q", s)
	}
	if n < 1 {
		return 0, errors.New("task count must be positive")
	}
	return n, nil
}

func pidMax() int64 {
	if n, err := readInt("/proc/sys/kernel/pid_max"); err == nil {
		return n
	}
	return 4194304
}

// V1Shares converts a CPUWeight= (1..10000, default 100) into v1
// cpu.shares (default 1024): weight*1024/100, at least 2.
func V1Shares(weight int64) int64 { return max(weight*1024/100, 2) }

// V1BlkioWeight converts an IOWeight= (1..10000, default 100) into v1
// blkio.weight (10..1000, default 500), as systemd does.
func V1BlkioWeight(weight int64) int64 {
	// systemd: 100 -> 500, linear on both sides.
	var v int64
	if weight <= 100 {
		v = 10 + (weight-1)*(500-10)/(100-1)
	} else {
		v = 500 + (weight-100)*(1000-500)/(10000-100)
	}
	return min(max(v, 10), 1000)
}
