package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// scrapeTimeout bounds the etcd calls made while collecting.
const scrapeTimeout = 2 * time.Second

// EtcdDialOptions returns gRPC options for etcdkv.DialOptions.GRPC that
// count and time every unary etcd request.
func (m *Metrics) EtcdDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(m.unaryInterceptor)}
}

func (m *Metrics) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	name := strings.TrimPrefix(method, "/etcdserverpb.")
	m.etcdRequests.WithLabelValues(name, status.Code(err).String()).Inc()
	m.etcdDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	return err
}

// LeaderFunc returns the machine ID of the engine leader ("" if none).
type LeaderFunc func(ctx context.Context) (string, error)

// CollectEtcd reports at scrape time what the Maintenance Status of cli's
// endpoints says (the first that answers) and whether machineID leads the
// engine (when leader is not nil).
func (m *Metrics) CollectEtcd(cli *etcdkv.Client, machineID string, leader LeaderFunc) {
	m.reg.MustRegister(&etcdCollector{cli: cli, machineID: machineID, leader: leader})
}

var (
	etcdUpDesc = prometheus.NewDesc(Namespace+"_etcd_up",
		"1 if an etcd endpoint answered its status request at scrape time.", nil, nil)
	etcdHasLeaderDesc = prometheus.NewDesc(Namespace+"_etcd_has_leader",
		"1 if the answering etcd member knows a raft leader.", nil, nil)
	etcdIsLeaderDesc = prometheus.NewDesc(Namespace+"_etcd_is_leader",
		"1 if the answering etcd member is the raft leader.", nil, nil)
	etcdDBSizeDesc = prometheus.NewDesc(Namespace+"_etcd_db_size_bytes",
		"Size of the answering member's database.", nil, nil)
	etcdRaftTermDesc = prometheus.NewDesc(Namespace+"_etcd_raft_term",
		"Raft term of the answering member.", nil, nil)
	etcdStatusDurDesc = prometheus.NewDesc(Namespace+"_etcd_status_duration_seconds",
		"How long the status request took at scrape time.", nil, nil)
	engineLeaderDesc = prometheus.NewDesc(Namespace+"_engine_is_leader",
		"1 if this machine's engine is the scheduling leader.", nil, nil)
)

type etcdCollector struct {
	cli       *etcdkv.Client
	machineID string
	leader    LeaderFunc
}

func (c *etcdCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{etcdUpDesc, etcdHasLeaderDesc, etcdIsLeaderDesc, etcdDBSizeDesc, etcdRaftTermDesc, etcdStatusDurDesc, engineLeaderDesc} {
		ch <- d
	}
}

func (c *etcdCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	start := time.Now()
	up := false
	if st, err := c.cli.Status(ctx); err == nil {
		up = true
		gauge(etcdHasLeaderDesc, b(st.Leader != 0))
		gauge(etcdIsLeaderDesc, b(st.IsLeader()))
		gauge(etcdDBSizeDesc, float64(st.DBSize))
		gauge(etcdRaftTermDesc, float64(st.RaftTerm))
	}
	gauge(etcdStatusDurDesc, time.Since(start).Seconds())
	gauge(etcdUpDesc, b(up))
	if c.leader != nil {
		id, err := c.leader(ctx)
		gauge(engineLeaderDesc, b(err == nil && id != "" && id == c.machineID))
	}
}
