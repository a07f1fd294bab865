package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
)

// UnitStatus is the status of a unit on one machine: Text on success, Error
// when the machine could not tell.
type UnitStatus struct {
	MachineID string `json:"machineID"`
	Text      string `json:"text,omitempty"`
	Error     string `json:"error,omitempty"`
}

// UnitStatusList is the answer of GET /status/{name}.
type UnitStatusList struct {
	Statuses []UnitStatus `json:"statuses,omitempty"`
}

// journalOutputs are the accepted journal formats (journalctl's names).
const journalOutputs = "short, short-iso, short-precise, cat or json"

type journalParams struct {
	lines  int
	follow bool
	output string
}

func (p journalParams) query() url.Values {
	return url.Values{
		"lines":  {strconv.Itoa(p.lines)},
		"follow": {strconv.FormatBool(p.follow)},
		"output": {p.output},
	}
}

func parseJournalParams(q url.Values) (journalParams, error) {
	p := journalParams{lines: 10, output: "short"}
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, fmt.Errorf("invalid lines %q: expect a non-negative integer", v)
		}
		p.lines = n
	}
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return p, fmt.Errorf("invalid follow %q: expect true or false", v)
		}
		p.follow = b
	}
	if v := q.Get("output"); v != "" {
		switch v {
		case "short", "short-iso", "short-precise", "cat", "json":
			p.output = v
		default:
			return p, fmt.Errorf("invalid output %q: expect %s", v, journalOutputs)
		}
	}
	return p, nil
}

// target is one machine a status or journal request goes to.
type target struct {
	id     string
	apiURL string
	live   bool
}

// targets resolves where a unit's status/journal lives: every machine it is
// placed on (one for a normal unit, several for a global unit), or the one
// named by ?machineID= (full ID or a unique prefix; it need not hold a
// placement, e.g. to read the journal of a unit that moved away). multi
// says whether output must name the machine. On failure it has answered.
func (s *Server) targets(w http.ResponseWriter, r *http.Request, name string) (ts []target, multi, ok bool) {
	ctx := r.Context()
	u, err := s.store.Unit(ctx, name)
	if s.unitError(w, r, err) {
		return nil, false, false
	}
	placements, err := s.store.Placements(ctx, name)
	if err != nil {
		s.storeError(w, r, err)
		return nil, false, false
	}
	machines, err := s.store.Machines(ctx)
	if err != nil {
		s.storeError(w, r, err)
		return nil, false, false
	}
	live := make(map[string]fleet.Machine, len(machines))
	for _, m := range machines {
		live[m.ID] = m
	}
	ids := append([]string(nil), placements...)
	sort.Strings(ids)
	if want := r.URL.Query().Get("machineID"); want != "" {
		id, found := resolveMachine(want, ids, machines)
		if !found {
			writeError(w, http.StatusNotFound, fmt.Sprintf("machine %q does not exist", want))
			return nil, false, false
		}
		ids = []string{id}
	} else {
		multi = len(ids) > 1 || isGlobal(u)
	}
	for _, id := range ids {
		m, isLive := live[id]
		ts = append(ts, target{id: id, apiURL: m.APIURL, live: isLive})
	}
	return ts, multi, true
}

// resolveMachine finds want among the placements, then the live machines:
// an exact ID, or a prefix matching exactly one.
func resolveMachine(want string, placements []string, machines []fleet.Machine) (string, bool) {
	ids := append([]string(nil), placements...)
	for _, m := range machines {
		ids = append(ids, m.ID)
	}
	var match string
	n := 0
	seen := make(map[string]bool)
	for _, id := range ids {
		if id == want {
			return id, true
		}
		if strings.HasPrefix(id, want) && !seen[id] {
			seen[id] = true
			match = id
			n++
		}
	}
	return match, n == 1
}

// peerURL is the URL of a local endpoint on a peer.
func peerURL(apiURL, kind, name string, q url.Values) string {
	u := strings.TrimRight(apiURL, "/") + "/fleet/v1/local/" + kind + "/" + url.PathEscape(name)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// errorMessage extracts the message of an error envelope (or the status).
func errorMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e errorBody
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return fmt.Sprintf("machine answered %s", resp.Status)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ts, _, ok := s.targets(w, r, name)
	if !ok {
		return
	}
	list := UnitStatusList{Statuses: make([]UnitStatus, len(ts))}
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			list.Statuses[i] = s.machineStatus(r.Context(), t, name)
		}()
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, list)
}

