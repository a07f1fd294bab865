package etcdv2_test

import (
	"net/http/httptest"
	"strconv"

	"github.com/fleetd/fleet/internal/etcdv2"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func strconvI(i int64) string { return strconv.FormatInt(i, 10) }

// newV2Server serves the handler on 127.0.0.1, its URL as the members'
// client URL.
func newV2Server(kv *etcdkv.Client) *httptest.Server {
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = etcdv2.New(etcdv2.Config{KV: kv, ClientURLs: []string{"http://" + srv.Listener.Addr().String()}})
	srv.Start()
	return srv
}
