package exec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	cgrp "github.com/fleetd/fleet/internal/cgroup"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/timer"
	"github.com/fleetd/fleet/internal/unitfile"
)

// Exec* kinds, as systemd names them.
const (
	kindStartPre  = "ExecStartPre"
	kindStart     = "ExecStart"
	kindStartPost = "ExecStartPost"
	kindStop      = "ExecStop"
	kindStopPost  = "ExecStopPost"
)

const (
	defaultTimeout    = 90 * time.Second
	defaultRestartSec = 100 * time.Millisecond
	// systemd's DefaultStartLimitIntervalSec= and DefaultStartLimitBurst=.
	defaultStartLimitInterval = 10 * time.Second
	defaultStartLimitBurst    = 5
)

// execLine is one Exec*= line, continuation-joined, prefixes parsed.
type execLine struct {
	execPrefix
	line string // without prefix, specifiers not yet expanded
}

type envFile struct {
	path     string
	optional bool
}

// config is the [Unit]/[Service] part of a unit that the runner acts on.
type config struct {
	description string
	after       []string
	requires    []string
	wants       []string
	// bindsTo and partOf name units whose stop (or failure, for bindsTo
	// and partOf) stops this one; requires also stops it when the required
	// unit goes inactive (see Runner's stop propagation).
	bindsTo []string
	partOf  []string

	typ             string // simple, exec, oneshot, forking
	remainAfterExit bool
	guessMainPID    bool
	pidFile         string
	exec            map[string][]execLine

	environment []string // raw Environment= values, in order
	envFiles    []envFile
	workingDir  string
	wdOptional  bool
	user, group string

	restart      string
	restartSec   time.Duration
	timeoutStart time.Duration // 0 = none
	timeoutStop  time.Duration // 0 = none
	killMode     string
	killSignal   syscall.Signal
	sendSIGKILL  bool

	// StartLimitIntervalSec=, StartLimitBurst=: more than startLimitBurst
	// starts within startLimitInterval fail the unit (start-limit-hit).
	// Either at 0 disables the limit.
	startLimitInterval time.Duration
	startLimitBurst    int

	// Resource control: cgroup limits (MemoryMax= ...) and Limit*=.
	limits  cgrp.Limits
	rlimits []rlimitValue

	// timer is the [Timer] section of a .timer unit (timerunit.go); nil
	// for a service.
	timer *timer.Timer
}

func parseSignal(s string) (syscall.Signal, error) {
	if v, err := strconv.Atoi(s); err == nil {
		if v <= 0 || v > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(v), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("invalid signal %q", s)
	}
	return sig, nil
}

// timeoutValue parses TimeoutStartSec=/TimeoutStopSec=: 0 and infinity
// mean no timeout (returned as 0).
func timeoutValue(v string) (time.Duration, error) {
	d, inf, err := unitfile.ParseTimespan(v)
	if err != nil {
		return 0, err
	}
	if inf {
		return 0, nil
	}
	return d, nil
}

