package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/cache"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/embedded"
)

// addBlobStoreFlags registers the flags that choose and configure the blob store, shared by
// `strata serve` and `strata frontend`; fsHelp says where --blob fs keeps bodies.
func addBlobStoreFlags(f *pflag.FlagSet, fsHelp string) {
	f.String("blob", "fs", `where message bodies live: "fs" (`+fsHelp+`) or "s3"`)
	f.String("s3-endpoint", "", "S3 endpoint host:port, without a scheme (--blob s3)")
	f.String("s3-bucket", "", "S3 bucket; created if missing (--blob s3)")
	f.String("s3-region", s3.DefaultRegion, "S3 region")
	f.String("s3-prefix", "", "prefix of every object name in the bucket")
	f.Bool("s3-insecure", false, "talk plain HTTP to S3 instead of HTTPS")
	f.Bool("s3-path-style", false, "put the bucket in the URL path rather than the host name (most non-AWS servers)")
	f.String("s3-ca-file", "", "PEM file of extra certificate authorities for the S3 endpoint")
	f.String("s3-credentials-file", "", "AWS shared credentials file with the S3 keys")
	f.Duration("s3-timeout", s3.DefaultTimeout, "S3 request timeout (for bodies: longest time without progress)")
	f.Int("s3-retries", s3.DefaultRetries, "retries of a failed S3 request")
	f.Int64("blob-cache-size", embedded.DefaultBlobCacheSize, "bytes of the in-memory body cache in front of S3 (negative: none)")
}

// s3ConfigFromFlags returns the S3 settings for --blob s3, nil for --blob fs.
func s3ConfigFromFlags(f *pflag.FlagSet) (*s3.Config, error) {
	blob, _ := f.GetString("blob")
	switch blob {
	case "fs":
		return nil, nil
	case "s3":
	default:
		return nil, fmt.Errorf(`--blob %q: want "fs" or "s3"`, blob)
	}
	c := s3ConnectionFromFlags(f)
	if c.Endpoint == "" || c.Bucket == "" {
		return nil, fmt.Errorf("--blob s3 needs --s3-endpoint and --s3-bucket")
	}
	return &c, nil
}

// s3ConnectionFromFlags reads the --s3-* flags, whatever --blob says and without checks:
// the bucket may be empty (a backup location names its own).
func s3ConnectionFromFlags(f *pflag.FlagSet) s3.Config {
	var c s3.Config
	c.Endpoint, _ = f.GetString("s3-endpoint")
	c.Bucket, _ = f.GetString("s3-bucket")
	c.Region, _ = f.GetString("s3-region")
	c.Prefix, _ = f.GetString("s3-prefix")
	c.Insecure, _ = f.GetBool("s3-insecure")
	if pathStyle, _ := f.GetBool("s3-path-style"); pathStyle {
		c.Addressing = s3.AddressingPath
	}
	c.CAFile, _ = f.GetString("s3-ca-file")
	c.CredentialsFile, _ = f.GetString("s3-credentials-file")
	c.Timeout, _ = f.GetDuration("s3-timeout")
	c.Retries, _ = f.GetInt("s3-retries")
	if c.Retries == 0 {
		c.Retries = -1 // s3.Config reads 0 as the default; the flag's 0 means none
	}
	return c
}

// openBlobStoreFromFlags opens the blob store the flags of addBlobStoreFlags select: the
// directory fsDir for --blob fs, else the S3 bucket behind the body cache.
func openBlobStoreFromFlags(ctx context.Context, f *pflag.FlagSet, fsDir string, logger *slog.Logger) (blobstore.Store, error) {
	s3Config, err := s3ConfigFromFlags(f)
	if err != nil {
		return nil, err
	}
	if s3Config == nil {
		blobs, err := fs.New(fsDir)
		if err != nil {
			return nil, fmt.Errorf("open blob store in %s: %w", fsDir, err)
		}
		return blobs, nil
	}
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	bucket, err := s3.New(openCtx, *s3Config)
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	logger.Info("message bodies in S3", "endpoint", s3Config.Endpoint, "bucket", s3Config.Bucket)
	size, _ := f.GetInt64("blob-cache-size")
	if size == 0 {
		size = embedded.DefaultBlobCacheSize
	}
	if size < 0 {
		return bucket, nil
	}
	cached, err := cache.New(bucket, cache.Config{MaxBytes: size})
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	return cached, nil
}
