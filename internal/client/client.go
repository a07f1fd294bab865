package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
)

// DefaultUserAgent is sent when Options.UserAgent is empty. It is the one
// fleet's generated API client sent.
const DefaultUserAgent = "google-api-go-client/0.5"

// maxPages bounds page following, so that a server that keeps answering
// with a token cannot loop a client forever.
const maxPages = 100000

// Options configure a Client.
type Options struct {
	// HTTPClient is used as is when set (its transport must be able to
	// reach the endpoint; for unix endpoints use New's own transport by
	// leaving this nil). It should have no Timeout: journals are streamed.
	HTTPClient *http.Client
	// CAFile, CertFile and KeyFile configure TLS for https endpoints.
	CAFile, CertFile, KeyFile string
	// UserAgent is the User-Agent header (DefaultUserAgent if empty).
	UserAgent string
	// RequestTimeout bounds every request except Journal (0 = no bound).
	RequestTimeout time.Duration
	// Debug, when set, receives one line per request: method, URL, status
	// and duration.
	Debug io.Writer
	// Token is sent as "Authorization: Bearer <Token>" ("" sends none).
	Token string
	// CredentialHint ends the message of a 401 answered to a request
	// without Token (e.g. "pass --token or FLEETCTL_TOKEN").
	CredentialHint string
}

// Client talks to one fleetd API endpoint.
type Client struct {
	base      string // scheme://host, no trailing slash, no /fleet/v1
	hc        *http.Client
	userAgent string
	timeout   time.Duration
	debug     io.Writer
	endpoint  string
	token     string
	hint      string
	sockPath  string // unix endpoints
}

// New returns a Client for endpoint (see the package contract for the
// accepted forms).
func New(endpoint string, opts Options) (*Client, error) {
	first := strings.TrimSpace(strings.Split(endpoint, ",")[0])
	if first == "" {
		return nil, errors.New("no endpoint given")
	}
	if !strings.Contains(first, "://") {
		return nil, errors.New("URL scheme undefined")
	}
	ep, err := url.Parse(first)
	if err != nil {
		return nil, err
	}
	c := &Client{
		hc:        opts.HTTPClient,
		userAgent: opts.UserAgent,
		timeout:   opts.RequestTimeout,
		debug:     opts.Debug,
		endpoint:  first,
		token:     opts.Token,
		hint:      opts.CredentialHint,
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	var sockPath string
	switch ep.Scheme {
	case "unix", "file":
		// "unix://var/run/fleet.sock" parses with host "var": the user
		// forgot the third slash.
		if ep.Host != "" {
			return nil, fmt.Errorf("unable to connect to host %q with scheme %q", ep.Host, ep.Scheme)
		}
		if ep.Path == "" {
			return nil, fmt.Errorf("no socket path in endpoint %q", first)
		}
		sockPath = ep.Path
		c.sockPath = sockPath
		c.base = "http://domain-sock"
	case "http", "https":
		if ep.Host == "" {
			return nil, fmt.Errorf("no host in endpoint %q", first)
		}
		c.base = ep.Scheme + "://" + ep.Host + strings.TrimRight(ep.Path, "/")
	default:
		return nil, fmt.Errorf("unsupported URL scheme %q (use http, https or unix)", ep.Scheme)
	}
	if c.hc != nil {
		return c, nil
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	if sockPath != "" {
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sockPath)
		}
	}
	if opts.CAFile != "" || opts.CertFile != "" || opts.KeyFile != "" {
		cfg, err := tlsConfig(opts.CAFile, opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
	}
	c.hc = &http.Client{Transport: tr}
	return c, nil
}

func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate found in CA file %s", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, errors.New("both --cert-file and --key-file are needed for a client certificate")
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("loading client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Endpoint returns the base URL requests go to ("http://domain-sock" for
// unix sockets).
func (c *Client) Endpoint() string { return c.base }

// APIError is a non-2xx answer, decoded from fleet's error envelope.
type APIError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Error formats the error like fleet's generated client did.
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("googleapi: Error %d: %s", e.Code, msg)
}

// IsNotFound reports whether err is an *APIError with code 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == http.StatusNotFound
}

// request describes one API call.
type request struct {
	method string
	path   string // below /fleet/v1, e.g. "units/x.service"
	query  url.Values
	body   any
	stream bool // no timeout
}

func (c *Client) url(path string, q url.Values) string {
	v := url.Values{}
	for k, vs := range q {
		v[k] = vs
	}
	v.Set("alt", "json")
	return c.base + "/fleet/v1/" + path + "?" + v.Encode()
}

