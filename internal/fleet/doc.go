// Package fleet holds the domain types shared by every other package:
// units, their options and job states, machines, unit states reported by
// agents, scheduling requirements and the reasons a unit cannot be placed.
//
// Contract:
//  1. This package imports only the standard library and performs no I/O:
//     no etcd, no network, no os/exec, no time.Now, no math/rand.
//  2. Types are plain values; methods are pure helpers.
//  3. JSON tags here are our own storage/wire format; the fleet-compatible
//     /fleet/v1 wire entities live in internal/api.
package fleet
