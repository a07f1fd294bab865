package tmpl

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ParseResource decodes a template resource file (confd's
// TemplateResourceConfig) with github.com/BurntSushi/toml, the TOML library
// confd itself uses, so any valid TOML is read as confd reads it. file is used
// in messages.
//
// The file must hold a [template] table with src, dest and keys. Unlike
// confd, which ignores them, unknown keys and tables (including a key whose
// case differs from a known one) are errors that name the file, the line and
// the key's full name, for example
//
//	conf.d/web.toml:5: unknown key "template.relaod_cmd" (did you mean "reload_cmd"?)
//
// A value of the wrong TOML type or an invalid value (mode, uid, gid) is an
// error naming the key and its line too. All unknown keys of a file are
// reported together, in file order, and then, once there are none, all
// problems with values.
func ParseResource(file string, data []byte) (*ResourceConfig, error) {
	src := string(data)
	var doc map[string]toml.Primitive
	md, err := toml.Decode(src, &doc)
	if err != nil {
		return nil, syntaxError(file, err)
	}
	ps := &problems{file: file, src: src, md: &md}

	// The [template] table's type, then unknown keys: decoding into
	// templateTable matches field names case-insensitively, so until the
	// names are known to be exact the decoded values are not looked at.
	var t templateTable
	if prim, ok := doc["template"]; ok {
		// A table made implicitly (template.src = ...) has no type.
		if typ := md.Type("template"); typ != "Hash" && typ != "" {
			ps.addKey(toml.Key{"template"}, "want a table, got "+metaTypeName(typ))
		} else if err := md.PrimitiveDecode(prim, &t); err != nil {
			// Unreachable: every field accepts any TOML value.
			return nil, &resourceError{file: file, msg: err.Error()}
		}
	}
	undecoded := map[string]bool{}
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	for _, k := range md.Keys() {
		if undecoded[k.String()] || len(k) == 1 && k[0] != "template" ||
			len(k) == 2 && k[0] == "template" && !templateKeySet[k[1]] {
			ps.add(k, unknownKeyMessage(&md, k))
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}

	// Types and values of the known keys.
	rc := &ResourceConfig{File: file}
	tv := reflect.ValueOf(&t).Elem()
	for i, name := range templateKeys {
		if msg := tv.Field(i).Addr().Interface().(tomlField).problem(); msg != "" {
			ps.addKey(toml.Key{"template", name}, msg)
		}
	}
	rc.Src, rc.Dest, rc.Prefix = t.Src.val, t.Dest.val, t.Prefix.val
	rc.Owner, rc.Group = t.Owner.val, t.Group.val
	rc.CheckCmd, rc.ReloadCmd = t.CheckCmd.val, t.ReloadCmd.val
	rc.Keys = t.Keys.val
	for _, id := range []struct {
		name string
		v    tomlInt
		dst  *string
	}{{"uid", t.UID, &rc.Owner}, {"gid", t.GID, &rc.Group}} {
		if !md.IsDefined("template", id.name) || id.v.bad != "" {
			continue
		}
		if id.v.val < 0 || id.v.val > 1<<31 {
			ps.addKey(toml.Key{"template", id.name}, fmt.Sprintf("id %d out of range", id.v.val))
		}
		*id.dst = strconv.FormatInt(id.v.val, 10)
	}
	if md.IsDefined("template", "mode") && t.Mode.bad == "" {
		m, err := strconv.ParseUint(t.Mode.val, 8, 32)
		if err != nil || m > 0o7777 {
			ps.addKey(toml.Key{"template", "mode"}, fmt.Sprintf("invalid mode %q (want octal such as \"0644\")", t.Mode.val))
		}
		rc.Mode = fileModeFromUnix(uint32(m))
	}
	if err := ps.err(); err != nil {
		return nil, err
	}

	// The resource as a whole.
	fail := func(k toml.Key, msg string) (*ResourceConfig, error) {
		line := 0
		if k != nil {
			line = ps.line(k)
		}
		return nil, &resourceError{file: file, line: line, msg: msg}
	}
	if !md.IsDefined("template") {
		return fail(nil, "missing [template] table")
	}
	if md.IsDefined("template", "uid") && md.IsDefined("template", "owner") {
		return fail(nil, "both owner and uid set")
	}
	if md.IsDefined("template", "gid") && md.IsDefined("template", "group") {
		return fail(nil, "both group and gid set")
	}
	var missing []string
	if rc.Src == "" {
		missing = append(missing, "src")
	}
	if rc.Dest == "" {
		missing = append(missing, "dest")
	}
	if !md.IsDefined("template", "keys") {
		missing = append(missing, "keys")
	}
	if len(missing) > 0 {
		return fail(nil, "missing required key(s): "+strings.Join(missing, ", "))
	}
	if len(rc.Keys) == 0 {
		return fail(toml.Key{"template", "keys"}, "keys is empty")
	}
	if slices.Contains(rc.Keys, "") {
		return fail(toml.Key{"template", "keys"}, "keys holds an empty key")
	}
	return rc, nil
}

// templateTable is the [template] table of a conf.d/*.toml file (confd's
// TemplateResourceConfig). The file is first decoded into a
// map[string]toml.Primitive, whose keys, unlike struct fields, match
// exactly; the table is decoded in a second step, once it is known to be a
// table.
//
// The table holds exactly the keys fleetd supports (confd's, plus owner and
// group). Each field accepts any TOML value and records a type mismatch
// instead of failing the decode, so that every problem can be reported with
// its key and line, in file order.
type templateTable struct {
	Src       tomlString  `toml:"src"`
	Dest      tomlString  `toml:"dest"`
	Keys      tomlStrings `toml:"keys"`
	Prefix    tomlString  `toml:"prefix"`
	Owner     tomlString  `toml:"owner"`
	Group     tomlString  `toml:"group"`
	UID       tomlInt     `toml:"uid"`
	GID       tomlInt     `toml:"gid"`
	Mode      modeString  `toml:"mode"`
	CheckCmd  tomlString  `toml:"check_cmd"`
	ReloadCmd tomlString  `toml:"reload_cmd"`
}

// templateKeys are the names of templateTable's fields, in field order;
// templateKeySet holds the same names.
var templateKeys, templateKeySet = func() ([]string, map[string]bool) {
	t := reflect.TypeFor[templateTable]()
	names := make([]string, t.NumField())
	set := make(map[string]bool, t.NumField())
	for i := range names {
		names[i] = t.Field(i).Tag.Get("toml")
		set[names[i]] = true
	}
	return names, set
}()

// tomlField is implemented by templateTable's field types.
type tomlField interface {
	// problem describes a value of the wrong type, or is "".
	problem() string
}

// tomlString is a TOML string.
type tomlString struct {
	val string
	bad string // the TOML type found instead
}

func (s *tomlString) UnmarshalTOML(v any) error {
	if str, ok := v.(string); ok {
		s.val, s.bad = str, ""
	} else {
		s.bad = tomlTypeName(v)
	}
	return nil
}

func (s *tomlString) problem() string {
	if s.bad == "" {
		return ""
	}
	return "want string, got " + s.bad
}

// modeString is a file mode, written as an octal string as in confd.
type modeString struct{ tomlString }

func (s *modeString) problem() string {
	if s.bad == "" {
		return ""
	}
	return `want a string such as "0644", got ` + s.bad
}

// tomlInt is a TOML integer.
type tomlInt struct {
	val int64
	bad string
}

func (n *tomlInt) UnmarshalTOML(v any) error {
	if i, ok := v.(int64); ok {
		n.val, n.bad = i, ""
	} else {
		n.bad = tomlTypeName(v)
	}
	return nil
}

func (n *tomlInt) problem() string {
	if n.bad == "" {
		return ""
	}
	return "want integer, got " + n.bad
}

// tomlStrings is a TOML array of strings.
type tomlStrings struct {
	val []string
	bad string
}

func (a *tomlStrings) UnmarshalTOML(v any) error {
	arr, ok := v.([]any)
	if !ok {
		a.bad = tomlTypeName(v)
		return nil
	}
	strs := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			a.bad = "array holding " + tomlTypeName(e)
			return nil
		}
		strs[i] = s
	}
	a.val, a.bad = strs, ""
	return nil
}

