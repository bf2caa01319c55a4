package lmtp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Config configures an LMTP Server.
type Config struct {
	Metadata metadatapb.MetadataClient
	Blobs    blobstore.Store
	SpoolDir string // temporary files for messages past spoolMemory bytes
	// Hostname names this server in the greeting and in Received fields; the host name
	// when empty.
	Hostname string
	// MaxMessageSize is the largest message accepted (RFC 1870 SIZE); default 64 MiB.
	MaxMessageSize int64
	// MaxRecipients is the most recipients of one transaction (RFC 5321 4.5.3.1.8 asks
	// for at least 100); default 1000.
	MaxRecipients int
	// Filer decides the target mailboxes of each recipient; DefaultFiler when nil.
	Filer Filer
	// ReadTimeout and WriteTimeout bound each command read and each reply write; default
	// 10 and 5 minutes (RFC 5321 4.5.3.2 asks for at least 5 and 10 minutes for the
	// client; the server's idle timeout should be at least 5 minutes, 4.5.3.2.7).
	ReadTimeout, WriteTimeout time.Duration
	Logger                    *slog.Logger
}

// Defaults of Config.
const (
	defaultMaxMessageSize = 64 << 20
	defaultMaxRecipients  = 1000
	defaultReadTimeout    = 10 * time.Minute
	defaultWriteTimeout   = 5 * time.Minute
	// rpcTimeout bounds one metadata call; storeTimeout one body's Put and the retries of
	// one Append.
	rpcTimeout   = 30 * time.Second
	storeTimeout = 5 * time.Minute
	// spoolMemory is how much of a message is held in memory before it spills to a file.
	spoolMemory = 64 << 10
	// maxTraceBytes bounds the trace fields added before a message (Return-Path,
	// Received, Delivered-To), beyond MaxMessageSize.
	maxTraceBytes = 16 << 10
)

// Server serves LMTP on the listeners given to Serve.
type Server struct {
	cfg    Config
	smtp   *smtp.Server
	ingest *ingest.Committer
	log    *slog.Logger

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  bool
}

// NewServer returns a server that is not yet listening.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = defaultMaxMessageSize
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = defaultMaxRecipients
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = defaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = defaultWriteTimeout
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
		if cfg.Hostname == "" {
			cfg.Hostname = "localhost"
		}
	}
	if cfg.Filer == nil {
		cfg.Filer = DefaultFiler{Metadata: cfg.Metadata}
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		sessions: make(map[*session]struct{}),
		ingest: &ingest.Committer{
			Metadata: cfg.Metadata, Blobs: cfg.Blobs, Timeout: storeTimeout, NewRequestID: newID,
		},
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.LMTP = true // RFC 2033
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageSize // RFC 1870; go-smtp answers 552 5.3.4 past it
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout = cfg.ReadTimeout
	srv.WriteTimeout = cfg.WriteTimeout
	srv.EnableSMTPUTF8 = true   // RFC 6531
	srv.EnableBINARYMIME = true // RFC 3030 (CHUNKING is always on in go-smtp)
	srv.ErrorLog = slogPrinter{cfg.Logger}
	s.smtp = srv
	return s
}

// Serve accepts connections on ln until Shutdown; it returns nil then.
func (s *Server) Serve(ln net.Listener) error {
	err := s.smtp.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits, until ctx ends, for the connections to
// end; a transaction in progress finishes (or fails, unacknowledged) first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	var busy []*session
	for sess := range s.sessions {
		if !sess.closeIfIdle() {
			busy = append(busy, sess)
		}
	}
	s.mu.Unlock()
	err := s.smtp.Shutdown(ctx)
	if ctx.Err() != nil {
		// The grace period is over: a transaction still in progress is cut off
		// unacknowledged, and the MTA retries it (dedup keeps what committed once).
		for _, sess := range busy {
			sess.conn.Conn().Close()
		}
	}
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// CheckListenAddress refuses a listen address that is not loopback or private (RFC 1918,
// RFC 4193) unless allowPublic: LMTP has no authentication, so whoever reaches the port can
// deliver to every account. An address with no host or an unspecified one (0.0.0.0, ::)
// listens on every interface and counts as public; a host name must resolve to loopback or
// private addresses only.
func CheckListenAddress(addr string, allowPublic bool) error {
	if allowPublic {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("LMTP listen address %q: %w", addr, err)
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else if host != "" {
		found, err := net.LookupIP(host)
		if err != nil {
			return fmt.Errorf("LMTP listen address %q: %w", addr, err)
		}
		ips = found
	}
	if len(ips) == 0 || slices.ContainsFunc(ips, net.IP.IsUnspecified) {
		return fmt.Errorf("LMTP listen address %q listens on every interface; LMTP has no authentication: give a loopback or private address, or allow a public one explicitly", addr)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() && !ip.IsPrivate() {
			return fmt.Errorf("LMTP listen address %q is public (%s); LMTP has no authentication: give a loopback or private address, or allow a public one explicitly", addr, ip)
		}
	}
	return nil
}

// slogPrinter is go-smtp's error log (panics, accept errors) on slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Error("lmtp: " + fmt.Sprintf(format, v...))
}
func (p slogPrinter) Println(v ...any) { p.log.Error("lmtp: " + fmt.Sprintln(v...)) }

// newID returns a random hex ID: metadata request IDs and transaction IDs in Received.
func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
