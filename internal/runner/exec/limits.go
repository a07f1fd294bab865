package exec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	cgrp "github.com/fleetd/fleet/internal/cgroup"
	"github.com/fleetd/fleet/internal/unitfile"
)

// rlimitValue is one Limit*= setting.
type rlimitValue struct {
	Resource int    `json:"resource"`
	Name     string `json:"name"` // LimitNOFILE ...
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

const rlimInfinity = ^uint64(0)

func (rl rlimitValue) text() string {
	f := func(v uint64) string {
		if v == rlimInfinity {
			return "infinity"
		}
		return strconv.FormatUint(v, 10)
	}
	if rl.Cur == rl.Max {
		return f(rl.Cur)
	}
	return f(rl.Cur) + ":" + f(rl.Max)
}

// rlimit kinds: how a Limit*= value is written.
const (
	rlCount = iota // a plain number
	rlSize         // bytes, with K/M/G... suffixes
	rlTime         // seconds, or a time span
)

var rlimits = map[string]struct {
	resource int
	kind     int
}{
	"LimitNOFILE":  {unix.RLIMIT_NOFILE, rlCount},
	"LimitNPROC":   {unix.RLIMIT_NPROC, rlCount},
	"LimitCORE":    {unix.RLIMIT_CORE, rlSize},
	"LimitAS":      {unix.RLIMIT_AS, rlSize},
	"LimitFSIZE":   {unix.RLIMIT_FSIZE, rlSize},
	"LimitDATA":    {unix.RLIMIT_DATA, rlSize},
	"LimitSTACK":   {unix.RLIMIT_STACK, rlSize},
	"LimitMEMLOCK": {unix.RLIMIT_MEMLOCK, rlSize},
	"LimitRSS":     {unix.RLIMIT_RSS, rlSize},
	"LimitCPU":     {unix.RLIMIT_CPU, rlTime},
}

// parseRlimit parses a Limit*= value: "soft:hard" or one value for both;
// each "infinity" or a number (sizes take K, M, G, T suffixes, base 1024;
// LimitCPU= takes seconds or a time span).
func parseRlimit(name, v string) (rlimitValue, error) {
	def := rlimits[name]
	one := func(s string) (uint64, error) {
		s = strings.TrimSpace(s)
		if s == "infinity" {
			return rlimInfinity, nil
		}
		if s == "" {
			return 0, errors.New("empty value")
		}
		if strings.HasPrefix(s, "-") {
			return 0, errors.New("negative value")
		}
		switch def.kind {
		case rlSize:
			n, err := cgrp.ParseSize(s, false)
			if err != nil {
				return 0, err
			}
			return uint64(n), nil
		case rlTime:
			d, inf, err := unitfile.ParseTimespan(s)
			if err != nil {
				return 0, err
			}
			if inf {
				return rlimInfinity, nil
			}
			secs := uint64(d.Seconds())
			if d > 0 && secs == 0 {
				secs = 1
			}
			return secs, nil
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid number %q", s)
		}
		return n, nil
	}
	soft, hard, both := strings.Cut(v, ":")
	cur, err := one(soft)
	if err != nil {
		return rlimitValue{}, err
	}
	max := cur
	if both {
		if max, err = one(hard); err != nil {
			return rlimitValue{}, err
		}
		if cur > max {
			return rlimitValue{}, errors.New("soft limit above hard limit")
		}
	}
	return rlimitValue{Resource: def.resource, Name: name, Cur: cur, Max: max}, nil
}

// parseResource handles the [Service] resource options (cgroup limits and
// Limit*=). It reports whether name is one of them.
func (c *config) parseResource(name, v string) (bool, error) {
	if _, ok := rlimits[name]; ok {
		// An empty value resets the option.
		out := c.rlimits[:0:0]
		for _, rl := range c.rlimits {
			if rl.Name != name {
				out = append(out, rl)
			}
		}
		c.rlimits = out
		if strings.TrimSpace(v) == "" {
			return true, nil
		}
		rl, err := parseRlimit(name, v)
		if err != nil {
			return true, fmt.Errorf("invalid %s=%s: %w", name, v, err)
		}
		c.rlimits = append(c.rlimits, rl)
		return true, nil
	}
	var dst *int64
	var parse func(string) (int64, error)
	switch name {
	case "MemoryMax", "MemoryLimit": // MemoryLimit= is the older v1 name
		dst, parse = &c.limits.MemoryMax, func(s string) (int64, error) { return cgrp.ParseSize(s, true) }
	case "MemoryHigh":
		dst, parse = &c.limits.MemoryHigh, func(s string) (int64, error) { return cgrp.ParseSize(s, true) }
	case "CPUQuota":
		dst, parse = &c.limits.CPUQuota, cgrp.ParseCPUQuota
	case "CPUWeight":
		dst, parse = &c.limits.CPUWeight, cgrp.ParseWeight
	case "TasksMax":
		dst, parse = &c.limits.TasksMax, cgrp.ParseTasksMax
	case "IOWeight":
		dst, parse = &c.limits.IOWeight, cgrp.ParseWeight
	default:
		return false, nil
	}
	n, err := parse(v)
	if err != nil {
		return true, fmt.Errorf("invalid %s=%s: %w", name, v, err)
	}
	*dst = n
	return true, nil
}
