// Package lb is "fleetd lb": a load balancer for one service, fed by the
// endpoints registered in etcd v3 under registrator's layout
//
//	/services/<name>/<machine-id>:<unit-or-container>:<port> = ip:port
//
// (values are the plain string "ip:port", on the owning machine's lease, so
// endpoints vanish when a unit stops or its machine dies).
//
// # Contract
//
//   - Watcher reads the prefix "/services/<name>/" once, then watches it from
//     the next revision, re-reading everything after a compaction, a
//     canceled watch or an error. After every change (bursts coalesced over
//     a few milliseconds) it hands the full, ID-sorted set to Pool.Update.
//     Values that are not host:port are ignored with a warning naming the
//     key. While etcd is unreachable the last known set stays in force and
//     a warning is logged per retry.
//   - Pool.Update applies a set in memory: never a restart or a re-listen.
//     Backends are identified by ID (the key below the prefix); a changed
//     Addr counts as a removal plus an addition. Removed backends drain: no
//     new request or connection goes to them, in-flight ones finish, then
//     their idle keep-alive connections are closed. Whatever still runs
//     after the drain timeout is cut.
//   - Picking is round robin or least connections (fewest in-flight
//     requests or connections, ties in rotation). Pickers are pure and
//     lock-free; Pool.Acquire/Release count in-flight work with atomics.
//   - HTTPProxy has two paths. Serve (what fleetd lb runs) forwards
//     HTTP/1.1 itself, one goroutine per client connection (fast.go): it
//     parses each request head from a pooled buffer, picks a backend per
//     request, reuses idle keep-alive connections per backend address
//     (MaxIdleConnsPerBackend, 512) or dials, rewrites the hop-by-hop
//     headers, streams bodies (Content-Length, chunked re-framed
//     canonically, close-delimited responses) and loops for keep-alive and
//     pipelined requests. Requests it does not handle (Upgrade, Expect,
//     CONNECT, targets other than "/…", other transfer codings, heads over
//     16 KiB, HTTP/2) hand the connection, with the bytes already read, to
//     an http.Server running the other path; malformed heads get 400. That
//     other path is ServeHTTP, an http.Handler: an httputil.ReverseProxy
//     whose Rewrite picks a backend per request, with per-backend
//     keep-alive transports, a 32 KiB BufferPool and an ErrorHandler that
//     logs through slog and stays quiet about clients that went away.
//     On both paths a connect that fails (nothing reached the backend) is
//     retried on another backend, whatever the method, until every backend
//     was tried; the fast path also sends a request once more, on a new
//     connection, when a reused idle connection turns out closed by the
//     backend before any response byte (the write failed, or EOF/reset
//     with nothing read) and the request is still in its buffer. No backend
//     answers 503 with the body
//     `no backend available for service "<name>"`; other backend failures
//     answer 502. X-Forwarded-For (appended), -Host and -Proto are set; the
//     client's Host header is kept.
//   - Limits (both paths): a client that sends no byte of its request body
//     for HTTPConfig.BodyTimeout (progress-based; 30 s by default) gets 408
//     if nothing was answered yet and is closed, and the backend connection
//     is closed; a malformed chunked request body gets 400 and the
//     connection is closed. With HTTPConfig/TCPConfig.MaxConns connections
//     open, Serve stops accepting (HAProxy's maxconn): new connections wait
//     in the kernel's accept queue until one closes.
//   - TCPProxy accepts, picks, dials with the connect timeout (moving on to
//     another backend on failure) and copies both ways with io.Copy (splice
//     on Linux), propagating half-closes. With no backend the client
//     connection is closed.
//   - Main is the "fleetd lb" command; see docs/lb.md.
//
// The types are usable in-process, e.g. by the daemon:
//
//	pool, _ := lb.NewPool(lb.PoolConfig{Service: "web", Balance: "leastconn"})
//	w := lb.NewWatcher(lb.WatcherConfig{Client: cli, Prefix: "/services/web/", Update: pool.Update})
//	go w.Run(ctx)
//	lb.NewHTTPProxy(lb.HTTPConfig{Service: "web", Pool: pool}).Serve(ctx, ln)
package lb
