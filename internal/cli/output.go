package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
)

// Output formats of the list commands (-o/--output).
const (
	outputTable = "table"
	outputJSON  = "json"
)

func checkOutputFormat(f string) error {
	switch f {
	case outputTable, outputJSON:
		return nil
	}
	return fmt.Errorf("invalid output format %q: expect %q or %q", f, outputTable, outputJSON)
}

// machineIDLegend is the first 8 characters of a machine ID followed by
// "...", or the whole ID with full.
func machineIDLegend(id string, full bool) string {
	if full {
		return id
	}
	return fleet.ShortMachineID(id) + "..."
}

// machineFullLegend is the ID legend followed by "/<ip>" when the machine
// has a public IP: "3d1219c7.../127.0.0.1".
func machineFullLegend(m client.Machine, full bool) string {
	l := machineIDLegend(m.ID, full)
	if m.PrimaryIP != "" {
		l += "/" + m.PrimaryIP
	}
	return l
}

// machineLegendIn is the legend of id using machines (a bare ID legend
// when the machine is unknown).
func machineLegendIn(machines map[string]client.Machine, id string, full bool) string {
	if m, ok := machines[id]; ok {
		return machineFullLegend(m, full)
	}
	return machineIDLegend(id, full)
}

// parseFields checks a --fields value against the valid keys.
func parseFields(spec string, valid func(string) bool) ([]string, error) {
	if spec == "" {
		return nil, errors.New("Must define output format")
	}
	fields := strings.Split(spec, ",")
	for _, f := range fields {
		if !valid(f) {
			return nil, fmt.Errorf("Invalid key in output format: %q", f)
		}
	}
	return fields, nil
}

