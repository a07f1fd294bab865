package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetd/fleet/internal/auth"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
)

// DefaultTokenLimit is fleet's default page size (fleet.conf token_limit).
const DefaultTokenLimit = 100

// MaxBodyBytes bounds request bodies (PUT /units, PATCH /machines). It stays
// below etcd's default request limit (1.5 MiB) so that a unit that passes
// here can be stored.
const MaxBodyBytes = 1 << 20

// peerStatusTimeout bounds one proxied status request to a peer.
const peerStatusTimeout = 10 * time.Second

// Local is what the daemon on this machine offers the API: the status and
// the journal of units loaded here.
type Local interface {
	// MachineID is this machine's ID.
	MachineID() string
	// UnitStatus returns the systemctl-status-style text of a unit loaded
	// here, or an error wrapping runner.ErrNotLoaded.
	UnitStatus(ctx context.Context, name string) (text string, err error)
	// Journal writes the unit's formatted journal lines to w, flushing as
	// it goes when w is an http.Flusher. With follow it returns when ctx
	// ends.
	Journal(ctx context.Context, name string, lines int, follow bool, output string, w io.Writer) error
}

// StateSource reads unit states and job records: the store itself, or a
// watch-fed copy of them (store.StateView).
type StateSource interface {
	UnitStates(ctx context.Context) ([]fleet.UnitState, error)
	AllJobs(ctx context.Context) ([]store.JobRecord, error)
}

// Config configures a Server.
type Config struct {
	// Store is the registry (required).
	Store *store.Store
	// States, if set, serves GET /fleet/v1/state (a store.StateView, so
	// that clients polling it cost no etcd reads); nil reads Store.
	States StateSource
	// Local serves status and journal of this machine's units (may be nil:
	// then nothing is loaded here).
	Local Local
	// MachineID is this machine's ID (Local.MachineID() if empty).
	MachineID string
	// Version is sent as "Server: fleetd/<Version>".
	Version string
	// TokenLimit is the page size (DefaultTokenLimit if ≤ 0; at most 65535,
	// the largest a page token can carry).
	TokenLimit int
	// Logger receives internal errors (discarded if nil).
	Logger *slog.Logger
	// HTTPClient proxies status and journal requests to peers (a fresh
	// client if nil). It must not have a Timeout: journals are streamed.
	HTTPClient *http.Client
	// Mount adds handlers to the API's mux by pattern (e.g. "/ui/" for the
	// dashboard, "GET /metrics"), so that they get the API's middleware.
	Mount map[string]http.Handler
	// Auth, when set, authenticates every request (auth.go): 401 without
	// a valid credential, 403 for a read-only one on a mutating method.
	// Nil lets everybody do everything (fleet's behaviour).
	Auth *auth.Policy
	// PeerToken is sent as "Authorization: Bearer" on requests to peers
	// (status and journal); "" sends none. Client certificates for peers
	// go in HTTPClient's transport.
	PeerToken string
	// CredentialHint ends the message of a 401: how to authenticate (e.g.
	// the unix socket and the admin-token file); a generic one if empty.
	CredentialHint string
	// Hosts, when set, are the Host header values TCP requests may carry;
	// any other is answered 421 (DNS rebinding protection). Unix-socket
	// requests are not checked.
	Hosts *auth.HostAllowlist
	// PublicPaths are served to GET and HEAD without a credential (a
	// trailing "/" makes a prefix): the dashboard's login page and its
	// static files.
	PublicPaths []string
	// Sessions issues dashboard login codes (POST /fleet/v1/ui-login);
	// nil: no login.
	Sessions *auth.Sessions
	// DashboardURL is this fleetd's advertised TCP API URL, the base of
	// the login URLs ("" : no login).
	DashboardURL string
	// NoSpace explains, in one line, why etcd refuses writes for lack of
	// space (etcdserver.ExplainNoSpace: which machine's disk, how full);
	// the answer of a write etcd refused so is 507 with that message.
	// Nil: a generic message.
	NoSpace func(ctx context.Context) string
}

