// Package client is the Go client of fleetd's HTTP API: fleet's /fleet/v1
// wire protocol (units, unit states, machines) plus fleetd's extensions
// (scheduling reasons, unit status, journals, kv).
//
// Contract:
//  1. The wire entities (Unit, UnitOption, UnitState, Machine) carry fleet's
//     JSON names; every request carries ?alt=json like fleet's generated
//     Google API client, and list calls follow nextPageToken to the end.
//  2. Endpoints are http://, https:// or unix:///path (file:// too); a comma
//     separated list uses the first one. unix://var/run/x (host instead of
//     path) is an error, as in fleet.
//  3. A non-2xx answer becomes an *APIError decoded from fleet's error
//     envelope {"error":{"code":N,"message":"..."}}. Unit, Reason return
//     (nil, nil) on 404.
//  4. Options.RequestTimeout bounds each non-streaming request; Journal is
//     never bounded except by its context.
//  5. A Client is safe for concurrent use and holds no package state.
package client
