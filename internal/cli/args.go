package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// normalizeArgs prepares a command line for cobra:
//
//   - the command word may be a unique prefix of a command (fleetctl
//     list-m), as with cobra's EnablePrefixMatching — done here so that no
//     cobra package variable has to be set;
//   - single-dash long flags (-fields=unit -no-legend, as pre-cobra
//     fleetctl accepted and old tutorials type) become double-dash ones
//     when the name is a long flag of the command or a global flag.
//
// Nothing after "--" is touched.
func normalizeArgs(root *cobra.Command, args []string) []string {
	out := append([]string(nil), args...)
	global := root.PersistentFlags()
	word := -1
	for i := 0; i < len(out); i++ {
		arg := out[i]
		if arg == "--" {
			return out
		}
		if strings.HasPrefix(arg, "-") && len(arg) > 1 {
			out[i] = longDashes(arg, global)
			if takesSeparateValue(out[i], global) {
				i++
			}
			continue
		}
		word = i
		break
	}
	if word < 0 {
		return out
	}
	cmd := resolveCommand(root, out[word])
	if cmd == nil {
		return out
	}
	out[word] = cmd.Name()
	for i := word + 1; i < len(out); i++ {
		if out[i] == "--" {
			break
		}
		out[i] = longDashes(out[i], cmd.Flags(), global)
	}
	return out
}

// longDashes turns "-name[=v]" into "--name[=v]" if name (two or more
// characters) is a long flag in one of sets.
func longDashes(arg string, sets ...*pflag.FlagSet) string {
	if !strings.HasPrefix(arg, "-") || strings.HasPrefix(arg, "--") || len(arg) < 3 {
		return arg
	}
	name, _, _ := strings.Cut(arg[1:], "=")
	if len(name) < 2 {
		return arg
	}
	for _, fs := range sets {
		if fs.Lookup(name) != nil {
			return "-" + arg
		}
	}
	return arg
}

// takesSeparateValue reports whether arg is "--name" of a flag in fs that
// needs a value and has none attached (so the next argument is the value).
func takesSeparateValue(arg string, fs *pflag.FlagSet) bool {
	if !strings.HasPrefix(arg, "--") || strings.Contains(arg, "=") {
		return false
	}
	f := fs.Lookup(arg[2:])
	return f != nil && f.NoOptDefVal == ""
}

// resolveCommand finds the subcommand of root named word, by exact name or
// alias first, then by unique prefix. It returns nil when there is none or
// the prefix is ambiguous.
func resolveCommand(root *cobra.Command, word string) *cobra.Command {
	var match *cobra.Command
	n := 0
	for _, c := range root.Commands() {
		if c.Name() == word || c.HasAlias(word) {
			return c
		}
		if strings.HasPrefix(c.Name(), word) {
			match = c
			n++
		}
	}
	if n == 1 {
		return match
	}
	return nil
}