// Server is fleetd's HTTP API: the fleet-compatible /fleet/v1 (and its
// /v1-alpha alias) plus our extensions.
type Server struct {
	store      *store.Store
	states     StateSource
	local      Local
	machineID  string
	version    string
	tokenLimit int
	log        *slog.Logger
	client     *http.Client
	metadataRe *regexp.Regexp
	handler    http.Handler
	mount      map[string]http.Handler
	auth       *auth.Policy
	peerToken  string
	hint       string
	hosts      *auth.HostAllowlist
	public     []string
	sessions   *auth.Sessions
	noSpace    func(ctx context.Context) string
	// dashboardURL has no trailing slash.
	dashboardURL string
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		store:      cfg.Store,
		states:     cfg.States,
		local:      cfg.Local,
		machineID:  cfg.MachineID,
		version:    cfg.Version,
		tokenLimit: cfg.TokenLimit,
		log:        cfg.Logger,
		client:     cfg.HTTPClient,
		metadataRe: regexp.MustCompile(metadataPath),
		mount:      cfg.Mount,
		auth:       cfg.Auth,
		peerToken:  cfg.PeerToken,
		hint:       cfg.CredentialHint,
		hosts:      cfg.Hosts,
		public:     cfg.PublicPaths,
		sessions:   cfg.Sessions,
		noSpace:    cfg.NoSpace,

		dashboardURL: strings.TrimRight(cfg.DashboardURL, "/"),
	}
	if s.machineID == "" && s.local != nil {
		s.machineID = s.local.MachineID()
	}
	if s.tokenLimit <= 0 {
		s.tokenLimit = DefaultTokenLimit
	}
	if s.tokenLimit > 0xffff {
		s.tokenLimit = 0xffff
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = &http.Client{}
	}
	s.handler = s.routes()
	return s
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/fleet/v1", "/v1-alpha"} {
		s.register(mux, p)
	}
	for pattern, h := range s.mount {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "")
	})
	server := "fleetd/" + s.version
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", server)
		if !s.checkHost(w, r) {
			return
		}
		in := r
		if !s.isPublic(r) {
			var ok bool
			if r, ok = s.authorize(w, r); !ok {
				return
			}
		}
		mux.ServeHTTP(w, r)
		// The mux records the matched pattern on the request it got (a
		// copy with the caller's identity); outer middleware (metrics)
		// reads it from theirs.
		in.Pattern = r.Pattern
	})
}

const (
	msgOnlyGet         = "only GET supported against this resource"
	msgOnlyPost        = "only POST supported against this resource"
	msgOnlyGetPatch    = "only GET and PATCH supported against this resource"
	msgOnlyGetPutDel   = "only GET, PUT and DELETE supported against this resource"
	msgUnitNotFound    = "unit does not exist"
	msgStateNotFound   = "unit state does not exist"
	msgNoProblem       = "unit has no scheduling problem"
	msgNotLoadedHere   = "unit not loaded on this machine"
	msgEtcdUnavailable = "fleet server unable to communicate with etcd"
)

// register installs every resource under prefix p. Method-specific patterns
// take precedence over the method-less ones, which answer fleet's 405s.
func (s *Server) register(mux *http.ServeMux, p string) {
	notAllowed := func(msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusMethodNotAllowed, msg)
		}
	}
	// getOnly installs a read-only resource: GET, and 405 for the rest.
	getOnly := func(path string, h http.HandlerFunc) {
		mux.HandleFunc("GET "+p+path, h)
		mux.HandleFunc(p+path, notAllowed(msgOnlyGet))
	}
	mux.HandleFunc(p, notAllowed(""))
	mux.HandleFunc("GET "+p+"/discovery", s.discovery)
	mux.HandleFunc(p+"/discovery", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusBadRequest, msgOnlyGet)
	})

	getOnly("/units", s.listUnits)
	mux.HandleFunc("GET "+p+"/units/{name}", s.getUnit)
	mux.HandleFunc("PUT "+p+"/units/{name}", s.putUnit)
	mux.HandleFunc("DELETE "+p+"/units/{name}", s.deleteUnit)
	mux.HandleFunc(p+"/units/{name}", notAllowed(msgOnlyGetPutDel))

	getOnly("/state", s.listStates)
	getOnly("/state/{name}", s.getState)

	mux.HandleFunc("GET "+p+"/machines", s.listMachines)
	mux.HandleFunc("PATCH "+p+"/machines", s.patchMachines)
	mux.HandleFunc(p+"/machines", notAllowed(msgOnlyGetPatch))
	mux.HandleFunc("PUT "+p+"/machines/{id}/drain", s.drainMachine)
	mux.HandleFunc("DELETE "+p+"/machines/{id}/drain", s.drainMachine)

	// Extensions (docs/api-extensions.md).
	getOnly("/reasons", s.listReasons)
	getOnly("/reasons/{name}", s.getReason)
	getOnly("/status/{name}", s.status)
	getOnly("/journal/{name}", s.journal)
	getOnly("/local/status/{name}", s.localStatus)
	getOnly("/local/journal/{name}", s.localJournal)
	s.registerKV(mux, p)
	getOnly("/events", s.events)
	s.registerRollouts(mux, p)
	s.registerTimers(mux, p)
	s.registerJobs(mux, p)
	mux.HandleFunc("POST "+p+"/ui-login", s.uiLogin)
	mux.HandleFunc(p+"/ui-login", notAllowed(msgOnlyPost))
}

