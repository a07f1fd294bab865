package cli

import (
	"io"
	"net"

	"github.com/spf13/cobra"
)

func (a *app) cmdFDForward() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "fd-forward SOCKET",
		Short:  "Proxy stdin and stdout to a unix domain socket",
		Long:   `Proxies stdin and stdout to a unix domain socket (used by fleet's --tunnel with a unix endpoint).`,
		Hidden: true,
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) != 1 {
			a.errf("Provide a single argument")
			return 1
		}
		var d net.Dialer
		conn, err := d.DialContext(a.ctx, "unix", args[0])
		if err != nil {
			a.errf("Failed dialing remote socket: %v", err)
			return 1
		}
		defer conn.Close()
		done := make(chan error, 2)
		go func() {
			_, err := io.Copy(conn, a.stdin)
			if uc, ok := conn.(*net.UnixConn); ok {
				_ = uc.CloseWrite()
			}
			done <- err
		}()
		go func() {
			_, err := io.Copy(a.stdout, conn)
			done <- err
		}()
		select {
		case <-a.ctx.Done():
			return 0
		case err := <-done:
			if err != nil {
				a.errf("%v", err)
				return 1
			}
			// Wait for the answer side unless the context ends first.
			select {
			case <-a.ctx.Done():
			case err = <-done:
			}
			if err != nil {
				a.errf("%v", err)
				return 1
			}
			return 0
		}
	})
	return cmd
}
