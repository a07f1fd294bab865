// Package docker registers the published ports of running Docker
// containers, registrator-style, through the Docker Engine API on a unix
// socket (plain net/http, no Docker SDK).
//
// Contract:
//  1. Run subscribes to container events, then lists the running
//     containers (GET /containers/json, then GET /containers/{id}/json for
//     each), so no start is missed between the two; start events add a
//     container, die/stop/kill/destroy/pause events remove it. When the
//     stream breaks, Run reconnects with a back-off and resyncs in full.
//  2. After every change Sink receives the complete set of endpoints.
//  3. Naming (Endpoints): every published TCP/UDP port (one with a host
//     port, not bound to a loopback address) is one endpoint. Metadata come
//     from the container's environment, overridden by its labels:
//     SERVICE_IGNORE (any non-empty value) skips the container and
//     SERVICE_<port>_IGNORE one port; the name is SERVICE_<port>_NAME,
//     else SERVICE_NAME, else the image's base name (no registry, path,
//     tag or digest); a name not taken from SERVICE_<port>_NAME gets
//     "-<port>" appended when the container publishes several ports; tags
//     are SERVICE_<port>_TAGS, else SERVICE_TAGS (comma separated). The
//     instance is the container name (without '/'), with ":udp" appended
//     to UDP ports' keys; the key's port is the container port, the value's
//     the host port.
package docker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/registry"
)

// DefaultSocket is the Docker Engine API socket.
const DefaultSocket = "/var/run/docker.sock"

// Config configures a Watcher.
type Config struct {
	// Socket is the Engine API's unix socket (DefaultSocket if empty).
	Socket string
	// Sink receives the complete set of endpoints after every change
	// (registry.SetExternal with a source name, typically).
	Sink func([]registry.Endpoint)
	// Logger (discarded if nil).
	Logger *slog.Logger
	// RequestTimeout bounds each non-streaming request (default 10 s).
	RequestTimeout time.Duration
}

// Watcher follows the containers of one Docker engine.
type Watcher struct {
	cfg Config
	log *slog.Logger
	hc  *http.Client

	mu         sync.Mutex
	containers map[string][]registry.Endpoint // by container ID
}

// New returns a Watcher; call Run.
func New(cfg Config) *Watcher {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Sink == nil {
		cfg.Sink = func([]registry.Endpoint) {}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sock := cfg.Socket
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 2,
	}
	return &Watcher{
		cfg:        cfg,
		log:        log.With("component", "registry-docker"),
		hc:         &http.Client{Transport: tr},
		containers: map[string][]registry.Endpoint{},
	}
}

