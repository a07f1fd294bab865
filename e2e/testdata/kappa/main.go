// Command kappa is seed 004's tiny HTTP server: it answers every request
// with its instance name. Built by e2e/services_test.go.
//
// GET / takes -delay to answer. GET /health answers 200 "ok", or 503 while the file named by
// -health-file exists (tests make an instance unhealthy without stopping
// it). Like seed 004's python -m SimpleHTTPServer, it dies at once on
// SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", ":8001", "address to listen on")
	name := flag.String("name", "kappa", "name to answer with")
	healthFile := flag.String("health-file", "", "while this file exists, GET /health answers 503")
	delay := flag.Duration("delay", 0, "time each answer takes (so that requests are in flight when it dies)")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(*delay)
		fmt.Fprintln(w, *name)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if *healthFile != "" {
			if _, err := os.Stat(*healthFile); err == nil {
				http.Error(w, "unhealthy: "+*healthFile+" exists", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	log.Printf("%s listening on %s", *name, *listen)
	log.Fatal(http.ListenAndServe(*listen, mux))
}
