// Package metrics holds fleetd's Prometheus collectors on a registry of its
// own (etcd fills the default one; we never touch it) and serves them at
// /metrics on the API's address. Every metric name starts with "fleet_".
//
// What reports into it, and how (see docs/metrics.md for the full list):
//
//	engine   engine.Config.OnReconcile = m.ObserveReconcile-adapter (daemon)
//	agent    m.InstrumentRunner(runner) wraps the runner the agent drives:
//	         start latency (Start → active), starts, stops; m.CollectRunner
//	         reports units by state and restarts at scrape time
//	API      m.Middleware(handler): requests by method, route (the mux
//	         pattern) and code; latency by method and route
//	etcd     m.EtcdDialOptions() for etcdkv.DialOptions.GRPC (client
//	         request counts and latency by gRPC method);
//	         m.CollectEtcd(kv, machineID, leader) asks the Maintenance Status of the
//	         endpoints at scrape time (up, has leader, db size, term) and
//	         whether this machine leads the engine
//	balancer m.LB(): counters and gauges keyed by service and backend that a
//	         load balancer reports into (LB's methods are nil-safe)
//	rollouts m.CollectRollouts(store) reads the rollout records at scrape
//	         time: rollouts not over by phase, their targets by status,
//	         and rollouts finished since fleetd started by result (the
//	         cluster's figures, the same on every fleetd)
//
// Contract: nothing here is global; a Metrics is safe for concurrent use;
// every Observe-style method is cheap and never blocks on I/O; collectors
// that do I/O at scrape time bound it with a short timeout.
package metrics