// Ping reports whether the engine answers.
func (w *Watcher) Ping(ctx context.Context) error {
	if _, err := os.Stat(w.cfg.Socket); err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	resp, err := w.get(ctx, "/_ping", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Run follows the engine until ctx ends. An absent or failing engine is
// retried with a back-off (up to 30 s); Run returns only when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	backoff := time.Second
	reported := false
	for {
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if !reported {
			w.log.Info("docker engine not followed; retrying", "socket", w.cfg.Socket, "err", err)
			reported = true
		} else {
			w.log.Debug("docker engine not followed; retrying", "err", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// follow subscribes to events, resyncs, and applies events until the
// stream ends.
func (w *Watcher) follow(ctx context.Context) error {
	if _, err := os.Stat(w.cfg.Socket); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	filters, _ := json.Marshal(map[string][]string{
		"type":  {"container"},
		"event": {"start", "die", "stop", "kill", "destroy", "pause", "unpause"},
	})
	resp, err := w.get(ctx, "/events", url.Values{"filters": {string(filters)}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := w.resync(ctx); err != nil {
		return err
	}
	w.log.Info("following docker containers", "socket", w.cfg.Socket)
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("docker: events stream: %w", err)
		}
		w.apply(ctx, ev)
	}
}

type event struct {
	Type   string `json:"Type"`
	Action string `json:"Action"`
	Status string `json:"status"` // older engines
	ID     string `json:"id"`
	Actor  struct {
		ID string `json:"ID"`
	} `json:"Actor"`
}

func (w *Watcher) apply(ctx context.Context, ev event) {
	id := ev.Actor.ID
	if id == "" {
		id = ev.ID
	}
	action := ev.Action
	if action == "" {
		action = ev.Status
	}
	if id == "" || (ev.Type != "" && ev.Type != "container") {
		return
	}
	switch action {
	case "start", "unpause":
		c, err := w.inspect(ctx, id)
		if err != nil {
			w.log.Warn("inspecting container failed", "id", short(id), "err", err)
			return
		}
		w.set(id, Endpoints(c))
	case "die", "stop", "kill", "destroy", "pause":
		w.set(id, nil)
	}
}

func (w *Watcher) set(id string, eps []registry.Endpoint) {
	w.mu.Lock()
	old, had := w.containers[id]
	if len(eps) == 0 {
		delete(w.containers, id)
	} else {
		w.containers[id] = eps
	}
	changed := had != (len(eps) > 0) || !slices.EqualFunc(old, eps, endpointEqual)
	all := w.allLocked()
	w.mu.Unlock()
	if changed {
		w.cfg.Sink(all)
	}
}

func endpointEqual(a, b registry.Endpoint) bool {
	return a.Name == b.Name && a.Instance == b.Instance && a.Port == b.Port && a.HostPort == b.HostPort &&
		slices.Equal(a.Tags, b.Tags)
}

func (w *Watcher) allLocked() []registry.Endpoint {
	var all []registry.Endpoint
	for _, id := range slices.Sorted(maps.Keys(w.containers)) {
		all = append(all, w.containers[id]...)
	}
	return all
}

// resync replaces the known containers with the running ones.
func (w *Watcher) resync(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	resp, err := w.get(rctx, "/containers/json", nil)
	if err != nil {
		return err
	}
	var list []struct {
		ID string `json:"Id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("docker: decode container list: %w", err)
	}
	next := map[string][]registry.Endpoint{}
	for _, c := range list {
		ci, err := w.inspect(ctx, c.ID)
		if err != nil {
			// Gone in between: its die event follows.
			w.log.Debug("inspecting container failed", "id", short(c.ID), "err", err)
			continue
		}
		if eps := Endpoints(ci); len(eps) > 0 {
			next[c.ID] = eps
		}
	}
	w.mu.Lock()
	w.containers = next
	all := w.allLocked()
	w.mu.Unlock()
	w.cfg.Sink(all)
	return nil
}

func (w *Watcher) inspect(ctx context.Context, id string) (Container, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	resp, err := w.get(ctx, "/containers/"+url.PathEscape(id)+"/json", nil)
	if err != nil {
		return Container{}, err
	}
	defer resp.Body.Close()
	var c Container
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return Container{}, fmt.Errorf("docker: decode container %s: %w", short(id), err)
	}
	return c, nil
}

// get performs a GET; a non-2xx answer is an error with the engine's message.
func (w *Watcher) get(ctx context.Context, p string, q url.Values) (*http.Response, error) {
	u := "http://docker" + p
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker: GET %s: %w", p, err)
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("docker: GET %s: %s: %s", p, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Container is the part of GET /containers/{id}/json the registry reads.
type Container struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Config struct {
		Image  string            `json:"Image"`
		Env    []string          `json:"Env"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	State struct {
		Running bool `json:"Running"`
		Paused  bool `json:"Paused"`
	} `json:"State"`
	NetworkSettings struct {
		Ports map[string][]PortBinding `json:"Ports"`
	} `json:"NetworkSettings"`
}

// PortBinding is one host binding of a container port.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// Endpoints applies the naming rules of the package contract to a running
// container.
func Endpoints(c Container) []registry.Endpoint {
	if !c.State.Running || c.State.Paused {
		return nil
	}
	meta := map[string]string{}
	for _, kv := range c.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "SERVICE_") {
			meta[k] = v
		}
	}
	for k, v := range c.Config.Labels {
		if strings.HasPrefix(k, "SERVICE_") {
			meta[k] = v
		}
	}
	if meta["SERVICE_IGNORE"] != "" {
		return nil
	}
	type published struct {
		port, hostPort int
		proto          string
	}
	var ports []published
	seen := map[string]bool{}
	for spec, binds := range c.NetworkSettings.Ports {
		ps, proto, _ := strings.Cut(spec, "/")
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			continue
		}
		port, err := strconv.Atoi(ps)
		if err != nil || port < 1 || port > 65535 {
			continue
		}
		for _, b := range binds {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil || hp < 1 || hp > 65535 {
				continue
			}
			if ip := net.ParseIP(b.HostIP); ip != nil && ip.IsLoopback() {
				continue // not reachable on the public IP
			}
			id := ps + "/" + proto
			if seen[id] {
				continue // 0.0.0.0 and :: bindings of the same port
			}
			seen[id] = true
			ports = append(ports, published{port: port, hostPort: hp, proto: proto})
			break
		}
	}
	slices.SortFunc(ports, func(a, b published) int {
		if a.port != b.port {
			return a.port - b.port
		}
		return strings.Compare(a.proto, b.proto)
	})
	name := strings.TrimPrefix(c.Name, "/")
	var out []registry.Endpoint
	for _, p := range ports {
		ps := strconv.Itoa(p.port)
		if meta["SERVICE_"+ps+"_IGNORE"] != "" {
			continue
		}
		svc := meta["SERVICE_"+ps+"_NAME"]
		if svc == "" {
			svc = meta["SERVICE_NAME"]
			if svc == "" {
				svc = ImageBase(c.Config.Image)
			}
			if len(ports) > 1 {
				svc += "-" + ps
			}
		}
		tags := meta["SERVICE_"+ps+"_TAGS"]
		if tags == "" {
			tags = meta["SERVICE_TAGS"]
		}
		inst := name
		if p.proto == "udp" {
			inst += ":udp"
		}
		if svc == "" {
			continue
		}
		out = append(out, registry.Endpoint{
			Name: sanitize(svc), Instance: inst, Port: p.port, HostPort: p.hostPort, Tags: splitTags(tags),
		})
	}
	return out
}

// ImageBase is an image reference's base name: registry, path, tag and
// digest removed ("registry:5000/team/web:1.2" gives "web").
func ImageBase(image string) string {
	if at := strings.IndexByte(image, '@'); at >= 0 {
		image = image[:at]
	}
	base := path.Base(image)
	if colon := strings.IndexByte(base, ':'); colon >= 0 {
		base = base[:colon]
	}
	return base
}

// sanitize maps a name onto [A-Za-z0-9_.-] (others become '-').
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}

func splitTags(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
