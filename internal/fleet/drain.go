package fleet

// DrainMetadataKey is the dynamic metadata key (metadata/<id>/draining,
// value "true") that marks a machine as draining: the engine places no
// unit on it, so its units move to other machines. It shows in
// list-machines' metadata.
const DrainMetadataKey = "draining"

// Draining reports whether m is draining.
func (m Machine) Draining() bool { return m.Metadata[DrainMetadataKey] == "true" }
