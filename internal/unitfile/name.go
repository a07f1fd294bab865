package unitfile

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// MaxNameLength is the longest unit name fleet accepts, in bytes.
const MaxNameLength = 256

// nameChars are the characters allowed before the unit type suffix (fleet's
// set, which includes the backslash of systemd's \x escapes).
const nameChars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:-_.\\@"

// isUnitType reports whether t (without the dot) is a unit type fleet
// accepts.
func isUnitType(t string) bool {
	switch t {
	case "automount", "busname", "device", "mount", "path", "scope", "service",
		"slice", "snapshot", "socket", "swap", "target", "timer":
		return true
	}
	return false
}

// isTemplateType reports whether t is a unit type that may be a template or
// an instance (a name with '@').
func isTemplateType(t string) bool {
	switch t {
	case "path", "service", "socket", "target", "timer":
		return true
	}
	return false
}

// isArgSuffix reports whether t is a suffix fleetctl leaves alone on a unit
// argument (see NormalizeArg).
func isArgSuffix(t string) bool {
	switch t {
	case "service", "socket", "timer", "path", "device", "mount", "automount":
		return true
	}
	return false
}

// ValidateName checks a unit name with fleet's API rules and messages; the
// first problem found is returned.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("unit name cannot be empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("unit name exceeds maximum length (%d)", MaxNameLength)
	}
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return errors.New(`unit name must contain "."`)
	}
	if dot == len(name)-1 {
		return errors.New(`unit name cannot end in "."`)
	}
	suffix := name[dot+1:]
	if !isUnitType(suffix) {
		return fmt.Errorf("invalid unit type: %q", suffix)
	}
	for _, c := range name[:dot] {
		if !strings.ContainsRune(nameChars, c) {
			return fmt.Errorf("invalid character %q in unit name", c)
		}
	}
	if strings.HasPrefix(name, "@") {
		return errors.New(`unit name cannot start in "@"`)
	}
	if strings.HasPrefix(name, ".") {
		// Not a fleet rule: systemd refuses an empty prefix, and the agent
		// would write a hidden file.
		return errors.New(`unit name cannot start in "."`)
	}
	if strings.Contains(name, "@") && !isTemplateType(suffix) {
		return fmt.Errorf("invalid unit type for template: %q", suffix)
	}
	return nil
}

// Name is a unit name taken apart as fleet's specifiers see it.
type Name struct {
	Full       string // foo@bar.service
	Prefix     string // foo: before the first '@', or the name without suffix
	Instance   string // bar: between the first '@' and the suffix; "" for templates and plain units
	Suffix     string // .service, with its dot; "" if the name has no dot
	Template   bool   // foo@.service
	IsInstance bool   // foo@bar.service
}

// ParseName splits a unit name. It does not validate it (see ValidateName).
func ParseName(name string) Name {
	n := Name{Full: name}
	stem := name
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		stem, n.Suffix = name[:dot], name[dot:]
	}
	at := strings.IndexByte(stem, '@')
	if at < 0 {
		n.Prefix = stem
		return n
	}
	n.Prefix, n.Instance = stem[:at], stem[at+1:]
	n.Template = n.Instance == ""
	n.IsInstance = n.Instance != ""
	return n
}

// Unsuffixed returns the name without its suffix (foo@bar): the %N specifier.
func (n Name) Unsuffixed() string {
	return strings.TrimSuffix(n.Full, n.Suffix)
}

// TemplateName returns the template a name belongs to (foo@bar.service and
// foo@.service give foo@.service), or "" for a name without '@'.
func (n Name) TemplateName() string {
	if !n.Template && !n.IsInstance {
		return ""
	}
	return n.Prefix + "@" + n.Suffix
}

// NormalizeArg turns a fleetctl unit argument into a unit name as fleetctl
// does: the last path element, with ".service" appended unless it already
// ends in .service, .socket, .timer, .path, .device, .mount or .automount.
func NormalizeArg(arg string) string {
	name := path.Base(arg)
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 && isArgSuffix(name[dot+1:]) {
		return name
	}
	return name + ".service"
}