// machineStatus asks one machine for the unit's status: this machine
// directly, a peer through its local endpoint.
func (s *Server) machineStatus(ctx context.Context, t target, name string) UnitStatus {
	st := UnitStatus{MachineID: t.id}
	if t.id == s.machineID {
		text, err := s.localUnitStatus(ctx, name)
		switch {
		case errors.Is(err, runner.ErrNotLoaded):
			st.Error = msgNotLoadedHere
		case err != nil:
			st.Error = err.Error()
		default:
			st.Text = text
		}
		return st
	}
	if !t.live {
		st.Error = "machine is not in the cluster"
		return st
	}
	if t.apiURL == "" {
		st.Error = "machine does not publish an API URL"
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, peerStatusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL(t.apiURL, "status", name, nil), nil)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	s.authorizePeer(req)
	resp, err := s.client.Do(req)
	if err != nil {
		st.Error = fmt.Sprintf("machine unreachable: %v", err)
		return st
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		st.Error = errorMessage(resp)
		return st
	}
	var got UnitStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxBodyBytes)).Decode(&got); err != nil {
		st.Error = fmt.Sprintf("bad answer from machine: %v", err)
		return st
	}
	st.Text, st.Error = got.Text, got.Error
	return st
}

func (s *Server) localUnitStatus(ctx context.Context, name string) (string, error) {
	if s.local == nil {
		return "", fmt.Errorf("no local runner: %w", runner.ErrNotLoaded)
	}
	return s.local.UnitStatus(ctx, name)
}

func (s *Server) localStatus(w http.ResponseWriter, r *http.Request) {
	text, err := s.localUnitStatus(r.Context(), r.PathValue("name"))
	switch {
	case errors.Is(err, runner.ErrNotLoaded):
		writeError(w, http.StatusNotFound, msgNotLoadedHere)
	case err != nil:
		s.log.Error("api: local status", "unit", r.PathValue("name"), "err", err)
		writeError(w, http.StatusInternalServerError, "")
	default:
		writeJSON(w, http.StatusOK, UnitStatus{MachineID: s.machineID, Text: text})
	}
}

// streamWriter writes a text/plain response, committing the 200 on the
// first write (so that an error before any output can still be answered
// with the error envelope) and flushing after every write. It is safe for
// concurrent use.
type streamWriter struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	rc        *http.ResponseController
	committed bool
}

func newStreamWriter(w http.ResponseWriter) *streamWriter {
	return &streamWriter{w: w, rc: http.NewResponseController(w)}
}

func (sw *streamWriter) commitLocked() {
	if sw.committed {
		return
	}
	sw.committed = true
	sw.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	sw.w.Header().Set("X-Content-Type-Options", "nosniff")
	sw.w.WriteHeader(http.StatusOK)
}

// commit sends the 200 and flushes it, so that followers see the stream
// start before the first line.
func (sw *streamWriter) commit() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.commitLocked()
	sw.rc.Flush()
}

func (sw *streamWriter) isCommitted() bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.committed
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.commitLocked()
	n, err := sw.w.Write(p)
	if err == nil {
		sw.rc.Flush()
	}
	return n, err
}

// Flush implements http.Flusher for Local.Journal.
func (sw *streamWriter) Flush() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.commitLocked()
	sw.rc.Flush()
}

