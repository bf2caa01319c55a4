// Package promexport serves Prometheus metrics of a Strata process over HTTP (GET
// /metrics), beside its health probes (GET /healthz and /readyz, internal/health): the body cache's hits, misses and size, and the S3 store's calls, errors,
// bytes and latency, read from their counters at each scrape; the Go runtime's and the
// process's; and those of the process's other parts given to Listen (the IMAP engine's,
// a metadata node's). docs/metrics.md lists them. Each endpoint has its own registry, so
// several can run in one process.
package promexport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/cache"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/internal/health"
)

var (
	cacheHits      = prometheus.NewDesc("strata_blob_cache_hits_total", "Body cache reads answered from memory.", nil, nil)
	cacheMisses    = prometheus.NewDesc("strata_blob_cache_misses_total", "Body cache reads passed to the store.", nil, nil)
	cacheEvictions = prometheus.NewDesc("strata_blob_cache_evictions_total", "Body cache entries evicted to stay within the size bound.", nil, nil)
	cacheEntries   = prometheus.NewDesc("strata_blob_cache_entries", "Bodies and ranges held by the body cache.", nil, nil)
	cacheBytes     = prometheus.NewDesc("strata_blob_cache_bytes", "Bytes held by the body cache.", nil, nil)
	s3Calls        = prometheus.NewDesc("strata_s3_requests_total", "S3 calls by operation.", []string{"op"}, nil)
	s3Errors       = prometheus.NewDesc("strata_s3_request_errors_total", "Failed S3 calls by operation.", []string{"op"}, nil)
	s3Bytes        = prometheus.NewDesc("strata_s3_bytes_total", "Body bytes sent (put) or received (get).", []string{"op"}, nil)
	s3Seconds      = prometheus.NewDesc("strata_s3_request_seconds_total", "Summed wall time of S3 calls by operation.", []string{"op"}, nil)
	s3DedupHits    = prometheus.NewDesc("strata_s3_dedup_hits_total", "Puts that found their body already stored.", nil, nil)
	s3Corrupt      = prometheus.NewDesc("strata_s3_corrupt_total", "Whole-body reads whose bytes did not match their key.", nil, nil)
)

// blobCollector reads the counters of a body cache and an S3 store, either of which may
// be absent.
type blobCollector struct {
	cache *cache.Cache
	s3    *s3.Store
}

// NewBlobCollector returns a collector for the body cache and S3 store in the chain of
// store (a cache in front of S3, S3 alone, or neither).
func NewBlobCollector(store blobstore.Store) prometheus.Collector {
	var c blobCollector
	if cached, ok := store.(*cache.Cache); ok {
		c.cache = cached
		store = cached.Backend()
	}
	if bucket, ok := store.(*s3.Store); ok {
		c.s3 = bucket
	}
	return &c
}

func (c *blobCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHits, cacheMisses, cacheEvictions, cacheEntries, cacheBytes,
		s3Calls, s3Errors, s3Bytes, s3Seconds, s3DedupHits, s3Corrupt} {
		ch <- d
	}
}

func (c *blobCollector) Collect(ch chan<- prometheus.Metric) {
	if c.cache != nil {
		st := c.cache.Stats()
		ch <- prometheus.MustNewConstMetric(cacheHits, prometheus.CounterValue, float64(st.Hits))
		ch <- prometheus.MustNewConstMetric(cacheMisses, prometheus.CounterValue, float64(st.Misses))
		ch <- prometheus.MustNewConstMetric(cacheEvictions, prometheus.CounterValue, float64(st.Evictions))
		ch <- prometheus.MustNewConstMetric(cacheEntries, prometheus.GaugeValue, float64(st.Entries))
		ch <- prometheus.MustNewConstMetric(cacheBytes, prometheus.GaugeValue, float64(st.Bytes))
	}
	if c.s3 != nil {
		m := c.s3.Metrics()
		for _, op := range []struct {
			name  string
			stats s3.OpStats
		}{{"put", m.Put}, {"get", m.Get}, {"stat", m.Stat}, {"delete", m.Delete}} {
			ch <- prometheus.MustNewConstMetric(s3Calls, prometheus.CounterValue, float64(op.stats.Calls), op.name)
			ch <- prometheus.MustNewConstMetric(s3Errors, prometheus.CounterValue, float64(op.stats.Errors), op.name)
			ch <- prometheus.MustNewConstMetric(s3Bytes, prometheus.CounterValue, float64(op.stats.Bytes), op.name)
			ch <- prometheus.MustNewConstMetric(s3Seconds, prometheus.CounterValue, op.stats.Latency.Seconds(), op.name)
		}
		ch <- prometheus.MustNewConstMetric(s3DedupHits, prometheus.CounterValue, float64(m.DedupHits))
		ch <- prometheus.MustNewConstMetric(s3Corrupt, prometheus.CounterValue, float64(m.Corrupt))
	}
}

func registerAll(reg *prometheus.Registry, cs []prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// Server is a running /metrics endpoint.
type Server struct {
	ln   net.Listener
	http *http.Server
}

// Listen serves the blob metrics of store (which may be nil), the Go runtime's and those of
// more on addr at /metrics, and probes' /healthz and /readyz (none when probes is nil).
func Listen(addr string, store blobstore.Store, probes *health.Probes, logger *slog.Logger, more ...prometheus.Collector) (*Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewBlobCollector(store), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := registerAll(reg, more); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if probes != nil {
		probes.Handle(mux)
	}
	s := &Server{ln: ln, http: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr returns the address the endpoint listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the endpoint.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop metrics endpoint: %w", err)
	}
	return nil
}
