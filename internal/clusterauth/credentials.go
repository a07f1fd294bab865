package clusterauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// PlainBeyondLoopback reports whether rawURL is plain http to a host that
// is not loopback (an IP outside 127.0.0.0/8 and ::1, a name other than
// localhost, or a wildcard address): credentials sent there cross a
// network in the clear.
func PlainBeyondLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	return !LoopbackHost(u.Hostname())
}

// LoopbackHost reports whether host (no port, no brackets) is "localhost"
// or a loopback IP.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Credentials are the client-side etcd settings shared by fleetd and its
// subcommands.
type Credentials struct {
	// Endpoints are the client URLs.
	Endpoints []string
	// TokenFile holds the cluster token: the password of RootUser, and
	// the CA for https endpoints when CAFile is empty.
	TokenFile string
	// Token is the cluster token itself (instead of TokenFile).
	Token string
	// TokenSource names where Token came from, in messages.
	TokenSource string
	// Username and Password authenticate to an external etcd.
	Username, Password string
	// CAFile, CertFile, KeyFile are TLS files.
	CAFile, CertFile, KeyFile string
	// Insecure allows plain http beyond loopback (etcd_insecure).
	Insecure bool
	// TokenFlag names the token setting in messages
	// ("--cluster-token-file").
	TokenFlag string
}

// Resolved is what an etcd client needs.
type Resolved struct {
	Username, Password string
	// TLS is nil for plain http.
	TLS *tls.Config
	// Warnings are non-fatal problems (a readable token file).
	Warnings []string
}

// Resolve checks the settings and loads the files.
func (c Credentials) Resolve() (Resolved, error) {
	var r Resolved
	flag := c.flag()
	if !c.Insecure {
		for _, e := range c.Endpoints {
			if PlainBeyondLoopback(e) {
				return r, fmt.Errorf("etcd endpoint %s is plain HTTP beyond loopback: the cluster's credentials would cross the network in the clear; use https:// (with %s, fleetd derives the certificates from the cluster token; or --etcd-cafile), or set etcd_insecure=true", e, flag)
			}
		}
	}
	tok := c.Token
	if c.TokenFile != "" {
		t, warn, err := ReadToken(c.TokenFile)
		if err != nil {
			return r, fmt.Errorf("%s: %w", flag, err)
		}
		if warn != "" {
			r.Warnings = append(r.Warnings, warn)
		}
		tok = t
	}
	if tok != "" && c.Username != "" {
		return r, fmt.Errorf("%s and --etcd-username are alternatives: give one", flag)
	}
	switch {
	case tok != "":
		r.Username, r.Password = RootUser, tok
	case c.Username != "":
		r.Username, r.Password = c.Username, c.Password
	}
	https := false
	for _, e := range c.Endpoints {
		if strings.HasPrefix(e, "https://") {
			https = true
		}
	}
	if !https && c.CAFile == "" && c.CertFile == "" {
		return r, nil
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return r, errors.New("--etcd-certfile and --etcd-keyfile go together")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case c.CAFile != "":
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			return r, fmt.Errorf("etcd CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return r, fmt.Errorf("etcd CA file %s: no PEM certificates found", c.CAFile)
		}
		cfg.RootCAs = pool
	case tok != "":
		a, err := DeriveAuthority(tok)
		if err != nil {
			return r, err
		}
		cfg.RootCAs = a.Pool()
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return r, fmt.Errorf("etcd client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	r.TLS = cfg
	return r, nil
}

func (c Credentials) flag() string {
	if c.TokenFlag != "" {
		return c.TokenFlag
	}
	return "--cluster-token-file"
}

// Explain rewrites etcd's authentication errors into messages that say what
// to pass; other errors are returned as they are.
func (c Credentials) Explain(err error) error {
	if err == nil {
		return nil
	}
	at := strings.Join(c.Endpoints, ",")
	flag := c.flag()
	msg := err.Error()
	switch {
	case errors.Is(err, rpctypes.ErrUserEmpty) || strings.Contains(msg, rpctypes.ErrUserEmpty.Error()):
		return fmt.Errorf("etcd at %s requires authentication: pass %s FILE (the %s file in the data dir of the fleetd that started the cluster; env FLEET_CLUSTER_TOKEN_FILE), or --etcd-username/--etcd-password for an external etcd", at, flag, TokenFileName)
	case errors.Is(err, rpctypes.ErrAuthFailed) || strings.Contains(msg, rpctypes.ErrAuthFailed.Error()):
		if c.TokenFile != "" || c.Token != "" {
			return fmt.Errorf("etcd at %s refused the cluster token of %s: it is not this cluster's token (wrong file, or the cluster was re-created)", at, c.tokenSource())
		}
		return fmt.Errorf("etcd at %s refused user %q: wrong --etcd-username/--etcd-password", at, c.Username)
	case errors.Is(err, rpctypes.ErrPermissionDenied) || strings.Contains(msg, rpctypes.ErrPermissionDenied.Error()):
		return fmt.Errorf("etcd at %s: permission denied for user %q (fleet needs read and write access to its prefix): %w", at, c.Username, err)
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		if c.TokenFile == "" && c.Token == "" && c.CAFile == "" {
			return fmt.Errorf("etcd at %s: its TLS certificate does not verify (%v): for an etcd a fleetd started, pass %s FILE (the %s file of the fleetd that started the cluster: fleetd derives the CA from it); otherwise --etcd-cafile", at, err, flag, TokenFileName)
		}
		return fmt.Errorf("etcd at %s: its TLS certificate does not verify (%v): check %s (the CA is derived from the token) or --etcd-cafile", at, err, flag)
	}
	return err
}

func (c Credentials) tokenSource() string {
	switch {
	case c.TokenFile != "":
		return c.TokenFile
	case c.TokenSource != "":
		return c.TokenSource
	}
	return "the configuration"
}

// Hosts returns the hosts (no ports) of URLs, plus loopback names and,
// for wildcard hosts, every address of this machine's interfaces.
func Hosts(urls []string, extra ...string) []string {
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	add := func(h string) {
		for _, x := range hosts {
			if x == h {
				return
			}
		}
		hosts = append(hosts, h)
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		h := u.Hostname()
		if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
			if addrs, err := net.InterfaceAddrs(); err == nil {
				for _, a := range addrs {
					if n, ok := a.(*net.IPNet); ok {
						add(n.IP.String())
					}
				}
			}
			continue
		}
		add(h)
	}
	for _, h := range extra {
		if h != "" {
			add(h)
		}
	}
	return hosts
}