// do performs r and returns the response for a 2xx answer (the caller
// closes the body and calls cancel); any other answer is an *APIError.
func (c *Client) do(ctx context.Context, r request) (*http.Response, context.CancelFunc, error) {
	cancel := context.CancelFunc(func() {})
	if c.timeout > 0 && !r.stream {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.url(r.path, r.query), body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if c.debug != nil {
		status := "error"
		if resp != nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		fmt.Fprintf(c.debug, "DEBUG: %s %s -> %s (%s)\n", r.method, req.URL, status, time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		cancel()
		return nil, nil, c.connectError(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer cancel()
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			return nil, nil, c.unauthorized(decodeError(resp))
		}
		return nil, nil, decodeError(resp)
	}
	return resp, cancel, nil
}

// unauthorized explains a 401: which fleetd wants a credential, and what
// it said about the one sent.
func (c *Client) unauthorized(err error) error {
	ae := &APIError{Code: http.StatusUnauthorized}
	if c.token == "" {
		ae.Message = fmt.Sprintf("fleetd at %s requires a credential", c.endpoint)
		if c.hint != "" {
			ae.Message += ": " + c.hint
		}
		return ae
	}
	var server *APIError
	if errors.As(err, &server) && server.Message != "" {
		ae.Message = fmt.Sprintf("fleetd at %s refused the credential: %s", c.endpoint, server.Message)
	} else {
		ae.Message = fmt.Sprintf("fleetd at %s refused the credential", c.endpoint)
	}
	if c.hint != "" {
		ae.Message += "; " + c.hint
	}
	return ae
}

// connectError explains a unix socket that may not be opened: only its
// owner and group may use it.
func (c *Client) connectError(err error) error {
	if c.sockPath == "" || !errors.Is(err, syscall.EACCES) {
		return err
	}
	more := ""
	if c.hint != "" {
		more = "; or " + c.hint
	}
	return fmt.Errorf("%w: only the owner and the group of %s may use it (fleetd's are root and group fleet)%s", err, c.sockPath, more)
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Error *APIError `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err == nil && env.Error != nil {
		if env.Error.Code == 0 {
			env.Error.Code = resp.StatusCode
		}
		return env.Error
	}
	return &APIError{Code: resp.StatusCode, Message: strings.TrimSpace(string(b))}
}

// call performs r and decodes a JSON answer into out (if non-nil).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, cancel, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decoding answer to %s %s: %w", r.method, r.path, err)
	}
	return nil
}

// pages calls GET path repeatedly, following nextPageToken; each page is
// decoded by decode, which returns the page's token.
func (c *Client) pages(ctx context.Context, path string, q url.Values, decode func([]byte) (string, error)) error {
	seen := map[string]bool{}
	token := ""
	for range maxPages {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		if token != "" {
			qq.Set("nextPageToken", token)
		}
		var raw json.RawMessage
		if err := c.call(ctx, request{method: http.MethodGet, path: path, query: qq}, &raw); err != nil {
			return err
		}
		next, err := decode(raw)
		if err != nil {
			return fmt.Errorf("decoding page of %s: %w", path, err)
		}
		if next == "" {
			return nil
		}
		if seen[next] {
			return fmt.Errorf("server repeated page token %q for %s", next, path)
		}
		seen[next] = true
		token = next
	}
	return fmt.Errorf("too many pages for %s", path)
}

// listAll lists every item of the paged list at path: a page is a P, and
// items returns its items and next page token.
func listAll[P, T any](ctx context.Context, c *Client, path string, q url.Values, items func(p *P) ([]*T, string)) ([]T, error) {
	var all []T
	err := c.pages(ctx, path, q, func(b []byte) (string, error) {
		var p P
		if len(b) > 0 {
			if err := json.Unmarshal(b, &p); err != nil {
				return "", err
			}
		}
		list, next := items(&p)
		for _, it := range list {
			if it != nil {
				all = append(all, *it)
			}
		}
		return next, nil
	})
	return all, err
}

func unitPath(name string) string { return "units/" + url.PathEscape(name) }

// Units lists every unit, following page tokens.
func (c *Client) Units(ctx context.Context) ([]Unit, error) {
	return listAll(ctx, c, "units", nil, func(p *UnitPage) ([]*Unit, string) { return p.Units, p.NextPageToken })
}

// Unit returns the named unit, or (nil, nil) if it does not exist.
func (c *Client) Unit(ctx context.Context, name string) (*Unit, error) {
	var u Unit
	err := c.call(ctx, request{method: http.MethodGet, path: unitPath(name)}, &u)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUnit creates u (or overwrites it when its options differ from the
// stored ones: fleet's --replace).
func (c *Client) CreateUnit(ctx context.Context, u *Unit) error {
	_, err := c.CreateUnitWarnings(ctx, u)
	return err
}

// WarningHeader is the header in which fleetd names what a submitted unit
// contains that systemd would ignore (one header per warning).
const WarningHeader = "X-Fleet-Warning"

// CreateUnitWarnings is CreateUnit returning the server's warnings about
// the accepted unit (X-Fleet-Warning headers, e.g. "x.service: Unknown key
// name 'ExecStrat' in section 'Service', ignoring."); none from a fleetd
// that does not send them.
func (c *Client) CreateUnitWarnings(ctx context.Context, u *Unit) ([]string, error) {
	if u == nil || u.Name == "" {
		return nil, errors.New("unit without a name")
	}
	resp, cancel, err := c.do(ctx, request{method: http.MethodPut, path: unitPath(u.Name), body: u})
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Header.Values(WarningHeader), nil
}

// SetUnitTargetState sets the desired state of an existing unit.
func (c *Client) SetUnitTargetState(ctx context.Context, name, state string) error {
	body := Unit{Name: name, DesiredState: state}
	return c.call(ctx, request{method: http.MethodPut, path: unitPath(name), body: &body}, nil)
}

// DestroyUnit deletes a unit. A missing unit is an *APIError with code 404.
func (c *Client) DestroyUnit(ctx context.Context, name string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: unitPath(name)}, nil)
}

// UnitStates lists the states agents report, following page tokens.
func (c *Client) UnitStates(ctx context.Context) ([]UnitState, error) {
	return c.UnitStatesFiltered(ctx, "", "")
}

// UnitStatesFiltered lists unit states with fleet's exact-match filters
// (empty = no filter).
func (c *Client) UnitStatesFiltered(ctx context.Context, unitName, machineID string) ([]UnitState, error) {
	q := url.Values{}
	if unitName != "" {
		q.Set("unitName", unitName)
	}
	if machineID != "" {
		q.Set("machineID", machineID)
	}
	return listAll(ctx, c, "state", q, func(p *UnitStatePage) ([]*UnitState, string) { return p.States, p.NextPageToken })
}

// Machines lists the machines currently in the cluster.
func (c *Client) Machines(ctx context.Context) ([]Machine, error) {
	return listAll(ctx, c, "machines", nil, func(p *MachinePage) ([]*Machine, string) { return p.Machines, p.NextPageToken })
}

// PatchMachineMetadata applies metadata operations (see MetadataAdd,
// MetadataReplace, MetadataRemove) in order.
func (c *Client) PatchMachineMetadata(ctx context.Context, ops []MachineMetadataOp) error {
	if ops == nil {
		ops = []MachineMetadataOp{}
	}
	return c.call(ctx, request{method: http.MethodPatch, path: "machines", body: ops}, nil)
}

// Reasons lists why units could not be scheduled.
func (c *Client) Reasons(ctx context.Context) ([]fleet.Reason, error) {
	var p struct {
		Reasons []fleet.Reason `json:"reasons"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "reasons"}, &p); err != nil {
		return nil, err
	}
	return p.Reasons, nil
}

