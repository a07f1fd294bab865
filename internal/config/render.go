package config

import (
	"bytes"
	"fmt"
	"io"
	"text/tabwriter"
)

// Render returns c in fleet.conf syntax, every key explicit. Loading the
// result as a file gives back the same settings (not Warnings, Version or
// ConfigFile). Values containing a newline cannot be represented.
func (c *Config) Render() []byte {
	var b bytes.Buffer
	for _, d := range keyDefs() {
		fmt.Fprintf(&b, "%s=%s\n", d.key, d.render(c))
	}
	return b.Bytes()
}

// Usage writes fleetd's usage: every flag with its key, environment variable
// and default.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: fleetd [flags]\n       fleetd version\n\n")
	fmt.Fprintf(w, "Settings are taken from flags, then FLEET_<KEY> environment variables, then the\n")
	fmt.Fprintf(w, "configuration file (--config, default %s if it exists), then defaults.\n\n", DefaultConfigFile)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "FLAG\tKEY\tENV\tDEFAULT\n")
	for _, d := range keyDefs() {
		fl := "--" + d.flagName()
		if d.arg != "" {
			fl += " " + d.arg
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", fl, d.key, d.envName(), d.def)
	}
	fmt.Fprintf(tw, "--config PATH\t-\t-\t%s (if it exists)\n", DefaultConfigFile)
	fmt.Fprintf(tw, "--version\t-\t-\tfalse\n")
	tw.Flush()
	fmt.Fprintf(w, "\n")
	for _, d := range keyDefs() {
		fmt.Fprintf(w, "  --%s: %s\n", d.flagName(), d.usage)
	}
	fmt.Fprintf(w, "  --config: configuration file; --config= reads none\n")
	fmt.Fprintf(w, "  --version: print the version and exit\n")
	fmt.Fprintf(w, "\nDeprecated fleet keys, accepted and ignored: ")
	for i, k := range deprecatedKeys() {
		if i > 0 {
			fmt.Fprintf(w, ", ")
		}
		fmt.Fprintf(w, "%s", k)
	}
	fmt.Fprintf(w, "\n")
}
