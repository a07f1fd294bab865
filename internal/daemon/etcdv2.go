package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/fleetd/fleet/internal/config"
	"github.com/fleetd/fleet/internal/etcdv2"
	"github.com/fleetd/fleet/internal/store"
)

// etcdV2 is etcd's v2 keys API on etcd_v2_listen (internal/etcdv2), for
// etcdctl v2, go-etcd, python-etcd and curl scripts written for CoreOS
// fleet's etcd (docs/discovery.md).
type etcdV2 struct {
	l   net.Listener
	url string // advertised: /v2/members' clientURLs
	srv *http.Server
}

// listenEtcdV2 opens etcd_v2_listen; nil when it is "" (no v2 API).
func listenEtcdV2(cfg config.Config) (*etcdV2, error) {
	if cfg.EtcdV2Listen == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", cfg.EtcdV2Listen)
	if err != nil {
		return nil, fmt.Errorf("fleetd: --etcd-v2-listen (etcd_v2_listen) %s: %w; choose a free address, or \"\" to serve no etcd v2 API", cfg.EtcdV2Listen, err)
	}
	return &etcdV2{l: l, url: advertiseURL(l.Addr().(*net.TCPAddr), cfg.PublicIP)}, nil
}

// unitURL is the URL units on this machine reach the v2 API at: loopback
// when it listens on every address.
func (v *etcdV2) unitURL() string {
	return advertiseURL(v.l.Addr().(*net.TCPAddr), "127.0.0.1")
}

// unitEnv is what etcdctl v2 (and go-etcd, python-etcd programs reading
// the same variables) in a unit needs to read the local v2 API without
// flags: etcdctl 3.4 speaks v2 only with ETCDCTL_API=2, and the endpoint.
func (v *etcdV2) unitEnv() []string {
	u := v.unitURL()
	return []string{"ETCDCTL_API=2", "ETCDCTL_ENDPOINT=" + u, "ETCDCTL_ENDPOINTS=" + u}
}

// unitCredentialEnv lets etcdctl write: the admin token as etcdctl's
// "user:password". Only units that run as fleetd's own user get it (the
// runner's PrivilegedEnv): they could read the token file anyway, while a
// unit with User=nobody must not gain admin through its environment (as it
// gets no access to fleetd's unix socket).
func unitCredentialEnv(adminToken string) []string {
	return []string{"ETCDCTL_USERNAME=fleet:" + adminToken}
}

// serve builds the server: keys in st's etcd, fleet's own key space
// read-only, the API's token rule (check). The requests' contexts end
// when ctx does (waits are long polls that Shutdown would wait for).
func (v *etcdV2) serve(ctx context.Context, st *store.Store, check func(string) bool, log *slog.Logger) {
	log = log.With("component", "etcdv2")
	v.srv = &http.Server{
		Handler: etcdv2.New(etcdv2.Config{
			KV: st.KV(), FleetPrefix: st.Prefix(), ClientURLs: []string{v.url},
			Auth: etcdv2.TokenAuth(check), Logger: log,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// run is the component: it serves until Shutdown.
func (v *etcdV2) run(context.Context) error {
	if err := v.srv.Serve(v.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("fleetd: etcd v2 API on %s: %w", v.l.Addr(), err)
	}
	return nil
}

// close releases the listener of a start that failed before run.
func (v *etcdV2) close() {
	if v != nil {
		_ = v.l.Close()
	}
}

// shutdown stops the server (nil v: nothing to do).
func (v *etcdV2) shutdown(ctx context.Context) {
	if v != nil && v.srv != nil {
		_ = v.srv.Shutdown(ctx)
	}
}
