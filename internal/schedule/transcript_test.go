package schedule

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
)

// rewrite regenerates the expected outputs of testdata/*.txt. It is the
// package's only variable, and it lives in test code.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata/*.txt")

// A transcript is a story: commands, and after every `schedule` a line
// `----` followed by the expected output up to the next blank line.
//
//	machine add ID [k=v ...]        add (or replace) a live machine; cap.mem=SIZE
//	                                and cap.cpu=CPUS set its capacity (rule 13)
//	machine remove ID               the machine dies
//	machine meta ID [k=v ...]       replace its metadata
//	machine capacity ID [cap.mem=SIZE] [cap.cpu=CPUS]  replace its capacity
//	machine drain ID                set its metadata draining=true (fleetctl drain)
//	machine undrain ID              remove its draining key (fleetctl undrain)
//	unit add NAME [opt ...]         add (or replace) a unit; options:
//	    conflicts=PAT replaces=PAT machineof=NAME|PAT machineid=ID
//	    metadata=K=V (repeat: same key OR, keys AND) global state=STATE
//	    metadata=K!=V, K>=V, K<=V, K>V, K<V (rule 15)
//	    mem=SIZE cpu=CPUS (reservation, rule 13; unitfile syntax)
//	strategy spread|binpack         set Snapshot.Strategy (rule 14)
//	unit remove NAME                destroy the unit
//	unit state NAME STATE           set the desired state
//	place NAME ID [ID ...]          force the current schedule of a unit
//	schedule [verbose]              run Schedule on the story's state; the
//	                                result becomes the current schedule.
//	                                Output: changes, machines with their
//	                                units, unplaced units with reasons
//	                                (verbose: per-machine reasons too).
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runTranscript(t, f) })
	}
}

type story struct {
	machines map[string]map[string]string
	caps     map[string]fleet.Resources
	units    map[string]Unit
	current  map[string][]string
	strategy string
}

