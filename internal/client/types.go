package client

import "github.com/fleetd/fleet/internal/fleet"

// UnitOption is one Key=Value line of a unit file, as on fleet's wire.
type UnitOption struct {
	Section string `json:"section,omitempty"`
	Name    string `json:"name,omitempty"`
	Value   string `json:"value,omitempty"`
}

// Unit is fleet's wire unit. CurrentState and MachineID are read-only
// (set by the server).
type Unit struct {
	Name         string        `json:"name,omitempty"`
	Options      []*UnitOption `json:"options,omitempty"`
	DesiredState string        `json:"desiredState,omitempty"`
	CurrentState string        `json:"currentState,omitempty"`
	MachineID    string        `json:"machineID,omitempty"`
}

// UnitPage is one page of GET /units.
type UnitPage struct {
	Units         []*Unit `json:"units,omitempty"`
	NextPageToken string  `json:"nextPageToken,omitempty"`
}

// UnitState is the state of a unit on one machine, as its agent reports it.
type UnitState struct {
	Name               string `json:"name,omitempty"`
	Hash               string `json:"hash,omitempty"`
	MachineID          string `json:"machineID,omitempty"`
	SystemdLoadState   string `json:"systemdLoadState,omitempty"`
	SystemdActiveState string `json:"systemdActiveState,omitempty"`
	SystemdSubState    string `json:"systemdSubState,omitempty"`
	// Result is the runner's result of the unit's last run (success,
	// exit-code, ...; an extension).
	Result string `json:"result,omitempty"`
	// Exit is how the main process of the last run ended (an extension).
	Exit string `json:"exit,omitempty"`
}

// UnitStatePage is one page of GET /state.
type UnitStatePage struct {
	States        []*UnitState `json:"states,omitempty"`
	NextPageToken string       `json:"nextPageToken,omitempty"`
}

// Machine is a live member of the cluster.
type Machine struct {
	ID        string            `json:"id,omitempty"`
	PrimaryIP string            `json:"primaryIP,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	// Capacity is fleetd's extension (absent from fleet's API).
	Capacity *fleet.Resources `json:"capacity,omitempty"`
}

// MachinePage is one page of GET /machines.
type MachinePage struct {
	Machines      []*Machine `json:"machines,omitempty"`
	NextPageToken string     `json:"nextPageToken,omitempty"`
}

// MetadataValue is the nested value of a metadata patch operation (fleet's
// real wire format is {"value":{"value":"x"}}).
type MetadataValue struct {
	Value string `json:"value"`
}

// MachineMetadataOp is one operation of PATCH /machines.
type MachineMetadataOp struct {
	Op    string         `json:"op"`
	Path  string         `json:"path"`
	Value *MetadataValue `json:"value,omitempty"`
}

// MetadataAdd sets key=value on a machine.
func MetadataAdd(machineID, key, value string) MachineMetadataOp {
	return MachineMetadataOp{Op: "add", Path: metadataPath(machineID, key), Value: &MetadataValue{Value: value}}
}

// MetadataReplace sets key=value on a machine (same effect as add).
func MetadataReplace(machineID, key, value string) MachineMetadataOp {
	return MachineMetadataOp{Op: "replace", Path: metadataPath(machineID, key), Value: &MetadataValue{Value: value}}
}

// MetadataRemove removes key from a machine's metadata.
func MetadataRemove(machineID, key string) MachineMetadataOp {
	return MachineMetadataOp{Op: "remove", Path: metadataPath(machineID, key)}
}

func metadataPath(machineID, key string) string {
	return "/" + machineID + "/metadata/" + key
}

// StatusEntry is the status of a unit on one machine (GET /status/{name}).
// Error is set instead of Text when the machine could not be asked.
type StatusEntry struct {
	MachineID string `json:"machineID"`
	Text      string `json:"text,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ToFleetOptions converts wire options to domain options.
func ToFleetOptions(opts []*UnitOption) []fleet.UnitOption {
	out := make([]fleet.UnitOption, 0, len(opts))
	for _, o := range opts {
		if o == nil {
			continue
		}
		out = append(out, fleet.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value})
	}
	return out
}

// FromFleetOptions converts domain options to wire options.
func FromFleetOptions(opts []fleet.UnitOption) []*UnitOption {
	out := make([]*UnitOption, 0, len(opts))
	for _, o := range opts {
		out = append(out, &UnitOption{Section: o.Section, Name: o.Name, Value: o.Value})
	}
	return out
}
