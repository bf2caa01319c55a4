package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// Sampling of the block and mutex profiles while --pprof-listen is set: one blocking event
// per 10 µs spent blocked, one contention event in 5. Both cost a little on every channel
// operation and lock, so they are off unless asked for.
const (
	pprofBlockRate    = 10_000 // nanoseconds
	pprofMutexPerFrac = 5
)

// startPprof serves Go's profiles (CPU, heap, goroutines, block, mutex, and the execution
// trace under /debug/pprof/trace) on addr, on a mux of its own: not on the metrics listener,
// whose port may be reachable by more than the operator. It turns on block and mutex
// sampling and returns the bound address and a function that stops the server.
func startPprof(addr string, logger *slog.Logger) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	runtime.SetBlockProfileRate(pprofBlockRate)
	runtime.SetMutexProfileFraction(pprofMutexPerFrac)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("pprof server", "err", err)
		}
	}()
	return ln.Addr().String(), func() {
		_ = srv.Close()
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}, nil
}
