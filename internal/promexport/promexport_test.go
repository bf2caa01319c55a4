package promexport_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/s3test"
)

// TestMetricsOfCacheAndS3 runs Strata on versitygw with the body cache and the metrics
// endpoint, APPENDs a message and FETCHes it twice through IMAP: /metrics shows the S3 PUT,
// one cache miss (the first FETCH, read from S3) and one hit (the second).
func TestMetricsOfCacheAndS3(t *testing.T) {
	gw := s3test.Start(t, s3test.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := embedded.Start(ctx, embedded.Config{
		DataDir: t.TempDir(), IMAPListen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		Demo: true, AllowPlaintextAuth: true, BlobGCInterval: -1,
		S3: &s3.Config{Endpoint: gw.Endpoint, Bucket: "strata-metrics", AccessKey: gw.AccessKey, SecretKey: gw.SecretKey,
			Insecure: true, Addressing: s3.AddressingPath},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	c, err := imapclient.DialInsecure(srv.IMAPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	msg := "From: a@example.org\r\nSubject: metrics\r\n\r\nbody\r\n"
	cmd := c.Append("INBOX", int64(len(msg)), nil)
	io.WriteString(cmd, msg)
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	for range 2 {
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
		if err != nil || len(msgs) != 1 || string(msgs[0].FindBodySection(whole)) != msg {
			t.Fatalf("FETCH: %v", err)
		}
	}

	value, text := embeddedtest.Scrape(t, srv.MetricsAddr())
	if v := value("strata_blob_cache_misses_total"); v != 1 {
		t.Errorf("cache misses = %v, want 1", v)
	}
	if v := value("strata_blob_cache_hits_total"); v != 1 {
		t.Errorf("cache hits = %v, want 1", v)
	}
	if v := value(`strata_s3_requests_total{op="put"}`); v < 1 {
		t.Errorf("S3 puts = %v", v)
	}
	if v := value(`strata_s3_bytes_total{op="get"}`); v != float64(len(msg)) {
		t.Errorf("S3 get bytes = %v, want %d", v, len(msg))
	}
	if !strings.Contains(text, "go_goroutines") {
		t.Error("no Go runtime metrics")
	}
}
