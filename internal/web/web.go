package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/auth"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the dashboard.
type Config struct {
	// Store is the registry (required).
	Store *store.Store
	// API is the API's handler; journals are read through it (required for
	// the journal pane).
	API http.Handler
	// Authorizer decides who may read and who may act (LoopbackAuthorizer
	// if nil).
	Authorizer Authorizer
	// MachineID is this fleetd's machine (shown in the header).
	MachineID string
	// Version is shown in the footer.
	Version string
	// Logger receives errors (discarded if nil).
	Logger *slog.Logger
	// Heartbeat is the interval of keep-alive comments on event streams
	// (15 s if zero).
	Heartbeat time.Duration
	// Hosts are the host names the dashboard's own pages may be loaded
	// from: a POST's Origin (or Referer) must name one (nil: loopback
	// names and addresses only).
	Hosts *auth.HostAllowlist
	// Sessions redeems the login codes of `fleetctl dashboard` at
	// /ui/login (nil: no login page).
	Sessions *auth.Sessions
}

// Handler serves the dashboard under /ui/.
type Handler struct {
	cfg   Config
	auth  Authorizer
	log   *slog.Logger
	tmpl  *template.Template
	mux   *http.ServeMux
	hosts auth.HostAllowlist
	now   func() time.Time // the clock (tests set it)
}

// New returns the dashboard handler. Mount it at "/ui/" (and "/ui") on the
// API's mux.
func New(cfg Config) *Handler {
	h := &Handler{cfg: cfg, auth: cfg.Authorizer, log: cfg.Logger, now: time.Now}
	if h.auth == nil {
		h.auth = LoopbackAuthorizer{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.cfg.Heartbeat <= 0 {
		h.cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Hosts != nil {
		h.hosts = *cfg.Hosts
	}
	h.tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))
	static, _ := fs.Sub(staticFS, "static")

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", h.overview)
	mux.HandleFunc("GET /ui/units/{name}", h.unitPage)
	mux.HandleFunc("GET /ui/fragment/overview", h.overviewFragment)
	mux.HandleFunc("GET /ui/fragment/units/{name}", h.unitFragment)
	mux.HandleFunc("GET /ui/events", h.events)
	mux.HandleFunc("GET /ui/units/{name}/journal", h.journal)
	mux.HandleFunc("POST /ui/units/{name}/{action}", h.act)
	mux.HandleFunc("GET "+auth.LoginPath, h.login)
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	mux.HandleFunc("/ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "no such page")
	})
	h.mux = mux
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	switch {
	case isPublic(r):
		// The login page and the static files need no credential.
	case r.Method == http.MethodPost:
		if !h.auth.CanAdmin(r) {
			h.fail(w, r, http.StatusForbidden, "changing the cluster needs the admin credential: log in with `fleetctl dashboard`")
			return
		}
	case !h.auth.CanRead(r):
		h.fail(w, r, http.StatusForbidden, "reading the dashboard needs a credential")
		return
	}
	h.mux.ServeHTTP(w, r)
}

var funcs = template.FuncMap{
	"short": fleet.ShortMachineID,
	"shortHash": func(s string) string {
		if len(s) > 7 {
			return s[:7]
		}
		return s
	},
	"pathEscape": url.PathEscape,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"isoTime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"acts": func(u any, csrf, ret string) actionsData {
		var v *UnitView
		switch x := u.(type) {
		case UnitView:
			v = &x
		case *UnitView:
			v = x
		}
		return actionsData{U: v, CSRF: csrf, Return: ret}
	},
	"stateClass": func(s string) string {
		switch s {
		case "active", "launched":
			return "ok"
		case "failed":
			return "bad"
		case "activating", "deactivating", "loaded":
			return "mid"
		}
		return "off"
	},
}

// actionsData feeds the "actions" template.
type actionsData struct {
	U            *UnitView
	CSRF, Return string
}

// page is what every full page template gets.
type page struct {
	Title     string
	CSRF      string
	MachineID string
	Version   string
	Events    string // event stream URL
	Error     string
	// ReadOnly: the caller may look but not act (shown in the header).
	ReadOnly bool
	*Overview
	Unit *UnitView
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, name string, code int, data any) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("web: render", "template", name, "err", err)
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) newPage(w http.ResponseWriter, r *http.Request, title string) page {
	return page{
		Title: title, CSRF: csrfToken(w, r), MachineID: h.cfg.MachineID,
		Version: h.cfg.Version, Events: "/ui/events", ReadOnly: !h.auth.CanAdmin(r),
	}
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	h.renderOverview(w, r, "fleet", "overview.html")
}

