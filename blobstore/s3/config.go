package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Addressing selects how requests name the bucket.
type Addressing int

const (
	// AddressingAuto uses virtual-host style for endpoints known to support it (AWS) and path
	// style for every other endpoint, as minio-go decides.
	AddressingAuto Addressing = iota
	// AddressingPath puts the bucket in the path: https://endpoint/bucket/key.
	AddressingPath
	// AddressingVirtualHost puts the bucket in the host name: https://bucket.endpoint/key.
	AddressingVirtualHost
)

// Environment variables that carry the S3 credentials when Config holds none.
const (
	EnvAccessKey = "STRATA_S3_ACCESS_KEY"
	EnvSecretKey = "STRATA_S3_SECRET_KEY"
)

// Defaults for the zero values of Config.
const (
	DefaultRegion  = "us-east-1"
	DefaultTimeout = 30 * time.Second
	DefaultRetries = 3
)

// Config says where the bucket is and how to reach it.
type Config struct {
	// Endpoint is host:port of the S3 service, without a scheme (s3.amazonaws.com,
	// minio.internal:9000).
	Endpoint string
	// Region is the bucket's region; DefaultRegion if empty. Giving it saves the bucket
	// location lookup.
	Region string
	Bucket string
	// Prefix is put in front of every object name, so that one bucket can hold several
	// installations ("strata/"). Empty means none.
	Prefix string

	// AccessKey and SecretKey are static credentials. When both are empty the store takes
	// them, in this order, from CredentialsFile, from STRATA_S3_ACCESS_KEY and
	// STRATA_S3_SECRET_KEY, from the standard AWS variables (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), and from the default AWS shared credentials
	// and config files (profile AWS_PROFILE or "default").
	AccessKey string
	SecretKey string
	// CredentialsFile is an AWS shared credentials file (INI with aws_access_key_id and
	// aws_secret_access_key under the profile AWS_PROFILE or "default").
	CredentialsFile string

	// Insecure talks plain HTTP instead of HTTPS.
	Insecure bool
	// CAFile is a PEM file of certificate authorities trusted for the endpoint's TLS
	// certificate in addition to the system's.
	CAFile     string
	Addressing Addressing

	// Timeout bounds every request: Stat, Delete and bucket calls must finish within it,
	// and a Put or Get fails once no byte has moved for that long. DefaultTimeout if zero.
	Timeout time.Duration
	// Retries is how many times a failed request is retried (network errors, 5xx, throttling)
	// before the call fails; DefaultRetries if zero, none if negative. A Put whose body was
	// already streamed is not retried, since the body cannot be read twice.
	Retries int
}

func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("no S3 endpoint")
	case strings.Contains(c.Endpoint, "://"):
		return fmt.Errorf("S3 endpoint %q: give host:port without a scheme (plain HTTP is the Insecure setting)", c.Endpoint)
	case c.Bucket == "":
		return errors.New("no S3 bucket")
	case c.Timeout < 0:
		return fmt.Errorf("negative S3 timeout %v", c.Timeout)
	case (c.AccessKey == "") != (c.SecretKey == ""):
		return errors.New("S3 access key and secret key must be given together")
	case c.Prefix != "" && (strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "..")):
		return fmt.Errorf("S3 prefix %q must not start with a slash or hold a \"..\" segment", c.Prefix)
	}
	return nil
}

func (a Addressing) bucketLookup() minio.BucketLookupType {
	switch a {
	case AddressingPath:
		return minio.BucketLookupPath
	case AddressingVirtualHost:
		return minio.BucketLookupDNS
	default:
		return minio.BucketLookupAuto
	}
}

// resolveCredentials returns the first credentials found in the order Config documents,
// and a name for where they came from.
func resolveCredentials(c Config) (*credentials.Credentials, string, error) {
	if c.AccessKey != "" {
		return credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), "configuration", nil
	}
	if c.CredentialsFile != "" {
		creds := credentials.NewFileAWSCredentials(c.CredentialsFile, "")
		v, err := creds.GetWithContext(&credentials.CredContext{})
		if err != nil {
			return nil, "", fmt.Errorf("S3 credentials file %s: %w", c.CredentialsFile, err)
		}
		if v.AccessKeyID == "" || v.SecretAccessKey == "" {
			return nil, "", fmt.Errorf("S3 credentials file %s: no aws_access_key_id and aws_secret_access_key in the profile", c.CredentialsFile)
		}
		return creds, "file " + c.CredentialsFile, nil
	}
	access, secret := os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey)
	if access != "" || secret != "" {
		if access == "" || secret == "" {
			return nil, "", fmt.Errorf("set both %s and %s", EnvAccessKey, EnvSecretKey)
		}
		return credentials.NewStaticV4(access, secret, ""), "environment " + EnvAccessKey, nil
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
	})
	v, err := creds.GetWithContext(&credentials.CredContext{})
	if err != nil || v.AccessKeyID == "" {
		return nil, "", fmt.Errorf("no S3 credentials: set %s and %s, the AWS_* variables, or a credentials file", EnvAccessKey, EnvSecretKey)
	}
	return creds, "AWS environment or shared files", nil
}

// maxIdleConnsPerHost is how many idle connections to the endpoint a store keeps.
const maxIdleConnsPerHost = 256

// newTransport returns the HTTP transport for the endpoint: minio-go's defaults, the extra
// certificate authorities of CAFile, and Expect: 100-continue on conditional PUTs.
func newTransport(c Config) (http.RoundTripper, error) {
	tr, err := minio.DefaultTransport(!c.Insecure)
	if err != nil {
		return nil, fmt.Errorf("S3 transport: %w", err)
	}
	tr.ResponseHeaderTimeout = c.Timeout
	tr.ExpectContinueTimeout = min(c.Timeout, time.Second)
	// A frontend talks to one endpoint with as many requests in flight as it has APPENDs,
	// deliveries and FETCHes of bodies at once; minio-go keeps 16 idle connections per
	// host, and a 17th concurrent request then opens (and TLS-handshakes) a connection
	// that is closed again right after (6.6 % of a frontend's CPU at 50 IMAP clients).
	tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
	tr.MaxIdleConns = max(tr.MaxIdleConns, maxIdleConnsPerHost)
	if c.CAFile != "" {
		if c.Insecure {
			return nil, errors.New("an S3 CA file needs TLS, but Insecure selects plain HTTP")
		}
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("S3 CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("S3 CA file %s: no PEM certificate in it", c.CAFile)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return expectContinue{tr}, nil
}

type expectContinueKey struct{}

// withExpectContinue marks a conditional PUT's context for expectContinue.
func withExpectContinue(ctx context.Context) context.Context {
	return context.WithValue(ctx, expectContinueKey{}, true)
}

// expectContinue asks the server, for a PUT whose context withExpectContinue marked, to answer
// before the body is sent (RFC 9110 10.1.1), so that a server that evaluates If-None-Match
// first turns a dedup hit into a 412 without the upload. The header is added after signing
// and is not part of the signed headers.
type expectContinue struct{ next http.RoundTripper }

func (e expectContinue) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.ContentLength > 0 && req.Context().Value(expectContinueKey{}) != nil {
		req = req.Clone(req.Context())
		req.Header.Set("Expect", "100-continue")
	}
	return e.next.RoundTrip(req)
}
