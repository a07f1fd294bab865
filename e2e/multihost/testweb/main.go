// Command testweb is the small web server the multi-host tests run in a
// Docker image built FROM scratch (no registry needed): it answers every
// request with its hostname and logs each request to stdout, so that
// fleetctl journal shows it. It exits at once on SIGTERM (docker stop).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	host, _ := os.Hostname()
	log.SetFlags(0)
	log.SetOutput(os.Stdout)
	srv := &http.Server{
		Addr:              *addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Printf("%s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
			fmt.Fprintf(w, "hello from %s\n", host)
		}),
	}
	go func() {
		<-ctx.Done()
		log.Printf("%s: stopping", host)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("%s: listening on %s", host, *addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
