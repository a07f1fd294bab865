package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// browserGrace is how long --open waits for a browser command to fail
// before it takes it as started (a browser may run until it is closed).
const browserGrace = 3 * time.Second

func (a *app) cmdDashboard() *cobra.Command {
	var open bool
	cmd := &cobra.Command{
		Use:   "dashboard [--open]",
		Short: "Print a one-time URL that logs a browser in to the web dashboard",
		Long: `Ask fleetd for a one-time login URL for its web dashboard (/ui/) and print it.
Opening the URL logs the browser in: it may then start, stop and destroy
units from the dashboard. The URL works once, for 2 minutes, on the fleetd
that made it (its advertised TCP address); the login lasts 12 hours.

This needs the admin credential: run it over the unix socket (as root or
a member of group fleet) or with --token, --token-file or FLEETCTL_TOKEN.

Without a login the dashboard is read-only (from loopback; elsewhere it
asks for a token as password).

Open the dashboard in the default browser ($BROWSER, else xdg-open):
	fleetctl dashboard --open`,
	}
	cmd.Flags().BoolVar(&open, "open", false, "Open the URL in a browser ($BROWSER, else xdg-open)")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) > 0 {
			a.errf("dashboard takes no arguments")
			return 1
		}
		return a.runDashboard(open)
	})
	return cmd
}

func (a *app) runDashboard(open bool) int {
	c := a.client()
	if c == nil {
		return 1
	}
	l, err := c.DashboardLogin(a.ctx)
	if err != nil {
		a.errf("Error getting a dashboard login: %v", err)
		return 1
	}
	valid := time.Until(l.Expires).Round(time.Second)
	session := time.Duration(l.SessionSeconds) * time.Second
	a.out("Open this URL in a browser within %v (until %s); it works once and logs the browser in for %v:",
		valid, l.Expires.Local().Format("15:04:05"), session)
	a.out("%s", l.URL)
	if !open {
		return 0
	}
	if err := a.openBrowser(l.URL); err != nil {
		a.errf("Could not open a browser: %v. Open the URL yourself.", err)
		return 0
	}
	a.out("Opened it in a browser.")
	return 0
}

// openBrowser opens url with the commands of $BROWSER (a ':'-separated
// list; "%s" in a command stands for the URL, else it is appended), then
// xdg-open: the first that starts and does not fail at once.
func (a *app) openBrowser(url string) error {
	var cmds [][]string
	for _, c := range strings.Split(a.env["BROWSER"], ":") {
		f := strings.Fields(c)
		if len(f) == 0 {
			continue
		}
		if strings.Contains(c, "%s") {
			for i := range f {
				f[i] = strings.ReplaceAll(f[i], "%s", url)
			}
		} else {
			f = append(f, url)
		}
		cmds = append(cmds, f)
	}
	cmds = append(cmds, []string{"xdg-open", url})
	var errs []error
	for _, argv := range cmds {
		path, err := exec.LookPath(argv[0])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not found", argv[0]))
			continue
		}
		if err := startBrowser(path, argv[1:], a.environ()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", argv[0], err))
			continue
		}
		return nil
	}
	if len(errs) == 1 {
		return fmt.Errorf("no $BROWSER set and %w", errs[0])
	}
	return errors.Join(errs...)
}

// startBrowser starts a browser command and gives it browserGrace to
// fail; one still running then is left running.
func startBrowser(path string, args, env []string) error {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(browserGrace):
		return nil
	}
}

// environ is the environment fleetctl was given, for commands it runs
// (the process's when Main got none).
func (a *app) environ() []string {
	if len(a.env) == 0 {
		return os.Environ()
	}
	env := make([]string, 0, len(a.env))
	for k, v := range a.env {
		env = append(env, k+"="+v)
	}
	return env
}
