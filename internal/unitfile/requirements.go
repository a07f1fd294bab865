package unitfile

import (
	"errors"
	"fmt"
	"path"
	"reflect"
	"strconv"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// MaxRequirementValues is the most MachineOf, Conflicts or Replaces values
// (each) ValidateOptions accepts: the scheduler matches them against every
// unit on every machine.
const MaxRequirementValues = 1024

// FleetSection is the section that holds fleet's scheduling requirements.
const FleetSection = "X-Fleet"

// [X-Fleet] keys, current and legacy.
const (
	keyMachineID                = "MachineID"
	keyMachineOf                = "MachineOf"
	keyMachineMetadata          = "MachineMetadata"
	keyConflicts                = "Conflicts"
	keyGlobal                   = "Global"
	keyReplaces                 = "Replaces"
	keyStopOnDisconnect         = "StopOnDisconnect"
	keyJob                      = "Job"
	keyMemory                   = "Memory"
	keyCPU                      = "CPU"
	keyLegacyMachineID          = "X-ConditionMachineID"
	keyLegacyMachineBootID      = "X-ConditionMachineBootID"
	keyLegacyMachineOf          = "X-ConditionMachineOf"
	keyLegacyMachineMetadata    = "X-ConditionMachineMetadata"
	keyLegacyConflicts          = "X-Conflicts"
	unrecognizedRequirementWarn = "unrecognized requirement in [X-Fleet] section: %q"
)

// isRequirementKey reports whether key is a known [X-Fleet] key.
func isRequirementKey(key string) bool {
	switch key {
	case keyMachineID, keyMachineOf, keyMachineMetadata, keyConflicts, keyGlobal, keyReplaces, keyStopOnDisconnect,
		keyJob, keyMemory, keyCPU,
		keyLegacyMachineID, keyLegacyMachineBootID, keyLegacyMachineOf, keyLegacyMachineMetadata,
		keyLegacyConflicts:
		return true
	}
	return false
}

// fleetValues returns the values of every [X-Fleet] option, per key, in file
// order, with all [X-Fleet] sections merged, quoted multi-values split and
// specifiers expanded. keys lists the keys in order of first appearance.
func fleetValues(name string, opts []fleet.UnitOption) (values map[string][]string, keys []string) {
	values = make(map[string][]string)
	n := ParseName(name)
	expand := strings.Contains(name, ".")
	for _, o := range opts {
		if o.Section != FleetSection {
			continue
		}
		if _, ok := values[o.Name]; !ok {
			keys = append(keys, o.Name)
			values[o.Name] = nil
		}
		for _, v := range splitMultiValue(o.Value) {
			if expand {
				v = expandFleetSpecifiers(v, n)
			}
			values[o.Name] = append(values[o.Name], v)
		}
	}
	return values, keys
}

// splitMultiValue implements fleet's [X-Fleet] multi-value rule: a value
// that starts and ends with '"' is split on spaces outside quotes, and the
// quotes are dropped; any other value is one value.
func splitMultiValue(v string) []string {
	if !strings.HasPrefix(v, `"`) || !strings.HasSuffix(v, `"`) {
		return []string{v}
	}
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// Requirements extracts a unit's [X-Fleet] requirements; name is the unit's
// name, used for the %n %N %p %i specifiers. Unknown keys give a warning
// each (not an error). See the package documentation for rules 20-30;
// the placement options added since are described here (numbered 39-42,
// to be folded into doc.go):
//
//  39. A MachineOf value with *, ? or [ is a path.Match pattern
//     (IsMachineOfPattern): the unit must share a machine with at least
//     one other unit matching it (e.g. db@*.service). Other values,
//     backslash escapes included, are exact names as before. A malformed
//     pattern is an error: `invalid MachineOf pattern "db@[.service": ...`.
//  40. MachineMetadata operators: a value is split at its first operator,
//     one of = != < > <= >= (a '!' not followed by '=' belongs to the key).
//     "=" keeps rule 25. The others go to MetadataOps, in file order
//     without duplicates, and each must hold (AND, also with the "="
//     keys). key!=v holds on a machine without the key or with another
//     value. key>=x, key<=x, key>x and key<x need the key on the machine;
//     two decimal numbers (IsNumber: "8", "-1", "0.5") compare as numbers,
//     otherwise two versions (IsVersion: "1.2.10", "7") compare segment by
//     segment numerically, missing segments being 0 ("1.2" == "1.2.0");
//     anything else does not match. So "1.2" and "1.10" are numbers (1.2 >
//     1.10): write version>=1.2.0 to compare as versions. For these
//     operators an empty key or value, a value containing = < or >, and,
//     for the ordering ones, a value that is neither a number nor a version
//     are errors: `invalid MachineMetadata=cores>=many: >= needs a number
//     or a version (1.2.10), not "many"`.
//  41. Memory= (what the unit reserves on its machine): the last value (an
//     empty one counts as absent), a size as ParseSize reads it (systemd's:
//     bytes, or K M G T P E suffixes, base 1024: "400M", "1.5G";
//     "infinity" reserves nothing). Absent, [Service] MemoryMax= (last
//     value) in the same syntax; a MemoryMax= percentage reserves nothing
//     (it is relative to the machine). Negative, unknown-suffix or
//     malformed sizes are errors naming the key and value: `invalid
//     [X-Fleet] Memory=400MB: unknown size suffix "MB" ...`.
//  42. CPU=: the last value, a number of CPUs ("0.5", "2") or a percentage
//     of one CPU ("50%" = 0.5), stored as milli-CPUs rounded up to a whole
//     one (ParseCPU). Absent, [Service] CPUQuota= (a percentage: "20%" =
//     200, "150%" = 1500). Negative or malformed values, and a CPUQuota=
//     without '%', are errors naming the key and value.
//
// The scheduler never overcommits a machine's advertised capacity with
// these reservations (internal/schedule rule 13).
func Requirements(name string, opts []fleet.UnitOption) (fleet.Requirements, []string, error) {
	var req fleet.Requirements
	values, keys := fleetValues(name, opts)

	var warnings []string
	for _, k := range keys {
		if !isRequirementKey(k) {
			warnings = append(warnings, fmt.Sprintf(unrecognizedRequirementWarn, k))
		}
	}

	for _, k := range []string{keyMachineID, keyLegacyMachineID, keyLegacyMachineBootID} {
		if id := firstNonEmpty(values[k]); id != "" {
			req.MachineID = id
			break
		}
	}

	var peers, conflicts, replaces uniqueList
	peers.add(values[keyLegacyMachineOf]...)
	peers.add(values[keyMachineOf]...)
	req.MachineOf = peers.list

	var metaKeys []string
	meta := make(map[string]*uniqueList)
	seenOps := make(map[fleet.MetadataCond]bool)
	for _, k := range []string{keyLegacyMachineMetadata, keyMachineMetadata} {
		for _, kv := range values[k] {
			key, op, val, err := parseMetadataCond(kv)
			if err != nil {
				return req, warnings, fmt.Errorf("invalid %s=%s: %v", k, kv, err)
			}
			switch {
			case op == "":
				continue // malformed key=value: ignored (rule 25)
			case op != "=":
				c := fleet.MetadataCond{Key: key, Op: op, Value: val}
				if !seenOps[c] {
					seenOps[c] = true
					req.MetadataOps = append(req.MetadataOps, c)
				}
				continue
			}
			if meta[key] == nil {
				meta[key] = &uniqueList{}
				metaKeys = append(metaKeys, key)
			}
			meta[key].add(val)
		}
	}
	if len(metaKeys) > 0 {
		req.Metadata = make(map[string][]string, len(metaKeys))
		for _, k := range metaKeys {
			req.Metadata[k] = meta[k].list
		}
	}

	for _, k := range []string{keyLegacyConflicts, keyConflicts} {
		for _, v := range values[k] {
			conflicts.add(strings.Fields(v)...)
		}
	}
	req.Conflicts = conflicts.list
	for _, v := range values[keyReplaces] {
		replaces.add(strings.Fields(v)...)
	}
	req.Replaces = replaces.list

	if g := values[keyGlobal]; len(g) > 0 {
		req.Global = isTruthy(g[len(g)-1])
	}
	if v := values[keyStopOnDisconnect]; len(v) > 0 {
		req.StopOnDisconnect = isTruthy(v[len(v)-1])
	}
	if v := values[keyJob]; len(v) > 0 {
		req.Job = isTruthy(v[len(v)-1])
	}

	res, err := resources(values, opts)
	if err != nil {
		return req, warnings, err
	}
	req.Resources = res

	for _, p := range req.MachineOf {
		if !IsMachineOfPattern(p) {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return req, warnings, fmt.Errorf("invalid MachineOf pattern %q: %v", p, err)
		}
	}
	for _, p := range req.Conflicts {
		if _, err := path.Match(p, ""); err != nil {
			return req, warnings, fmt.Errorf("invalid Conflicts pattern %q: %v", p, err)
		}
	}
	for _, p := range req.Replaces {
		if _, err := path.Match(p, ""); err != nil {
			return req, warnings, fmt.Errorf("invalid Replaces pattern %q: %v", p, err)
		}
	}
	return req, warnings, nil
}

// firstNonEmpty returns the first non-empty string of vs, or "".
func firstNonEmpty(vs []string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// uniqueList is a list of non-empty strings without duplicates, in order of
// first addition.
type uniqueList struct {
	list []string
	seen map[string]bool
}

func (u *uniqueList) add(vs ...string) {
	for _, v := range vs {
		if v == "" || u.seen[v] {
			continue
		}
		if u.seen == nil {
			u.seen = make(map[string]bool)
		}
		u.seen[v] = true
		u.list = append(u.list, v)
	}
}

// isTruthy reports whether s is one of fleet's true values: true, yes, 1,
// on, t (case-insensitive). This is fleet's rule for [X-Fleet] Global= and
// StopOnDisconnect=, kept as fleet had it (rule 27), not systemd's boolean
// (ParseBool): "y" is false here, and anything else too, never an error;
// Global=y meaning true would move units that fleet scheduled on one
// machine onto every machine.
func isTruthy(s string) bool {
	switch strings.ToLower(s) {
	case "true", "yes", "1", "on", "t":
		return true
	}
	return false
}

// ValidateOptions is fleet's create-time check of a unit's options: there
// is at least one; they survive Serialize and Parse unchanged (so the hash,
// the stored options and the file the agent writes agree); the [X-Fleet]
// requirements are well-formed, use no forbidden combination, and no
// MachineOf peer matches a Conflicts or Replaces pattern. The first problem
// found is returned, with fleet's message where fleet had one.
func ValidateOptions(name string, opts []fleet.UnitOption) error {
	if len(opts) == 0 {
		return errors.New("unit has no options")
	}
	back, err := Parse(Serialize(opts))
	if err != nil {
		return fmt.Errorf("options do not form a valid unit file: %w", err)
	}
	if want := Grouped(opts); !reflect.DeepEqual(back, want) {
		for i := range want {
			if i >= len(back) || back[i] != want[i] {
				o := want[i]
				return fmt.Errorf("option %s in [%s] with value %s does not survive serialization (leading or trailing white space, a line break, or a name with '=')",
					excerpt(o.Name), o.Section, excerpt(o.Value))
			}
		}
		return errors.New("options do not survive serialization")
	}

	req, _, err := Requirements(name, opts)
	if err != nil {
		return err
	}
	if err := validateJob(req, opts); err != nil {
		return err
	}
	// A template is checked as its instance "1" would be; instances are
	// checked with their own name when they are submitted.
	svcName := name
	if n := ParseName(name); n.Template {
		svcName = n.Prefix + "@1" + n.Suffix
	}
	if _, err := Services(svcName, opts); err != nil {
		return err
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{keyMachineOf, req.MachineOf}, {keyConflicts, req.Conflicts}, {keyReplaces, req.Replaces}} {
		if len(l.list) > MaxRequirementValues {
			return fmt.Errorf("too many %s values (%d); the limit is %d", l.key, len(l.list), MaxRequirementValues)
		}
	}
	for _, peer := range req.MachineOf {
		for _, c := range req.Conflicts {
			if ok, _ := path.Match(c, peer); ok {
				return fmt.Errorf("unresolvable requirements: peer %q matches conflict %q", peer, c)
			}
		}
		for _, r := range req.Replaces {
			if ok, _ := path.Match(r, peer); ok {
				return fmt.Errorf("unresolvable requirements: peer %q matches replace %q", peer, r)
			}
		}
	}

	hasMachineID := req.MachineID != ""
	hasPeers := len(req.MachineOf) > 0
	hasConflicts := len(req.Conflicts) > 0
	hasReplaces := len(req.Replaces) > 0
	switch {
	case hasMachineID && hasPeers:
		return errors.New("MachineID cannot be used with Peers")
	case hasMachineID && hasConflicts:
		return errors.New("MachineID cannot be used with Conflicts")
	case hasMachineID && req.Global:
		return errors.New("MachineID cannot be used with Global")
	case hasMachineID && hasReplaces:
		return errors.New("MachineID cannot be used with Replaces")
	case req.Global && hasPeers:
		return errors.New("Global cannot be used with Peers")
	case req.Global && hasReplaces:
		return errors.New("Global cannot be used with Replaces")
	case hasConflicts && hasReplaces:
		return errors.New("Conflicts cannot be used with Replaces")
	}
	return nil
}

// IsMachineOfPattern reports whether a MachineOf value is a glob pattern
// (it has *, ? or [; path.Match syntax) rather than an exact unit name. A
// backslash alone does not make a pattern: unit names use \xNN escapes.
func IsMachineOfPattern(v string) bool { return strings.ContainsAny(v, "*?[") }

// parseMetadataCond splits a MachineMetadata value at its operator: the
// first '=', "!=", "<", ">", "<=" or ">=" (rule 40). op is "" for a value
// that is ignored (rule 25: no operator, or "=" with an empty key or
// value or a second '='); a malformed condition with another operator is
// an error.
func parseMetadataCond(kv string) (key, op, val string, err error) {
	i := strings.IndexAny(kv, "=<>!")
	for i >= 0 && kv[i] == '!' && !strings.HasPrefix(kv[i:], "!=") {
		// A '!' not followed by '=' is part of the key.
		j := strings.IndexAny(kv[i+1:], "=<>!")
		if j < 0 {
			i = -1
			break
		}
		i += 1 + j
	}
	if i < 0 {
		return "", "", "", nil
	}
	key = kv[:i]
	switch {
	case strings.HasPrefix(kv[i:], "!="), strings.HasPrefix(kv[i:], "<="), strings.HasPrefix(kv[i:], ">="):
		op, val = kv[i:i+2], kv[i+2:]
	default:
		op, val = kv[i:i+1], kv[i+1:]
	}
	if op == "=" {
		if key == "" || val == "" || strings.Contains(val, "=") {
			return "", "", "", nil
		}
		return key, op, val, nil
	}
	switch {
	case key == "":
		return "", "", "", errors.New("empty metadata key")
	case val == "":
		return "", "", "", fmt.Errorf("no value after %q", op)
	case strings.ContainsAny(val, "=<>"):
		return "", "", "", fmt.Errorf("value %q contains an operator", val)
	}
	if op != "!=" && !IsNumber(val) && !IsVersion(val) {
		return "", "", "", fmt.Errorf("%s needs a number or a version (1.2.10), not %q", op, val)
	}
	return key, op, val, nil
}

// IsNumber reports whether s is a decimal number: an optional '-', digits,
// and optionally '.' and digits ("8", "-1", "0.5"). MachineMetadata
// ordering operators compare two numbers as numbers.
func IsNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	ip, fp, dot := strings.Cut(s, ".")
	return digits(ip) == len(ip) && ip != "" && (!dot || fp != "" && digits(fp) == len(fp))
}

// IsVersion reports whether s is a version: digit runs separated by single
// dots ("1.2.10", "7"). Ordering operators compare versions segment by
// segment, numerically, when the two sides are not both numbers.
func IsVersion(s string) bool {
	for _, seg := range strings.Split(s, ".") {
		if seg == "" || digits(seg) != len(seg) {
			return false
		}
	}
	return true
}

// resources is the unit's reservation (rules 41-42): [X-Fleet] Memory= and
// CPU= (last value; empty counts as absent), else [Service] MemoryMax= and
// CPUQuota=.
func resources(values map[string][]string, opts []fleet.UnitOption) (fleet.Resources, error) {
	var r fleet.Resources
	last := func(k string) string {
		if vs := values[k]; len(vs) > 0 {
			return strings.TrimSpace(vs[len(vs)-1])
		}
		return ""
	}
	if v := last(keyMemory); v != "" {
		n, _, err := ParseSize(v)
		if err != nil {
			return r, fmt.Errorf("invalid [X-Fleet] Memory=%s: %v", v, err)
		}
		r.MemoryBytes = n
	} else if v, ok := Value(opts, "Service", "MemoryMax"); ok && strings.TrimSpace(JoinContinuations(v)) != "" {
		v = strings.TrimSpace(JoinContinuations(v))
		if !strings.HasSuffix(v, "%") { // a share of the machine's memory: no fixed reservation
			n, _, err := ParseSize(v)
			if err != nil {
				return r, fmt.Errorf("invalid [Service] MemoryMax=%s: %v", v, err)
			}
			r.MemoryBytes = n
		}
	}
	if v := last(keyCPU); v != "" {
		n, err := ParseCPU(v)
		if err != nil {
			return r, fmt.Errorf("invalid [X-Fleet] CPU=%s: %v", v, err)
		}
		r.CPUMilli = n
	} else if v, ok := Value(opts, "Service", "CPUQuota"); ok && strings.TrimSpace(JoinContinuations(v)) != "" {
		v = strings.TrimSpace(JoinContinuations(v))
		if !strings.HasSuffix(v, "%") {
			return r, fmt.Errorf("invalid [Service] CPUQuota=%s: want a percentage such as 20%%", v)
		}
		n, err := ParseCPU(v)
		if err != nil {
			return r, fmt.Errorf("invalid [Service] CPUQuota=%s: %v", v, err)
		}
		r.CPUMilli = n
	}
	return r, nil
}

// sizeUnit is the multiplier of a ParseSize suffix (0: unknown), base 1024
// as in systemd's MemoryMax=.
func sizeUnit(c byte) int64 {
	switch c {
	case 'K':
		return 1 << 10
	case 'M':
		return 1 << 20
	case 'G':
		return 1 << 30
	case 'T':
		return 1 << 40
	case 'P':
		return 1 << 50
	case 'E':
		return 1 << 60
	}
	return 0
}

const maxInt64 = 1<<63 - 1

// ParseSize parses a size as systemd's MemoryMax= does (parse_size, base
// 1024): "infinity", or a decimal number ("400", "1.5") with an optional
// suffix K, M, G, T, P or E (powers of 1024; upper case, as in systemd),
// white space allowed between them. A bare number is bytes; fractions of a
// byte are dropped (and fraction digits past the ninth). Negative numbers,
// other suffixes and sizes beyond an int64 are errors. infinity returns
// (0, true, nil).
func ParseSize(s string) (bytes int64, infinity bool, err error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 0, true, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, false, errors.New("size is negative")
	}
	n := 0
	for n < len(s) && (s[n] >= '0' && s[n] <= '9' || s[n] == '.') {
		n++
	}
	num, rest := s[:n], strings.TrimSpace(s[n:])
	ip, fp, dot := strings.Cut(num, ".")
	if ip == "" || strings.Contains(fp, ".") || dot && fp == "" {
		return 0, false, errors.New("not a size (want a number with an optional K, M, G or T suffix, base 1024)")
	}
	mult := int64(1)
	if rest != "" {
		mult = sizeUnit(rest[0])
		if mult == 0 || len(rest) > 1 {
			return 0, false, fmt.Errorf("unknown size suffix %q (want K, M, G or T, base 1024)", rest)
		}
	}
	whole, err := strconv.ParseInt(ip, 10, 64)
	if err != nil || whole > maxInt64/mult {
		return 0, false, errors.New("size too large")
	}
	total := whole * mult
	if fp = fp[:min(len(fp), 9)]; fp != "" {
		f, _ := strconv.ParseInt(fp, 10, 64)
		scale := int64(1)
		for range len(fp) {
			scale *= 10
		}
		// floor(f * mult / scale) exactly, with f < scale <= 1e9 and mult
		// a power of two: no intermediate product passes 2^60.
		var frac int64
		if mult <= 1<<30 {
			frac = f * mult / scale
		} else {
			m2, q := mult>>30, f<<30
			frac = q/scale*m2 + q%scale*m2/scale
		}
		if total > maxInt64-frac {
			return 0, false, errors.New("size too large")
		}
		total += frac
	}
	return total, false, nil
}

// ParseCPU parses a CPU amount into milli-CPUs: a number of CPUs ("2",
// "0.5") or a percentage of one CPU ("50%" is 0.5, "150%" is 1.5), as in
// CPUQuota=. Fractions finer than a milli-CPU are rounded up. Negative or
// malformed values are errors.
func ParseCPU(s string) (int64, error) {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	num := strings.TrimSpace(strings.TrimSuffix(s, "%"))
	if strings.HasPrefix(num, "-") {
		return 0, errors.New("CPU amount is negative")
	}
	ip, fp, dot := strings.Cut(num, ".")
	if ip == "" && fp == "" || digits(ip) != len(ip) || digits(fp) != len(fp) || dot && fp == "" {
		return 0, errors.New(`not a CPU amount (want a number of CPUs such as 0.5 or 2, or a percentage such as 50%)`)
	}
	if ip == "" {
		ip = "0"
	}
	// milli = (ip.fp) * 1000, or * 10 for a percentage.
	shift := 3
	if pct {
		shift = 1
	}
	fp += strings.Repeat("0", shift)
	intDigits := strings.TrimLeft(ip+fp[:shift], "0")
	roundUp := strings.Trim(fp[shift:], "0") != ""
	if len(intDigits) > 15 {
		return 0, errors.New("CPU amount too large")
	}
	n := int64(0)
	if intDigits != "" {
		n, _ = strconv.ParseInt(intDigits, 10, 64)
	}
	if roundUp {
		n++
	}
	return n, nil
}

// validateJob checks that a unit with [X-Fleet] Job=true is a
// Type=oneshot service: a job runs to completion, and only a oneshot's
// end says whether it succeeded.
func validateJob(req fleet.Requirements, opts []fleet.UnitOption) error {
	if !req.Job {
		return nil
	}
	typ, _ := Value(opts, "Service", "Type")
	typ = strings.TrimSpace(JoinContinuations(typ))
	if typ == "oneshot" {
		return nil
	}
	if typ == "" {
		typ = "simple (the default)"
	}
	return fmt.Errorf("[X-Fleet] Job=true requires [Service] Type=oneshot, but the unit's Type is %s", typ)
}
