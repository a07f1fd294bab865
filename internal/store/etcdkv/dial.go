package etcdkv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/fleetd/fleet/internal/clusterauth"
)

// DialOptions tune Dial.
type DialOptions struct {
	// ProbeKey is read (count only) once after connecting, so that a
	// missing or wrong credential fails at once; "" skips the probe.
	ProbeKey string
	// ProbeTimeout bounds the probe (default 5 s). An etcd that does not
	// answer in time is not an error: callers retry like after any outage.
	ProbeTimeout time.Duration
	// GRPC are extra gRPC dial options (metrics interceptors).
	GRPC []grpc.DialOption
	// Logger receives warnings (a readable token file, etcd not answering).
	Logger *slog.Logger
	// Wait keeps trying, until ctx ends, while etcd cannot be reached
	// (with credentials, connecting needs an answer from etcd); otherwise
	// the first failure is returned. Authentication errors always return
	// at once.
	Wait bool
	// ClientOptions configure the returned Client (WithTimeout).
	ClientOptions []Option
}

// Dial resolves creds and connects to etcd with gRPC keepalives (a member
// that vanished without a reset is left within 13 s). Authentication
// errors are explained (see clusterauth.Credentials.Explain). It is the one
// way fleet builds an etcd client.
func Dial(ctx context.Context, creds clusterauth.Credentials, o DialOptions) (*Client, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res, err := creds.Resolve()
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		log.Warn(w)
	}
	cfg := clientv3.Config{
		Endpoints:   creds.Endpoints,
		DialTimeout: 5 * time.Second,
		TLS:         res.TLS,
		Username:    res.Username,
		Password:    res.Password,
		Logger:      zap.NewNop(), // its retries are reported by our own callers
		DialOptions: o.GRPC,
		// A member that vanished (partition, kill -9 of its host) leaves
		// a TCP connection nobody resets, and requests and watches sent
		// on it hang. gRPC pings close it, so that they move to another
		// endpoint (10s is gRPC's minimum interval).
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
	}
	cli, err := connect(ctx, cfg, creds, o.Wait, log)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(creds.Endpoints, ","), err)
	}
	if o.ProbeKey == "" {
		return New(cli, o.ClientOptions...), nil
	}
	timeout := o.ProbeTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cli.Get(pctx, o.ProbeKey, clientv3.WithCountOnly()); err != nil {
		if ex := creds.Explain(err); ex != err {
			cli.Close()
			return nil, ex
		}
		// gRPC reports a certificate that does not verify as a timeout:
		// try the handshake ourselves to say so.
		if terr := checkTLS(ctx, creds.Endpoints, res.TLS); terr != nil {
			cli.Close()
			return nil, creds.Explain(terr)
		}
		log.Warn("etcd is not answering yet; retrying", "endpoints", strings.Join(creds.Endpoints, ","), "err", err)
	}
	return New(cli, o.ClientOptions...), nil
}

// connect creates the client; with wait it retries while etcd cannot be
// reached.
func connect(ctx context.Context, cfg clientv3.Config, creds clusterauth.Credentials, wait bool, log *slog.Logger) (*clientv3.Client, error) {
	delay := 500 * time.Millisecond
	for {
		cli, err := clientv3.New(cfg)
		if err == nil {
			return cli, nil
		}
		ex := creds.Explain(err)
		if ex == err && cfg.TLS != nil {
			if terr := checkTLS(ctx, cfg.Endpoints, cfg.TLS); terr != nil {
				ex = creds.Explain(terr)
			}
		}
		if !wait || ex != err {
			return nil, ex
		}
		log.Warn("cannot reach etcd yet; retrying", "endpoints", strings.Join(cfg.Endpoints, ","), "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// checkTLS makes a TLS handshake with each https endpoint that accepts a
// TCP connection, and returns the first certificate error (nil if none, or
// if no endpoint could be reached at all).
func checkTLS(ctx context.Context, endpoints []string, cfg *tls.Config) error {
	if cfg == nil {
		return nil
	}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" {
			continue
		}
		hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		d := tls.Dialer{Config: cfg.Clone()}
		conn, err := d.DialContext(hctx, "tcp", u.Host)
		cancel()
		if err == nil {
			conn.Close()
			continue
		}
		var cv *tls.CertificateVerificationError
		var ua x509.UnknownAuthorityError
		var hn x509.HostnameError
		if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) {
			return fmt.Errorf("%s: %w", e, err)
		}
	}
	return nil
}
