// Package api is fleetd's HTTP API: fleet's /fleet/v1 (byte-compatible with
// the original fleetd, so the original fleetctl works against it; also
// served under the legacy /v1-alpha prefix) plus our extensions
// (docs/api-extensions.md): scheduling reasons, unit status and journals
// from the machine that runs the unit, and the fleetd-to-fleetd local
// endpoints behind them.
//
// Contract:
//  1. Every response carries "Server: fleetd/<version>". Errors are fleet's
//     envelope {"error":{"code":N,"message":"..."}} with Content-Type
//     application/json. ?alt=json (sent by fleetctl) is ignored.
//  2. Entities are fleet's wire types (Unit, UnitOption, UnitState,
//     Machine and their pages): keys in alphabetical order, every field
//     omitted when empty. An empty page is literally {}.
//  3. Routing: "/" answers 405 with an empty message, "/fleet/v1" 405,
//     any unknown path 404 with an empty message. A wrong method answers
//     405 "only GET supported against this resource" (units, state and
//     the extensions), "only GET and PATCH ..." (machines), "only GET, PUT
//     and DELETE ..." (a unit); the discovery document answers 400.
//  4. Paging (units by name, states by (name, machine ID), machines by ID):
//     the page size is Config.TokenLimit; nextPageToken is URL-safe base64
//     with padding of little-endian uint16 Limit then Page (1-based),
//     emitted whenever a page is full, so an exact multiple ends with {}.
//     Bad tokens answer 400 with fleet's messages (the base64 error,
//     "unexpected EOF"/"EOF" for a short token, "token limit must be N",
//     "token page must be greater than zero", "too many values for page
//     token").
//  5. PUT /units/{name} follows fleet's decision tree: 415 unless exactly
//     one Content-Type whose media type is application/json ("expected 1
//     Content-Type, got N" / "only acceptable Content-Type is
//     application/json"); 400 "unable to decode body: ..." (413 beyond
//     MaxBodyBytes); the body's name defaults to the URL's, else must match
//     it (400); the name is validated (400); an unknown desiredState is 400
//     (fleet stored it and broke the unit: fixed); an absent unit needs
//     options (409) that validate (400) and is created (201) with the
//     body's desired state or inactive; an existing unit whose options hash
//     differs is replaced the same way (201); otherwise a desired state is
//     required (409) and is set (204). A template may only be inactive
//     (400 `cannot activate template "x"`). Nothing is stored on any error.
//  6. A unit's currentState is "inactive" unless it is placed on a machine
//     that published a state for it; then it is that state's job state
//     ("loaded" if the agent gave none). machineID is the placement. Global
//     units have no machineID and are reported inactive.
//  7. GET /state/{name} answers the state of the first machine (by ID)
//     that has one, or 404 "unit state does not exist" (fleet panicked).
//  8. PATCH /machines takes fleet's nested wire format
//     [{"op":"add","path":"/<id>/metadata/<key>","value":{"value":"v"}}];
//     every op is validated (op, then path, then value, with fleet's
//     messages) before any is applied in order with store.SetMetadata;
//     remove sets "" (hides the key). 204 on success.
//  9. Store failures: 503 "fleet server unable to communicate with etcd"
//     when etcd cannot be reached (deadline, unavailable, no leader), 413
//     when etcd refuses the size of a write, otherwise 500 with an empty
//     message (logged).
//  10. Status and journal are answered by any fleetd: it finds the machines
//     the unit is placed on (or the one named by ?machineID=, full ID or
//     unique prefix), calls Local for itself and proxies to
//     <machine APIURL>/fleet/v1/local/... for the others. Journals are
//     streamed and flushed as bytes arrive; with several machines (global
//     units) each line is prefixed "<short machine id>: " and a machine's
//     failure becomes a line "<short id>: error: ...". Cancelling the
//     request cancels the peers' requests and Local.Journal.
//  11. kv (kv.go): GET/PUT/DELETE /fleet/v1/kv/{key...} on absolute etcd
//     keys outside fleet's prefix (403 inside it), list, recursive and
//     wait (ndjson stream) forms; a ttl puts the key on a fresh lease.
//  12. events (events.go): GET /fleet/v1/events[?since=rev] streams
//     internal/events' cluster events as ndjson (blank keep-alive lines),
//     or as server-sent events for Accept: text/event-stream / ?format=sse.
//  13. Config.Mount adds handlers (the dashboard at /ui/, /metrics) to the
//     same mux, so they share the API's middleware and Server header.
//  14. Config.Hosts (auth.go) is checked first, on TCP requests only: a
//     Host that is not a name of this fleetd (DNS rebinding) is 421 with
//     the envelope naming api_allowed_hosts.
//  15. Config.Auth (auth.go, internal/auth, docs/security.md) then checks
//     every request but GET/HEAD of Config.PublicPaths, mounts included,
//     before routing: no valid credential is 401 with the envelope and
//     "WWW-Authenticate: Bearer realm=..." (plus a Basic challenge for
//     browser GETs under /ui); an anonymous caller (auth.ViaAnonymous) on
//     any method but GET/HEAD/OPTIONS is 401 "a credential is required to
//     change the cluster: <Config.CredentialHint>" (under /ui: log in with
//     `fleetctl dashboard`); a read-only credential is 403 "permission
//     denied: read-only credential cannot <METHOD> <path>". Nothing is read
//     or stored for a refused request. Handlers get the caller's identity
//     in the request context (auth.FromContext). Requests to peers carry
//     Config.PeerToken.
//  16. POST /fleet/v1/ui-login (uilogin.go, admin only) answers
//     {"url": Config.DashboardURL + "/ui/login?code=...", "expires",
//     "sessionSeconds"}: a one-time dashboard login code of
//     Config.Sessions; 404 without a DashboardURL.
//  17. Rollouts (rollouts.go): POST /rollouts creates a rollout record
//     (internal/rollout) with the template's or global unit's new file and
//     its revision in one transaction; pause/resume/abort flip its phase by
//     compare-and-swap; undo starts one to a kept revision; GET
//     /units/{name}/history lists the kept revisions. PUT /units/{name}
//     that creates or replaces a non-instance unit records its revision
//     (best effort). The engine leader drives the records.
package api