func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st := newStory()
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		out.WriteString(line + "\n")
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if fields[0] != "schedule" {
			if err := st.do(fields); err != nil {
				t.Fatalf("%s:%d: %v", file, i+1, err)
			}
			continue
		}
		got := st.schedule(len(fields) > 1 && fields[1] == "verbose")
		// Expected block: "----" then lines up to a blank line or EOF.
		var want []string
		if i+1 < len(lines) && lines[i+1] == "----" {
			i += 2
			for ; i < len(lines) && lines[i] != ""; i++ {
				want = append(want, lines[i])
			}
			if i < len(lines) {
				i-- // let the blank line be copied by the loop
			}
		}
		out.WriteString("----\n" + got)
		if *rewrite {
			continue
		}
		if w := strings.Join(want, "\n") + "\n"; w != got {
			t.Errorf("%s:%d: schedule output differs\n--- want\n%s--- got\n%s", file, i+1, w, got)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newStory() *story {
	return &story{machines: map[string]map[string]string{}, caps: map[string]fleet.Resources{},
		units: map[string]Unit{}, current: map[string][]string{}}
}

// parseCapacity reads cap.mem=SIZE and cap.cpu=CPUS.
func parseCapacity(kv string, c *fleet.Resources) (bool, error) {
	k, v, _ := strings.Cut(kv, "=")
	switch k {
	case "cap.mem":
		n, _, err := unitfile.ParseSize(v)
		c.MemoryBytes = n
		return true, err
	case "cap.cpu":
		n, err := unitfile.ParseCPU(v)
		c.CPUMilli = n
		return true, err
	}
	return false, nil
}

// parseCond splits K=V, K!=V, K>=V, K<=V, K>V or K<V at its operator.
func parseCond(s string) (k, op, v string, ok bool) {
	i := strings.IndexAny(s, "!<>=")
	if i <= 0 {
		return "", "", "", false
	}
	for _, o := range []string{"!=", ">=", "<=", ">", "<", "="} {
		if strings.HasPrefix(s[i:], o) {
			return s[:i], o, s[i+len(o):], true
		}
	}
	return "", "", "", false
}

func (s *story) do(f []string) error {
	if len(f) == 2 && f[0] == "strategy" {
		s.strategy = f[1]
		return nil
	}
	if len(f) < 3 {
		return fmt.Errorf("short command %q", strings.Join(f, " "))
	}
	switch f[0] + " " + f[1] {
	case "machine add", "machine meta":
		if _, ok := s.machines[f[2]]; !ok && f[1] == "meta" {
			return fmt.Errorf("no machine %s", f[2])
		}
		meta := map[string]string{}
		var c fleet.Resources
		for _, kv := range f[3:] {
			if isCap, err := parseCapacity(kv, &c); err != nil {
				return err
			} else if isCap {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("bad metadata %q", kv)
			}
			meta[k] = v
		}
		s.machines[f[2]] = meta
		if f[1] == "add" {
			s.caps[f[2]] = c
		}
	case "machine capacity":
		if _, ok := s.machines[f[2]]; !ok {
			return fmt.Errorf("no machine %s", f[2])
		}
		var c fleet.Resources
		for _, kv := range f[3:] {
			if isCap, err := parseCapacity(kv, &c); err != nil || !isCap {
				return fmt.Errorf("bad capacity %q: %v", kv, err)
			}
		}
		s.caps[f[2]] = c
	case "machine remove":
		delete(s.machines, f[2])
		delete(s.caps, f[2])
	case "machine drain", "machine undrain":
		meta, ok := s.machines[f[2]]
		if !ok {
			return fmt.Errorf("no machine %s", f[2])
		}
		meta = maps.Clone(meta)
		if meta == nil {
			meta = map[string]string{}
		}
		delete(meta, fleet.DrainMetadataKey)
		if f[1] == "drain" {
			meta[fleet.DrainMetadataKey] = "true"
		}
		s.machines[f[2]] = meta
	case "unit add":
		u := Unit{Name: f[2], Desired: fleet.JobStateLaunched}
		for _, opt := range f[3:] {
			k, v, _ := strings.Cut(opt, "=")
			switch k {
			case "conflicts":
				u.Req.Conflicts = append(u.Req.Conflicts, v)
			case "replaces":
				u.Req.Replaces = append(u.Req.Replaces, v)
			case "machineof":
				u.Req.MachineOf = append(u.Req.MachineOf, v)
			case "machineid":
				u.Req.MachineID = v
			case "metadata":
				mk, op, mv, ok := parseCond(v)
				if !ok {
					return fmt.Errorf("bad metadata requirement %q", v)
				}
				if op != "=" {
					u.Req.MetadataOps = append(u.Req.MetadataOps, fleet.MetadataCond{Key: mk, Op: op, Value: mv})
					continue
				}
				if u.Req.Metadata == nil {
					u.Req.Metadata = map[string][]string{}
				}
				u.Req.Metadata[mk] = append(u.Req.Metadata[mk], mv)
			case "mem":
				n, _, err := unitfile.ParseSize(v)
				if err != nil {
					return err
				}
				u.Req.Resources.MemoryBytes = n
			case "cpu":
				n, err := unitfile.ParseCPU(v)
				if err != nil {
					return err
				}
				u.Req.Resources.CPUMilli = n
			case "global":
				u.Req.Global = true
			case "state":
				js, err := fleet.ParseJobState(v)
				if err != nil {
					return err
				}
				u.Desired = js
			default:
				return fmt.Errorf("unknown unit option %q", opt)
			}
		}
		s.units[u.Name] = u
	case "unit remove":
		delete(s.units, f[2])
		delete(s.current, f[2])
	case "unit state":
		u, ok := s.units[f[2]]
		if !ok || len(f) < 4 {
			return fmt.Errorf("unit state: no unit %s or no state", f[2])
		}
		js, err := fleet.ParseJobState(f[3])
		if err != nil {
			return err
		}
		u.Desired = js
		s.units[f[2]] = u
	case "place " + f[1]:
		s.current[f[1]] = f[2:]
	default:
		return fmt.Errorf("unknown command %q", strings.Join(f, " "))
	}
	return nil
}

func (s *story) snapshot() Snapshot {
	var snap Snapshot
	for id, meta := range s.machines {
		snap.Machines = append(snap.Machines, fleet.Machine{ID: id, Metadata: meta, Capacity: s.caps[id]})
	}
	snap.Strategy = s.strategy
	for _, u := range s.units {
		snap.Units = append(snap.Units, u)
	}
	snap.Current = s.current
	return snap
}

func (s *story) schedule(verbose bool) string {
	res := Schedule(s.snapshot())
	var b strings.Builder
	add, remove := Diff(s.current, res.Assign)
	for _, c := range remove {
		fmt.Fprintf(&b, "- %s %s\n", c.Unit, c.Machine)
	}
	for _, c := range add {
		fmt.Fprintf(&b, "+ %s %s\n", c.Unit, c.Machine)
	}
	b.WriteString(formatResult(res, s.machineIDs(), verbose))
	s.current = res.Assign
	return b.String()
}

func (s *story) machineIDs() []string {
	ids := make([]string, 0, len(s.machines))
	for id := range s.machines {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// formatResult renders machines with their units, then unplaced units.
func formatResult(res Result, machines []string, verbose bool) string {
	var b strings.Builder
	on := map[string][]string{}
	for u, ms := range res.Assign {
		for _, m := range ms {
			on[m] = append(on[m], u)
		}
	}
	for _, m := range machines {
		sort.Strings(on[m])
		if len(on[m]) == 0 {
			on[m] = []string{"-"}
		}
		fmt.Fprintf(&b, "%s: %s\n", m, strings.Join(on[m], " "))
	}
	if len(res.Reasons) > 0 {
		b.WriteString("unplaced:\n")
	}
	for _, u := range sortedKeys(res.Reasons) {
		r := res.Reasons[u]
		fmt.Fprintf(&b, "  %s: %s\n", u, r.Summary)
		if verbose {
			for _, m := range sortedKeys(r.PerMachine) {
				fmt.Fprintf(&b, "    %s: %s\n", m, r.PerMachine[m])
			}
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
