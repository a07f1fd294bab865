package unitfile

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"

	"github.com/fleetd/fleet/internal/fleet"
)

// Serialize renders options as a unit file, byte for byte as go-systemd's
// unit.Serialize does (fleet hashed and printed that): sections in order of
// first appearance, each "[Section]\n" followed by "Name=Value\n" for its
// options in their original order, a blank line between sections, none at
// the end. Repeated sections are merged into the first.
func Serialize(opts []fleet.UnitOption) []byte {
	if len(opts) == 0 {
		return []byte{}
	}
	size := 0
	for _, o := range opts {
		size += len(o.Name) + len(o.Value) + 2
	}
	var buf bytes.Buffer
	buf.Grow(size + 64)
	for i, group := range groupBySection(opts) {
		if i > 0 {
			buf.WriteByte('\n')
		}
		buf.WriteByte('[')
		buf.WriteString(opts[group[0]].Section)
		buf.WriteString("]\n")
		for _, j := range group {
			buf.WriteString(opts[j].Name)
			buf.WriteByte('=')
			buf.WriteString(opts[j].Value)
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

// Hash returns the hex SHA1 of Serialize(opts): fleet's unit hash.
func Hash(opts []fleet.UnitOption) string {
	sum := sha1.Sum(Serialize(opts))
	return hex.EncodeToString(sum[:])
}

// Grouped returns opts reordered as Serialize writes them (and Parse reads
// them back): stably grouped by section, sections in order of first
// appearance.
func Grouped(opts []fleet.UnitOption) []fleet.UnitOption {
	out := make([]fleet.UnitOption, 0, len(opts))
	for _, group := range groupBySection(opts) {
		for _, j := range group {
			out = append(out, opts[j])
		}
	}
	return out
}

// groupBySection returns the indexes of opts grouped by section, sections in
// order of first appearance, options in their original order.
func groupBySection(opts []fleet.UnitOption) [][]int {
	var groups [][]int
	index := make(map[string]int)
	for i, o := range opts {
		g, ok := index[o.Section]
		if !ok {
			g = len(groups)
			index[o.Section] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}
