// Package bench holds fleet-bench's scenarios (cmd/fleet-bench): scale,
// start, failover, footprint, soak and lb. Every scenario prints a human
// summary and, as its last line, one JSON object with its figures,
// including a baseline measured in the same run (so results from noisy
// machines can be compared by their ratio to the baseline) and the load
// average.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
)

// env is what a scenario writes to.
type env struct {
	out, errw io.Writer
	log       *slog.Logger
}

func (e *env) printf(format string, args ...any) { fmt.Fprintf(e.out, format, args...) }

type scenario struct {
	name, usage string
	run         func(ctx context.Context, e *env, args []string) (map[string]any, error)
	hidden      bool
}

func scenarios() []scenario {
	return []scenario{
		{name: "scale", usage: "N in-process machines on one embedded etcd, one engine process; submit and start M units", run: runScale},
		{name: "start", usage: "one fleetd with the exec runner; K sequential starts through the API; start-to-active latency", run: runStart},
		{name: "failover", usage: "three fleetd, 30 units; kill -9 one; time until its units are active elsewhere", run: runFailover},
		{name: "footprint", usage: "idle fleetd RSS and CPU with embedded etcd; then with 1,000 units", run: runFootprint},
		{name: "soak", usage: "N fleetd under unit churn (start, stop, destroy) for a long time; RSS, fds, threads, goroutines, etcd db size must stay flat", run: runSoak},
		{name: "rollout", usage: "N template instances on simulated machines; a rolling update with max-parallel P, timed against batches x min-healthy-time", run: runRollout},
		{name: "stability", usage: "three fleetd, 30 units; 8 CPU-burning processes for 5 minutes: no unit may move, no machine lose its lease", run: runStability},
		{name: "lb", usage: "fleetd lb vs haproxy under wrk, HTTP and TCP, steady and with backend churn", run: runLB},
		{name: "_engine", hidden: true, run: runEngineChild},
		{name: "_etcd", hidden: true, run: runEtcdChild},
		{name: "_lbbackend", hidden: true, run: runLBBackendChild},
	}
}

// Main runs fleet-bench with args (without the program name) and returns the
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{out: stdout, errw: stderr, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	for _, sc := range scenarios() {
		if sc.name != args[0] {
			continue
		}
		res, err := sc.run(ctx, e, args[1:])
		if errors.Is(err, flag.ErrHelp) {
			return 2
		}
		if err != nil {
			fmt.Fprintf(stderr, "fleet-bench %s: %v\n", sc.name, err)
			if res == nil {
				return 1
			}
			res["error"] = err.Error()
		}
		if sc.hidden {
			return 0
		}
		res["scenario"] = sc.name
		res["loadavg"] = loadAvg()
		res["go"] = runtime.Version()
		res["cpus"] = runtime.NumCPU()
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
		if err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "fleet-bench: unknown scenario %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fleet-bench SCENARIO [flags]   (fleet-bench SCENARIO -h for its flags)")
	fmt.Fprintln(w, "scenarios:")
	for _, sc := range scenarios() {
		if !sc.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", sc.name, sc.usage)
		}
	}
}

// profiles are the --cpuprofile and --memprofile flags every scenario has.
type profiles struct {
	cpu, mem string
	cpuFile  *os.File
}

func (p *profiles) register(fs *flag.FlagSet) {
	fs.StringVar(&p.cpu, "cpuprofile", "", "write a CPU profile of the bench process to `file`")
	fs.StringVar(&p.mem, "memprofile", "", "write a heap profile of the bench process to `file` at the end")
}

func (p *profiles) start() error {
	if p.cpu == "" {
		return nil
	}
	f, err := os.Create(p.cpu)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.cpuFile = f
	return nil
}

func (p *profiles) stop() error {
	var errs []error
	if p.cpuFile != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.cpuFile.Close())
		p.cpuFile = nil
	}
	if p.mem != "" {
		f, err := os.Create(p.mem)
		if err != nil {
			return err
		}
		runtime.GC()
		errs = append(errs, pprof.WriteHeapProfile(f), f.Close())
		p.mem = ""
	}
	return errors.Join(errs...)
}

func newFlags(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.errw)
	fs.Usage = func() {
		fmt.Fprintf(e.errw, "usage: fleet-bench %s [flags]\n  %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// summary prints res sorted by key, for the human part of the output.
func (e *env) summary(title string, res map[string]any) {
	e.printf("== %s (loadavg %s)\n", title, loadAvg())
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.printf("  %-34s %v\n", k, res[k])
	}
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if x < 0 {
		return -float64(int64(-x*p+0.5)) / p
	}
	return float64(int64(x*p+0.5)) / p
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