// errorBody is fleet's error envelope.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// writeError sends fleet's error envelope.
func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(errorBody{Error: errorDetail{Code: code, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

// writeJSON sends v (nil: no body) with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if v == nil {
		w.WriteHeader(code)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "")
		return
	}
	w.WriteHeader(code)
	w.Write(b)
}

// storeError answers a failed store call: 503 when etcd cannot be reached,
// 413 when etcd refuses the size of a write, 507 when it refuses writes for
// lack of space (a member's disk is nearly full, or its database reached
// its quota), 500 with an empty message otherwise (logged).
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		s.log.Debug("api: request canceled", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, msgEtcdUnavailable)
	case isTooLarge(err):
		writeError(w, http.StatusRequestEntityTooLarge, "request too large for the registry")
	case isNoSpace(err):
		msg := msgNoSpace
		if s.noSpace != nil {
			ctx, cancel := context.WithTimeout(r.Context(), noSpaceExplainTimeout)
			msg = s.noSpace(ctx)
			cancel()
		}
		s.log.Warn("api: etcd refuses writes for lack of space", "method", r.Method, "path", r.URL.Path, "why", msg)
		writeError(w, http.StatusInsufficientStorage, msg)
	case isUnavailable(err):
		s.log.Warn("api: etcd unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, msgEtcdUnavailable)
	default:
		s.log.Error("api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "")
	}
}

// msgNoSpace is the 507 message without Config.NoSpace.
const msgNoSpace = "etcd refuses writes: database space exceeded (the disk of an etcd member is nearly full, " +
	"or etcd's database reached its size quota); free space and writes resume"

// noSpaceExplainTimeout bounds Config.NoSpace.
const noSpaceExplainTimeout = 3 * time.Second

// isNoSpace reports whether etcd refused a write for lack of space
// ("etcdserver: mvcc: database space exceeded"): a NOSPACE alarm is up.
func isNoSpace(err error) bool {
	if errors.Is(err, rpctypes.ErrNoSpace) || errors.Is(err, rpctypes.ErrGRPCNoSpace) {
		return true
	}
	var st interface{ GRPCStatus() *status.Status }
	if errors.As(err, &st) {
		gs := st.GRPCStatus()
		return gs.Code() == codes.ResourceExhausted && gs.Message() == rpctypes.ErrorDesc(rpctypes.ErrGRPCNoSpace)
	}
	return false
}

func isTooLarge(err error) bool {
	return errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrGRPCRequestTooLarge)
}

// isUnavailable reports whether err means that etcd could not be reached
// (deadline, no leader, connection down or closing).
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTimeout) ||
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) || errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost) ||
		errors.Is(err, rpctypes.ErrLeaderChanged) {
		return true
	}
	var coder interface{ Code() codes.Code }
	if errors.As(err, &coder) {
		switch coder.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			return true
		}
	}
	var st interface{ GRPCStatus() *status.Status }
	if errors.As(err, &st) {
		switch st.GRPCStatus().Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			return true
		}
	}
	return false
}