// Reason returns why the named unit cannot be scheduled, or (nil, nil) if
// it has no scheduling problem (or does not exist).
func (c *Client) Reason(ctx context.Context, name string) (*fleet.Reason, error) {
	var r fleet.Reason
	err := c.call(ctx, request{method: http.MethodGet, path: "reasons/" + url.PathEscape(name)}, &r)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Status returns the systemctl-status-style text of a unit on each machine
// it is on (only machineID's when set). A missing unit is an *APIError with
// code 404.
func (c *Client) Status(ctx context.Context, name, machineID string) ([]StatusEntry, error) {
	q := url.Values{}
	if machineID != "" {
		q.Set("machineID", machineID)
	}
	var p struct {
		Statuses []StatusEntry `json:"statuses"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "status/" + url.PathEscape(name), query: q}, &p); err != nil {
		return nil, err
	}
	return p.Statuses, nil
}

// Journal streams the unit's journal to w: the last lines lines, then, with
// follow, new lines until ctx ends (which is not an error). output is a
// journalctl output mode ("" = short); machineID picks one machine of a
// global unit.
func (c *Client) Journal(ctx context.Context, name string, lines int, follow bool, output, machineID string, w io.Writer) error {
	q := url.Values{}
	q.Set("lines", strconv.Itoa(lines))
	q.Set("follow", strconv.FormatBool(follow))
	if output != "" {
		q.Set("output", output)
	}
	if machineID != "" {
		q.Set("machineID", machineID)
	}
	resp, cancel, err := c.do(ctx, request{method: http.MethodGet, path: "journal/" + url.PathEscape(name), query: q, stream: true})
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if f, ok := w.(interface{ Flush() error }); ok {
				_ = f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return nil
			}
			return rerr
		}
	}
}