func (a *tomlStrings) problem() string {
	if a.bad == "" {
		return ""
	}
	return "want array of strings, got " + a.bad
}

// tomlTypeName names the TOML type of a value decoded by BurntSushi/toml.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "datetime"
	case []map[string]any:
		return "array of tables"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

// metaTypeName names a type returned by toml.MetaData.Type like tomlTypeName.
func metaTypeName(typ string) string {
	switch typ {
	case "Hash":
		return "table"
	case "ArrayHash":
		return "array of tables"
	case "Bool":
		return "boolean"
	}
	return strings.ToLower(typ)
}

// resourceError is an error in a resource file, with the line when known.
type resourceError struct {
	file string
	line int
	msg  string
}

func (e *resourceError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return fmt.Sprintf("%s: %s", e.file, e.msg)
}

// syntaxError converts a toml.Decode error into a resourceError.
func syntaxError(file string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.LastKey == "template.mode" && strings.Contains(msg, "integer") {
			msg += ` (write mode as a string, e.g. "0644")`
		}
		return &resourceError{file: file, line: pe.Position.Line, msg: msg}
	}
	return &resourceError{file: file, msg: err.Error()}
}

// maxProblems bounds the problems reported for one file (finding the line
// of each decodes the file again).
const maxProblems = 10

// problems collects the problems of one file, each about a key.
type problems struct {
	file string
	src  string
	md   *toml.MetaData
	list []problem
}

type problem struct {
	key toml.Key
	msg string
}

func (ps *problems) add(k toml.Key, msg string) {
	ps.list = append(ps.list, problem{key: k, msg: msg})
}