// renderTable writes rows under the upper-cased field names (unless
// noLegend) with fleet's tabwriter settings.
func renderTable(w io.Writer, fields []string, rows [][]string, noLegend bool) error {
	tw := newTabWriter(w)
	if !noLegend {
		head := make([]string, len(fields))
		for i, f := range fields {
			head[i] = strings.ToUpper(f)
		}
		fmt.Fprintln(tw, strings.Join(head, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// ---- list-machines ----

const defaultMachineFields = "machine,ip,metadata"

func machineField(key string, m client.Machine, full bool) string {
	switch key {
	case "machine":
		return machineIDLegend(m.ID, full)
	case "ip":
		return dash(m.PrimaryIP)
	case "metadata":
		return fleet.Machine{Metadata: m.Metadata}.MetadataString()
	case "capacity":
		return capacityString(m.Capacity)
	}
	return ""
}

// capacityString renders a machine's capacity as "cpu=2,memory=23.4G" ("-"
// when unknown).
func capacityString(c *fleet.Resources) string {
	if c == nil || *c == (fleet.Resources{}) {
		return "-"
	}
	var parts []string
	if c.CPUMilli > 0 {
		parts = append(parts, "cpu="+fleet.FormatCPU(c.CPUMilli))
	}
	if c.MemoryBytes > 0 {
		parts = append(parts, "memory="+fleet.FormatSize(c.MemoryBytes))
	}
	return strings.Join(parts, ",")
}

func validMachineField(k string) bool {
	return k == "machine" || k == "ip" || k == "metadata" || k == "capacity"
}

func sortMachines(ms []client.Machine) []client.Machine {
	out := append([]client.Machine(nil), ms...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// tableRows renders items, one row each, for fields: field gives an item's
// column.
func tableRows[T any](items []T, fields []string, field func(key string, item T) string) [][]string {
	var rows [][]string
	for _, it := range items {
		row := make([]string, len(fields))
		for i, f := range fields {
			row[i] = field(f, it)
		}
		rows = append(rows, row)
	}
	return rows
}

// machineRows renders machines (sorted by ID) for fields.
func machineRows(ms []client.Machine, fields []string, full bool) [][]string {
	return tableRows(sortMachines(ms), fields, func(k string, m client.Machine) string { return machineField(k, m, full) })
}

// machineJSON is one machine in list-machines -o json.
type machineJSON struct {
	Machine  string            `json:"machine"`
	IP       string            `json:"ip,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Capacity *fleet.Resources  `json:"capacity,omitempty"`
}

func machinesJSON(ms []client.Machine) []machineJSON {
	out := []machineJSON{}
	for _, m := range sortMachines(ms) {
		out = append(out, machineJSON{Machine: m.ID, IP: m.PrimaryIP, Metadata: m.Metadata, Capacity: m.Capacity})
	}
	return out
}

// ---- list-unit-files ----

const defaultUnitFileFields = "unit,hash,dstate,state,target"

func validUnitFileField(k string) bool {
	switch k {
	case "unit", "desc", "dstate", "global", "hash", "state", "target", "tmachine":
		return true
	}
	return false
}

// unitFileView is what a list-unit-files row is rendered from.
type unitFileView struct {
	machines map[string]client.Machine
	states   map[string][]client.UnitState // by unit name
}

// isGlobalUnit reports whether the unit's [X-Fleet] Global= is true.
func isGlobalUnit(u client.Unit) bool {
	req, _, _ := unitfile.Requirements(u.Name, client.ToFleetOptions(u.Options))
	return req.Global
}

func unitHash(u client.Unit) string {
	return unitfile.Hash(client.ToFleetOptions(u.Options))
}

func shortHash(h string, full bool) string {
	if full || len(h) <= 7 {
		return h
	}
	return h[:7]
}

// globalStateSummary counts the machines a global unit is on by state:
// "launched(3)" or "launched(2),loaded(1)" (fleet issue #1072); "-" if
// no machine reports it. A machine whose systemd unit is active (or on its
// way) counts as launched, else as loaded.
func globalStateSummary(states []client.UnitState) string {
	launched, loaded := 0, 0
	for _, s := range states {
		switch s.SystemdActiveState {
		case "active", "activating", "reloading", "deactivating":
			launched++
		default:
			loaded++
		}
	}
	var parts []string
	if launched > 0 {
		parts = append(parts, fmt.Sprintf("launched(%d)", launched))
	}
	if loaded > 0 {
		parts = append(parts, fmt.Sprintf("loaded(%d)", loaded))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func (v unitFileView) field(key string, u client.Unit, full bool) string {
	switch key {
	case "unit":
		return u.Name
	case "desc":
		return dash(unitfile.Description(client.ToFleetOptions(u.Options)))
	case "dstate":
		return dash(u.DesiredState)
	case "state":
		if isGlobalUnit(u) {
			return globalStateSummary(v.states[u.Name])
		}
		return dash(u.CurrentState)
	case "global":
		return fmt.Sprint(isGlobalUnit(u))
	case "hash":
		return shortHash(unitHash(u), full)
	case "target", "tmachine":
		if isGlobalUnit(u) {
			return "global"
		}
		if u.MachineID == "" {
			return "-"
		}
		return machineLegendIn(v.machines, u.MachineID, full)
	}
	return ""
}

func sortUnits(us []client.Unit) []client.Unit {
	out := append([]client.Unit(nil), us...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func statesByUnit(states []client.UnitState) map[string][]client.UnitState {
	m := map[string][]client.UnitState{}
	for _, s := range states {
		m[s.Name] = append(m[s.Name], s)
	}
	return m
}

// unitFileRows renders units (sorted by name) for fields.
func unitFileRows(units []client.Unit, machines map[string]client.Machine, states []client.UnitState, fields []string, full bool) [][]string {
	v := unitFileView{machines: machines, states: statesByUnit(states)}
	return tableRows(sortUnits(units), fields, func(k string, u client.Unit) string { return v.field(k, u, full) })
}

// unitFileJSON is one unit in list-unit-files -o json.
type unitFileJSON struct {
	Unit   string `json:"unit"`
	Hash   string `json:"hash"`
	Desc   string `json:"desc,omitempty"`
	DState string `json:"dstate,omitempty"`
	// State is the current job state; for a global unit the per-machine
	// summary ("launched(3)").
	State  string `json:"state,omitempty"`
	Target string `json:"target,omitempty"` // machine ID, "global" or ""
	Global bool   `json:"global"`
}

func unitFilesJSON(units []client.Unit, states []client.UnitState) []unitFileJSON {
	v := unitFileView{states: statesByUnit(states)}
	out := []unitFileJSON{}
	for _, u := range sortUnits(units) {
		j := unitFileJSON{
			Unit:   u.Name,
			Hash:   unitHash(u),
			Desc:   unitfile.Description(client.ToFleetOptions(u.Options)),
			DState: u.DesiredState,
			State:  u.CurrentState,
			Target: u.MachineID,
			Global: isGlobalUnit(u),
		}
		if j.Global {
			j.State = strings.TrimPrefix(v.field("state", u, true), "-")
			j.Target = "global"
		}
		out = append(out, j)
	}
	return out
}

// ---- list-units ----

const defaultUnitFields = "unit,machine,active,sub"

func validUnitField(k string) bool {
	switch k {
	case "unit", "machine", "active", "sub", "load", "hash", "result", "exit":
		return true
	}
	return false
}

func unitStateField(key string, s client.UnitState, machines map[string]client.Machine, full bool) string {
	switch key {
	case "unit":
		return s.Name
	case "machine":
		if s.MachineID == "" {
			return "-"
		}
		return machineLegendIn(machines, s.MachineID, full)
	case "active":
		return dash(s.SystemdActiveState)
	case "sub":
		return dash(s.SystemdSubState)
	case "load":
		return dash(s.SystemdLoadState)
	case "hash":
		return dash(shortHash(s.Hash, full))
	case "result":
		return dash(s.Result)
	case "exit":
		return dash(s.Exit)
	}
	return ""
}

func sortStates(states []client.UnitState) []client.UnitState {
	out := append([]client.UnitState(nil), states...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].MachineID < out[j].MachineID
	})
	return out
}

// unitRows renders unit states (sorted by unit, then machine) for fields.
func unitRows(states []client.UnitState, machines map[string]client.Machine, fields []string, full bool) [][]string {
	return tableRows(sortStates(states), fields, func(k string, s client.UnitState) string {
		return unitStateField(k, s, machines, full)
	})
}

// unitStateJSON is one row of list-units -o json.
type unitStateJSON struct {
	Unit    string `json:"unit"`
	Machine string `json:"machine,omitempty"`
	IP      string `json:"ip,omitempty"`
	Hash    string `json:"hash,omitempty"`
	Load    string `json:"load,omitempty"`
	Active  string `json:"active,omitempty"`
	Sub     string `json:"sub,omitempty"`
	Result  string `json:"result,omitempty"`
	Exit    string `json:"exit,omitempty"`
}

func unitStatesJSON(states []client.UnitState, machines map[string]client.Machine) []unitStateJSON {
	out := []unitStateJSON{}
	for _, s := range sortStates(states) {
		out = append(out, unitStateJSON{
			Unit:    s.Name,
			Machine: s.MachineID,
			IP:      machines[s.MachineID].PrimaryIP,
			Hash:    s.Hash,
			Load:    s.SystemdLoadState,
			Active:  s.SystemdActiveState,
			Sub:     s.SystemdSubState,
			Result:  s.Result,
			Exit:    s.Exit,
		})
	}
	return out
}