func (h *Handler) overviewFragment(w http.ResponseWriter, r *http.Request) {
	h.renderOverview(w, r, "", "overview-live")
}

// renderOverview renders the cluster overview with template tmpl: the
// whole page or only its live fragment.
func (h *Handler) renderOverview(w http.ResponseWriter, r *http.Request, title, tmpl string) {
	p := h.newPage(w, r, title)
	ov, err := h.loadOverview(r.Context())
	if err != nil {
		h.storeFail(w, r, err)
		return
	}
	p.Overview = ov
	h.render(w, r, tmpl, http.StatusOK, p)
}

func (h *Handler) unitPage(w http.ResponseWriter, r *http.Request) {
	h.renderUnit(w, r, "unit.html", false)
}

func (h *Handler) unitFragment(w http.ResponseWriter, r *http.Request) {
	h.renderUnit(w, r, "unit-live", true)
}

// renderUnit renders the page of the unit named in the path with template
// tmpl: the whole page or (live) only its live fragment. A unit that does
// not exist is a 404, or for the fragment (destroyed while the page was
// open) a unit shown as gone.
func (h *Handler) renderUnit(w http.ResponseWriter, r *http.Request, tmpl string, live bool) {
	name := r.PathValue("name")
	p := h.newPage(w, r, name)
	u, err := h.loadUnit(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrNotFound) && live:
		u = &UnitView{Name: name, Gone: true}
	case errors.Is(err, store.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, "unit "+name+" does not exist")
		return
	case err != nil:
		h.storeFail(w, r, err)
		return
	}
	p.Unit = u
	h.render(w, r, tmpl, http.StatusOK, p)
}

// act runs start, stop or destroy (auth was checked in ServeHTTP).
func (h *Handler) act(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if msg := checkCSRF(r, h.hosts); msg != "" {
		h.log.Warn("web: refused request", "path", r.URL.Path, "remote", r.RemoteAddr, "why", msg)
		h.fail(w, r, http.StatusForbidden, msg)
		return
	}
	name, action := r.PathValue("name"), r.PathValue("action")
	ctx := r.Context()
	var err error
	switch action {
	case "start":
		if fleet.IsTemplate(name) {
			h.fail(w, r, http.StatusBadRequest, "cannot activate template "+name)
			return
		}
		err = h.cfg.Store.SetDesiredState(ctx, name, fleet.JobStateLaunched)
	case "stop":
		err = h.cfg.Store.SetDesiredState(ctx, name, fleet.JobStateLoaded)
	case "destroy":
		if _, err = h.cfg.Store.Unit(ctx, name); err == nil {
			err = h.cfg.Store.DestroyUnit(ctx, name)
		}
	default:
		h.fail(w, r, http.StatusNotFound, "unknown action "+action)
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, "unit "+name+" does not exist")
		return
	}
	if err != nil {
		h.storeFail(w, r, err)
		return
	}
	h.log.Info("web: unit action", "unit", name, "action", action, "remote", r.RemoteAddr)
	if r.Header.Get("X-Fleet-UI") != "" {
		writeJSON(w, http.StatusOK, map[string]string{"unit": name, "action": action})
		return
	}
	back := r.PostFormValue("return")
	if !strings.HasPrefix(back, "/ui/") || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\\r\n") {
		back = "/ui/units/" + url.PathEscape(name)
	}
	if action == "destroy" {
		back = "/ui/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// fail answers an error as JSON to the script, as a page otherwise.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if r.Header.Get("X-Fleet-UI") != "" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	p := page{Title: http.StatusText(code), MachineID: h.cfg.MachineID, Version: h.cfg.Version, Error: msg}
	h.render(w, r, "error.html", code, p)
}

func (h *Handler) storeFail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	h.log.Warn("web: store", "path", r.URL.Path, "err", err)
	h.fail(w, r, http.StatusServiceUnavailable, "fleet cannot read the registry right now: "+err.Error())
}
