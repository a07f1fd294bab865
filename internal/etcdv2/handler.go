package etcdv2

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// DefaultFleetPrefix is fleet's own key space, read-only through v2.
const DefaultFleetPrefix = "/_coreos.com/fleet/"

// MaxBodyBytes bounds a request body; a larger one gets 413.
const MaxBodyBytes = 1 << 20

// Member is one member as /v2/members shows it.
type Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// Config configures the handler.
type Config struct {
	// KV is the etcd v3 seam the keys live in (required).
	KV *etcdkv.Client
	// FleetPrefix is fleet's key space, read-only here
	// (DefaultFleetPrefix if "").
	FleetPrefix string
	// ClientURLs are the URLs the handler is served on: /v2/members and
	// /v2/machines name them as the members' clientURLs (etcdctl and
	// go-etcd sync their endpoints from there) when Members is nil.
	ClientURLs []string
	// Members lists the members for /v2/members, /v2/machines and the
	// stats; nil: KV's members with ClientURLs as their client URLs.
	Members func(ctx context.Context) ([]Member, error)
	// Auth says whether the request may read (ok) and write (canWrite).
	// nil allows everything. See TokenAuth for fleet's rule.
	Auth func(r *http.Request) (canWrite, ok bool)
	// Logger gets internal errors (nil: discarded).
	Logger *slog.Logger
	// Version is the etcd version /version reports ("3.4.23" if "").
	Version string
}

// Token extracts the credential of r: the password of HTTP basic auth
// (etcdctl --username fleet:TOKEN) or a bearer token. ok is false when r
// carries neither.
func Token(r *http.Request) (token string, ok bool) {
	h := r.Header.Get("Authorization")
	if v, found := strings.CutPrefix(h, "Bearer "); found {
		v = strings.TrimSpace(v)
		return v, v != ""
	}
	if v, found := strings.CutPrefix(h, "Basic "); found {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			return "", false
		}
		_, pw, _ := strings.Cut(string(b), ":")
		return pw, pw != ""
	}
	return "", false
}

// IsLoopback reports whether r comes from a loopback address.
func IsLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TokenAuth is fleet's rule as an Auth hook: a request with a token that
// check accepts may read and write; an anonymous request from loopback may
// read; anything else (a wrong token, an anonymous remote caller) may not.
func TokenAuth(check func(token string) bool) func(r *http.Request) (canWrite, ok bool) {
	return func(r *http.Request) (bool, bool) {
		if tok, has := Token(r); has {
			good := check(tok)
			return good, good
		}
		return false, IsLoopback(r)
	}
}

type handler struct {
	cfg   Config
	kv    *etcdkv.Client
	fp    string // fleet prefix without its trailing slash
	log   *slog.Logger
	start time.Time

	mu       sync.Mutex
	raftAt   time.Time
	raftIdx  uint64
	raftTerm uint64
}

// New returns the etcd v2 API (keys, members, machines, stats, health,
// version) served on cfg.KV.
func New(cfg Config) http.Handler {
	if cfg.FleetPrefix == "" {
		cfg.FleetPrefix = DefaultFleetPrefix
	}
	if cfg.Version == "" {
		cfg.Version = "3.4.23"
	}
	h := &handler{cfg: cfg, kv: cfg.KV, fp: "/" + strings.Trim(cfg.FleetPrefix, "/"), log: cfg.Logger, start: time.Now()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	canWrite, ok := true, true
	if h.cfg.Auth != nil {
		canWrite, ok = h.cfg.Auth(r)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="etcd"`)
		newError(EcodeUnauthorized, "Insufficient credentials", 0).writeTo(w)
		return
	}
	switch {
	case p == "/v2/keys" || strings.HasPrefix(p, "/v2/keys/"):
		h.serveKeys(w, r, canWrite)
	case p == "/v2/members" || p == "/v2/members/":
		h.serveMembers(w, r)
	case p == "/v2/members/leader":
		h.serveMembersLeader(w, r)
	case p == "/v2/leader":
		h.serveLeader(w, r)
	case p == "/v2/machines":
		h.serveMachines(w, r)
	case p == "/version":
		h.serveVersion(w, r)
	case p == "/health":
		h.serveHealth(w, r)
	case p == "/v2/stats/self":
		h.serveStatsSelf(w, r)
	case p == "/v2/stats/leader":
		h.serveStatsLeader(w, r)
	case p == "/v2/stats/store":
		h.serveStatsStore(w, r)
	default:
		http.NotFound(w, r)
	}
}

// raft returns the raft index and term, asked of etcd at most every
// 500 ms.
func (h *handler) raft(ctx context.Context) (uint64, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.raftAt) < 500*time.Millisecond {
		return h.raftIdx, h.raftTerm
	}
	idx, term, err := h.kv.RaftStatus(ctx)
	if err == nil {
		h.raftIdx, h.raftTerm, h.raftAt = idx, term, time.Now()
	}
	return h.raftIdx, h.raftTerm
}

func (h *handler) setIndexHeaders(w http.ResponseWriter, r *http.Request, etcdIndex int64) {
	idx, term := h.raft(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Etcd-Index", strconv.FormatInt(etcdIndex, 10))
	w.Header().Set("X-Raft-Index", strconv.FormatUint(idx, 10))
	w.Header().Set("X-Raft-Term", strconv.FormatUint(term, 10))
}

// internal turns an etcd failure into etcd v2's 300 error.
func (h *handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if errors.As(err, &e) {
		e.writeTo(w)
		return
	}
	h.log.Warn("etcd v2 API: etcd failed", "method", r.Method, "path", r.URL.Path, "err", err)
	newError(EcodeRaftInternal, err.Error(), 0).writeTo(w)
}