// parseConfig interprets a unit's options. The error says why the unit
// cannot run here (LoadState "error").
func parseConfig(name string, opts []fleet.UnitOption) (*config, error) {
	c := &config{
		typ:          "simple",
		guessMainPID: true,
		exec:         map[string][]execLine{},
		restart:      "no",
		restartSec:   defaultRestartSec,
		timeoutStop:  defaultTimeout,
		killMode:     "control-group",
		killSignal:   syscall.SIGTERM,
		sendSIGKILL:  true,

		startLimitInterval: defaultStartLimitInterval,
		startLimitBurst:    defaultStartLimitBurst,
		limits:             cgrp.NoLimits(),
	}
	if strings.HasSuffix(name, ".timer") {
		return parseTimerConfig(c, name, opts)
	}
	if !strings.HasSuffix(name, ".service") {
		return nil, fmt.Errorf("unit type of %s is not supported by the exec runner (only .service and .timer)", name)
	}
	var startTimeout *time.Duration
	// setTimeout's error is wrapped with the key below.
	setTimeout := func(dst *time.Duration, v string) error {
		d, err := timeoutValue(v)
		if err != nil {
			return err
		}
		*dst = d
		return nil
	}
	list := func(v string) []string { return strings.Fields(v) }
	// The start limit lives in [Unit] since systemd 230; [Service]
	// StartLimitInterval= and StartLimitBurst= are the older spellings,
	// still accepted by systemd.
	startLimit := func(name, v string) (bool, error) {
		switch name {
		case "StartLimitIntervalSec", "StartLimitInterval":
			if v == "" {
				c.startLimitInterval = defaultStartLimitInterval
				return true, nil
			}
			d, inf, err := unitfile.ParseTimespan(v)
			if err != nil {
				return true, fmt.Errorf("%s=%s: %w", name, v, err)
			}
			if inf {
				d = math.MaxInt64
			}
			c.startLimitInterval = d
			return true, nil
		case "StartLimitBurst":
			if v == "" {
				c.startLimitBurst = defaultStartLimitBurst
				return true, nil
			}
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				return true, fmt.Errorf("%s=%s: invalid number", name, v)
			}
			c.startLimitBurst = int(n)
			return true, nil
		}
		return false, nil
	}
	for _, o := range opts {
		v := unitfile.JoinContinuations(o.Value)
		if o.Section == "Unit" || o.Section == "Service" {
			if ok, err := startLimit(o.Name, v); ok {
				if err != nil {
					return nil, err
				}
				continue
			}
		}
		switch o.Section {
		case "Unit":
			switch o.Name {
			case "Description":
				c.description = v
			case "After":
				c.after = appendOrReset(c.after, list(v))
			case "Requires", "Requisite":
				c.requires = appendOrReset(c.requires, list(v))
			case "BindsTo":
				c.requires = appendOrReset(c.requires, list(v))
				c.bindsTo = appendOrReset(c.bindsTo, list(v))
			case "PartOf":
				c.partOf = appendOrReset(c.partOf, list(v))
			case "Wants":
				c.wants = appendOrReset(c.wants, list(v))
			}
		case "Service":
			if ok, err := c.parseResource(o.Name, v); ok {
				if err != nil {
					return nil, err
				}
				continue
			}
			var err error
			switch o.Name {
			case "Type":
				switch v {
				case "simple", "exec", "oneshot", "forking":
					c.typ = v
				case "notify", "notify-reload", "idle":
					c.typ = "simple" // no sd_notify here: ready once started
				default:
					return nil, fmt.Errorf("unsupported Type=%s (simple, exec, oneshot or forking)", v)
				}
			case "RemainAfterExit":
				c.remainAfterExit, err = unitfile.ParseBool(v)
			case "GuessMainPID":
				c.guessMainPID, err = unitfile.ParseBool(v)
			case "PIDFile":
				c.pidFile = v
			case kindStartPre, kindStart, kindStartPost, kindStop, kindStopPost:
				if v == "" {
					c.exec[o.Name] = nil
					continue
				}
				if _, _, serr := unitfile.SplitExecLine(v); serr != nil {
					return nil, fmt.Errorf("%s=%s: %w", o.Name, v, serr)
				}
				p, rest := parseExecPrefix(v)
				c.exec[o.Name] = append(c.exec[o.Name], execLine{execPrefix: p, line: rest})
			case "Environment":
				if v == "" {
					c.environment = nil
					continue
				}
				if _, serr := unitfile.SplitWords(v); serr != nil {
					return nil, fmt.Errorf("Environment=%s: %w", v, serr)
				}
				c.environment = append(c.environment, v)
			case "EnvironmentFile":
				if v == "" {
					c.envFiles = nil
					continue
				}
				f := envFile{path: v}
				if strings.HasPrefix(v, "-") {
					f = envFile{path: v[1:], optional: true}
				}
				c.envFiles = append(c.envFiles, f)
			case "WorkingDirectory":
				c.workingDir, c.wdOptional = v, false
				if strings.HasPrefix(v, "-") {
					c.workingDir, c.wdOptional = v[1:], true
				}
			case "User":
				c.user = v
			case "Group":
				c.group = v
			case "Restart":
				switch v {
				case "no", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog", "always":
					c.restart = v
				default:
					return nil, fmt.Errorf("invalid Restart=%s", v)
				}
			case "RestartSec":
				var inf bool
				c.restartSec, inf, err = unitfile.ParseTimespan(v)
				if inf {
					err = fmt.Errorf("RestartSec=infinity is not supported")
				}
			case "TimeoutStartSec":
				var d time.Duration
				err = setTimeout(&d, v)
				startTimeout = &d
			case "TimeoutStopSec":
				err = setTimeout(&c.timeoutStop, v)
			case "TimeoutSec":
				var d time.Duration
				err = setTimeout(&d, v)
				startTimeout = &d
				c.timeoutStop = d
			case "KillMode":
				switch v {
				case "control-group", "process", "mixed", "none":
					c.killMode = v
				default:
					return nil, fmt.Errorf("invalid KillMode=%s", v)
				}
			case "KillSignal":
				c.killSignal, err = parseSignal(v)
			case "SendSIGKILL":
				c.sendSIGKILL, err = unitfile.ParseBool(v)
			}
			if err != nil {
				return nil, fmt.Errorf("%s=%s: %w", o.Name, v, err)
			}
		}
	}
	switch {
	case startTimeout != nil:
		c.timeoutStart = *startTimeout
	case c.typ == "oneshot":
		c.timeoutStart = 0 // systemd disables the start timeout of oneshot units
	default:
		c.timeoutStart = defaultTimeout
	}
	starts := len(c.exec[kindStart])
	switch {
	case c.typ != "oneshot" && starts == 0:
		return nil, fmt.Errorf("service has no ExecStart= setting, which is only allowed for Type=oneshot services")
	case c.typ != "oneshot" && starts > 1:
		return nil, fmt.Errorf("service has more than one ExecStart= setting, which is only allowed for Type=oneshot services")
	case c.typ == "oneshot" && starts == 0 && len(c.exec[kindStop]) == 0:
		return nil, fmt.Errorf("service has no ExecStart= and no ExecStop= setting")
	}
	return c, nil
}

// appendOrReset appends, except that an empty value resets the list.
func appendOrReset(l, v []string) []string {
	if len(v) == 0 {
		return nil
	}
	return append(l, v...)
}
