// Package web is fleetd's dashboard, served under /ui/ on the API's
// address: machines, units, rolling updates, a unit's file, state and live
// journal, start / stop / destroy buttons and a live event feed. Pages are rendered on the
// server with html/template; CSS and a small hand-written script are
// embedded (no build step). The script keeps pages current over two
// server-sent event streams (cluster events, a unit's journal) and
// re-fetches server-rendered fragments; without it every page still works
// and the buttons still post.
//
// Contract:
//  1. Routes (all under /ui/): GET / (overview), GET /units/{name},
//     GET /fragment/overview and /fragment/units/{name} (the live parts of
//     the two pages), GET /events (text/event-stream of fleet.Event,
//     "fleet" events, id = revision, Last-Event-ID resumes), GET
//     /units/{name}/journal (text/event-stream: "reset", then one "line"
//     per journal line; "status" when the journal is not available yet),
//     GET /static/..., POST /units/{name}/{start|stop|destroy}, GET
//     /login?code=... (login.go).
//  2. Reading needs Authorizer.CanRead, posting Authorizer.CanAdmin (403
//     otherwise); /login and /static/ need neither. The default authorizer
//     lets everyone read and lets only loopback (and unix-socket) callers
//     post; fleetd's (internal/auth) makes a valid session cookie admin.
//     Pages a caller may not act on show how to log in.
//  3. Every POST must carry the CSRF token (form field "csrf" or header
//     X-CSRF-Token) equal to the "fleet_csrf" cookie (random, HttpOnly,
//     SameSite=Strict, Path=/ui/), and its Origin (else Referer) must name
//     a host of Config.Hosts (never compared with the request's own Host)
//     with the request's scheme and its Host's port; Sec-Fetch-Site, when
//     sent, must be same-origin. Any failure is 403 and changes nothing.
//  4. Mutations are the store operations the API uses: start =
//     SetDesiredState(launched), stop = SetDesiredState(loaded), destroy =
//     DestroyUnit. A template cannot be started (400); a missing unit
//     answers 404. With header X-Fleet-UI the answer is JSON; otherwise 303
//     to the page the form came from.
//  5. Journals are read through the API handler (GET
//     /fleet/v1/journal/{name}?follow=true) with the caller's headers, so
//     they come from whichever machine runs the unit, under the API's own
//     middleware.
//  6. Pages send a strict Content-Security-Policy (no inline script or
//     style), X-Frame-Options DENY and Referrer-Policy same-origin.
//  7. GET /ui/login?code=X redeems a code of Config.Sessions (from POST
//     /fleet/v1/ui-login) once: it sets the "fleet_session" cookie
//     (HttpOnly, SameSite=Strict, Path=/, Secure over TLS, 12 h) and
//     redirects to /ui/; a used, expired or unknown code is a 403 page
//     that says to run `fleetctl dashboard` again.
//  8. Rollouts (store.Rollouts, rollouts/<unit>). The overview's live
//     fragment starts with a "Rollouts" section, present only when there
//     is something to list: every record whose phase is not terminal, then
//     those that ended (Updated) within RecentRollout (10 min), by unit;
//     each shows the unit, "revision N <hash7> → M <hash7>", the phase, a
//     <progress value=updated max=targets> bar (coloured by class: no
//     inline style under the CSP), rollout.Progress and, when failed,
//     reverting or reverted, the failure reason. A record that cannot be
//     read costs the section (an error line), not the page. A unit's page
//     (and fragment) shows the latest record of store.RevisionOwner(name)
//     (the template for an instance), whatever its age, the same way: a
//     template's or plain unit's page lists every target with its status
//     and message; an instance's page says where that instance is.
//  9. The script re-fetches the live fragment on every cluster event,
//     whatever its type (unit.*, machine.*, rollout-*, batch-healthy),
//     every 15 s, and every 3 s while the fragment shows a rollout that
//     is not over (data-active): a target's progress within a batch has no
//     event of its own. An instance's page (body data-owner = its
//     template) also lists its template's rollout events in its feed.
package web