func (s *Server) localJournal(w http.ResponseWriter, r *http.Request) {
	p, err := parseJournalParams(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.serveLocalJournal(w, r, r.PathValue("name"), p)
}

// serveLocalJournal streams this machine's journal of the unit. In follow
// mode the 200 is sent at once; otherwise only with the first line, so that
// a unit not loaded here can still get its 404.
func (s *Server) serveLocalJournal(w http.ResponseWriter, r *http.Request, name string, p journalParams) {
	if s.local == nil {
		writeError(w, http.StatusNotFound, msgNotLoadedHere)
		return
	}
	sw := newStreamWriter(w)
	if p.follow {
		_ = sw.rc.SetWriteDeadline(time.Time{})
		sw.commit()
	}
	err := s.local.Journal(r.Context(), name, p.lines, p.follow, p.output, sw)
	switch {
	case err == nil || r.Context().Err() != nil:
		sw.commit()
	case sw.isCommitted():
		s.log.Warn("api: journal ended with an error", "unit", name, "err", err)
	case errors.Is(err, runner.ErrNotLoaded):
		writeError(w, http.StatusNotFound, msgNotLoadedHere)
	default:
		s.log.Error("api: journal", "unit", name, "err", err)
		writeError(w, http.StatusInternalServerError, "")
	}
}

func (s *Server) journal(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p, err := parseJournalParams(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ts, multi, ok := s.targets(w, r, name)
	if !ok {
		return
	}
	if len(ts) == 1 && !multi {
		t := ts[0]
		if t.id == s.machineID {
			s.serveLocalJournal(w, r, name, p)
			return
		}
		s.proxyJournal(w, r, t, name, p)
		return
	}
	// Several machines (or a global unit): one text stream, each line
	// prefixed with the short machine ID; errors become lines too.
	sw := newStreamWriter(w)
	if p.follow {
		_ = sw.rc.SetWriteDeadline(time.Time{})
	}
	sw.commit()
	copyOne := func(t target) {
		prefix := fleet.ShortMachineID(t.id) + ": "
		rc, err := s.openJournal(r.Context(), t, name, p)
		if err == nil {
			err = copyLines(sw, rc, prefix)
			rc.Close()
		}
		if err != nil && r.Context().Err() == nil {
			fmt.Fprintf(sw, "%serror: %v\n", prefix, err)
		}
	}
	if !p.follow {
		for _, t := range ts {
			copyOne(t)
		}
		return
	}
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			copyOne(t)
		}()
	}
	wg.Wait()
}

// proxyJournal streams a peer's journal of the unit through, chunk by
// chunk, flushing each; the peer's error answers are passed on.
func (s *Server) proxyJournal(w http.ResponseWriter, r *http.Request, t target, name string, p journalParams) {
	if !t.live || t.apiURL == "" {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("machine %s is not reachable", t.id))
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, peerURL(t.apiURL, "journal", name, p.query()), nil)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	s.authorizePeer(req)
	resp, err := s.client.Do(req)
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("machine %s is not reachable: %v", t.id, err))
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		writeError(w, resp.StatusCode, errorMessage(resp))
		return
	}
	sw := newStreamWriter(w)
	if p.follow {
		_ = sw.rc.SetWriteDeadline(time.Time{})
	}
	sw.commit()
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := sw.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF && r.Context().Err() == nil {
				s.log.Warn("api: proxied journal ended with an error", "unit", name, "machine", t.id, "err", err)
			}
			return
		}
	}
}

// openJournal opens the journal stream of the unit on one machine.
func (s *Server) openJournal(ctx context.Context, t target, name string, p journalParams) (io.ReadCloser, error) {
	if t.id == s.machineID {
		if s.local == nil {
			return nil, errors.New(msgNotLoadedHere)
		}
		pr, pw := io.Pipe()
		go func() {
			err := s.local.Journal(ctx, name, p.lines, p.follow, p.output, pw)
			if errors.Is(err, runner.ErrNotLoaded) {
				err = errors.New(msgNotLoadedHere)
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
	if !t.live {
		return nil, errors.New("machine is not in the cluster")
	}
	if t.apiURL == "" {
		return nil, errors.New("machine does not publish an API URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL(t.apiURL, "journal", name, p.query()), nil)
	if err != nil {
		return nil, err
	}
	s.authorizePeer(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("machine unreachable: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, errors.New(errorMessage(resp))
	}
	return resp.Body, nil
}

// copyLines copies src to dst line by line, each line prefixed and written
// (and flushed) whole, so that concurrent streams do not interleave within
// a line.
func copyLines(dst io.Writer, src io.Reader, prefix string) error {
	br := bufio.NewReader(src)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			if _, werr := io.WriteString(dst, prefix+line); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
