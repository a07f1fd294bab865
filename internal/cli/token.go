package cli

import (
	"fmt"
	"os"
	"strings"
)

// defaultAdminTokenFile is where fleetd keeps its admin token with the
// default data_dir.
const defaultAdminTokenFile = "/var/lib/fleet/admin-token"

// credentialHint ends the message of a 401 to a request without a token.
const credentialHint = "pass --token, --token-file or FLEETCTL_TOKEN (fleetd's admin token is in <data_dir>/admin-token on every fleet machine, " +
	defaultAdminTokenFile + " by default), or run fleetctl as root or group fleet over the unix socket (--endpoint " + DefaultEndpoint + ")"

// token is the access token to send: --token, else --token-file (the
// command line wins over FLEETCTL_TOKEN and FLEETCTL_TOKEN_FILE).
func (a *app) token() (string, error) {
	useFile := a.g.tokenFile != "" && (a.g.token == "" || (a.cliFlags["token-file"] && !a.cliFlags["token"]))
	if !useFile {
		return a.g.token, nil
	}
	return a.readTokenFile(a.g.tokenFile)
}

// readTokenFile reads a file holding one token, warning when group or
// others may read it.
func (a *app) readTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		a.errf("Warning: token file %s has mode %04o: other users may read it; make it private (chmod 600 %s)", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--token-file: %s is empty", path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("--token-file: %s should hold the token alone (one word)", path)
	}
	return tok, nil
}
