// Package web is fleetd's dashboard, served under /ui/ on the API's
// address: machines, units, a unit's file, state and live journal, start /
// stop / destroy buttons and a live event feed. Pages are rendered on the
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
package web
