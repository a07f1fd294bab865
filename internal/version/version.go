// Package version holds the release version of fleetd and fleetctl.
package version

// Version is reported by `fleetd --version`, `fleetctl version`, the API's
// Server header and the machine objects.
const Version = "0.1.0"