// addKey adds a problem with the value of k: msg is prefixed with k's name.
func (ps *problems) addKey(k toml.Key, msg string) {
	ps.add(k, fmt.Sprintf("key %q: %s", k.String(), msg))
}

// err returns the problems found so far as one error, or nil. A problem
// about a key hides those about the keys below it. Problems are in line
// order.
func (ps *problems) err() error {
	var keep []problem
	for _, p := range ps.list {
		hidden := slices.ContainsFunc(ps.list, func(q problem) bool {
			return len(q.key) < len(p.key) && slices.Equal(q.key, p.key[:len(q.key)])
		}) || slices.ContainsFunc(keep, func(q problem) bool { return slices.Equal(q.key, p.key) })
		if !hidden {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	more := 0
	if len(keep) > maxProblems {
		more = len(keep) - maxProblems
		keep = keep[:maxProblems]
	}
	errs := make([]*resourceError, len(keep))
	for i, p := range keep {
		errs[i] = &resourceError{file: ps.file, line: ps.line(p.key), msg: p.msg}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		li, lj := errs[i].line, errs[j].line
		return li > 0 && (lj == 0 || li < lj)
	})
	if len(errs) == 1 {
		return errs[0]
	}
	joined := make([]error, 0, len(errs)+1)
	for _, e := range errs {
		joined = append(joined, e)
	}
	if more > 0 {
		joined = append(joined, &resourceError{file: ps.file, msg: fmt.Sprintf("and %d more problems", more)})
	}
	return errors.Join(joined...)
}

// errLineProbe is what lineProbe fails with.
var errLineProbe = errors.New("line probe")

// lineProbe fails when decoded, so that the toml.ParseError returned tells
// the position of the key being decoded.
type lineProbe struct{}

func (lineProbe) UnmarshalTOML(any) error { return errLineProbe }

// ignoreValue accepts any value.
type ignoreValue struct{}

func (ignoreValue) UnmarshalTOML(any) error { return nil }

// line returns the line on which key k is defined, or 0 if it cannot be
// told. toml.MetaData keeps key positions to itself, but reports the
// position of the key being decoded when an Unmarshaler fails: the file is
// decoded again into a type that reaches only k, through fields named after
// k's parts, and fails there.
func (ps *problems) line(k toml.Key) int {
	t := reflect.TypeFor[lineProbe]()
	for i := len(k) - 1; i >= 0; i-- {
		fields := []reflect.StructField{{Name: "F", Type: t, Tag: tomlTag(k[i])}}
		// Field names match keys case-insensitively when no name matches
		// exactly: give keys beside k[i] differing only in case (including
		// tables made implicitly, which Keys does not list) fields of their
		// own, so that they do not reach the probe.
		seen := map[string]bool{k[i]: true}
		for _, o := range ps.md.Keys() {
			if len(o) > i && !seen[o[i]] && strings.EqualFold(o[i], k[i]) && slices.Equal(o[:i], k[:i]) {
				seen[o[i]] = true
				fields = append(fields, reflect.StructField{
					Name: "S" + strconv.Itoa(len(fields)), Type: reflect.TypeFor[ignoreValue](), Tag: tomlTag(o[i]),
				})
			}
		}
		t = reflect.StructOf(fields)
	}
	_, err := toml.Decode(ps.src, reflect.New(t).Interface())
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.Message == errLineProbe.Error() && pe.LastKey == k.String() {
		return pe.Position.Line
	}
	return 0
}

func tomlTag(name string) reflect.StructTag {
	return reflect.StructTag("toml:" + strconv.Quote(name))
}

// unknownKeyMessage describes the unknown key k.
func unknownKeyMessage(md *toml.MetaData, k toml.Key) string {
	switch typ := md.Type(k...); {
	case k[0] != "template" && (typ == "Hash" || typ == "ArrayHash"):
		if len(k) == 1 && strings.EqualFold(k[0], "template") {
			return fmt.Sprintf("unknown table [%s] (names are case-sensitive: did you mean [template]?)", k)
		}
		return fmt.Sprintf("unknown table [%s] (only [template] is allowed)", k)
	case len(k) == 1 && templateKeySet[k[0]]:
		return fmt.Sprintf("key %q outside the [template] table", k.String())
	case len(k) == 1:
		return fmt.Sprintf("unknown key %q (only the [template] table is allowed)", k.String()) + suggest(k[0], []string{"template"})
	case len(k) == 2 && k[0] == "template":
		return fmt.Sprintf("unknown key %q", k.String()) + suggest(k[1], templateKeys)
	}
	return fmt.Sprintf("unknown key %q", k.String())
}

// suggest returns " (did you mean ...?)" naming the candidate closest to
// name, if one is close enough to be a misspelling, or "".
func suggest(name string, candidates []string) string {
	for _, c := range candidates {
		if strings.EqualFold(name, c) {
			return fmt.Sprintf(" (names are case-sensitive: did you mean %q?)", c)
		}
	}
	if len(name) < 3 || len(name) > 32 {
		return ""
	}
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
