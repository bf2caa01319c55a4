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
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Config configures an LMTP Server.
type Config struct {
	Metadata metadatapb.MetadataClient
	Blobs    blobstore.Store
	// StageBodies lets a blobstore.Stager Blobs make a body durable beside its metadata
	// Append instead of before it (frontend/ingest); set only where a staging recovery runs
	// after a machine crash (the embedded server).
	StageBodies bool
	SpoolDir    string // temporary files for messages past spoolMemory bytes
	// RecentBodies, when set, is given every body once it is stored, for a search
	// indexer in this process (ingest.Committer.Recent).
	RecentBodies ingest.RecentBodies
	// Hostname names this server in the greeting and in Received fields; the host name
	// when empty.
	Hostname string
	// Proxy, when set, reads a PROXY protocol header from the connections of its trusted
	// networks (frontend/connserver), so logs and Received fields name the MTA behind the
	// balancer. The private-address check (AllowPublic) applies to the proxy's address.
	Proxy *connserver.Proxy
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
	// AllowPublic serves clients from any address. Without it a connection from an address
	// that is neither loopback nor private (RFC 1918, RFC 4193) is refused with 554 5.7.1
	// before any command: LMTP has no authentication (see CheckListenAddress).
	AllowPublic bool
	Logger      *slog.Logger
	// Directory provisions the recipients that a tenant's account directory knows and
	// the metadata service does not yet (frontend/ldapauth: LDAP users who never logged
	// in); nil: none.
	Directory RecipientDirectory
}

// RecipientDirectory finds a recipient in a tenant's account directory and provisions its
// account; found false when the directory has none.
type RecipientDirectory interface {
	Resolve(ctx context.Context, address string) (found bool, err error)
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
	cfg     Config
	smtp    *smtp.Server
	metrics *metrics
	ingest  *ingest.Committer
	log     *slog.Logger

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
		metrics:  newMetrics(),
		ingest: &ingest.Committer{
			Metadata: cfg.Metadata, Blobs: cfg.Blobs, Stage: cfg.StageBodies, Recent: cfg.RecentBodies, Timeout: storeTimeout, NewRequestID: newID,
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
	if !s.cfg.AllowPublic {
		ln = &privateListener{Listener: ln, hostname: s.cfg.Hostname, log: s.log}
	}
	ln = s.cfg.Proxy.Listener(ln) // outside privateListener, which checks the socket's peer
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

// CheckListenAddress refuses a listen address that is public unless allowPublic: LMTP has no
// authentication, so whoever reaches the port can deliver to every account. A loopback or
// private (RFC 1918, RFC 4193) address is accepted, and so is a wildcard one (0.0.0.0, ::, no
// host), which a container or pod needs because its own address is not known in advance:
// the server then refuses each connection from a public source (Config.AllowPublic). A
// specific public address, or a host name resolving to one, is refused.
func CheckListenAddress(addr string, allowPublic bool) error {
	if allowPublic {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("LMTP listen address %q: %w", addr, err)
	}
	if host == "" {
		return nil
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		found, err := net.LookupIP(host)
		if err != nil {
			return fmt.Errorf("LMTP listen address %q: %w", addr, err)
		}
		ips = found
	}
	for _, ip := range ips {
		if !ip.IsUnspecified() && !privateIP(ip) {
			return fmt.Errorf("LMTP listen address %q is public (%s); LMTP has no authentication: give a loopback, private or wildcard address, or allow a public one explicitly", addr, ip)
		}
	}
	return nil
}

// privateIP reports whether ip is loopback or private (RFC 1918, RFC 4193), including an
// IPv4 address mapped into IPv6 (a dual-stack wildcard listener sees those).
func privateIP(ip net.IP) bool {
	return ip.IsLoopback() || ip.IsPrivate()
}

// privateListener hands the LMTP server only connections from loopback or private
// addresses; any other is answered 554 5.7.1 and closed (RFC 5321 3.1: a server may refuse
// service with 554 in its greeting; RFC 3463 5.7.1: delivery not authorized).
type privateListener struct {
	net.Listener
	hostname string
	log      *slog.Logger
}

func (l *privateListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if addr, ok := conn.RemoteAddr().(*net.TCPAddr); !ok || privateIP(addr.IP) {
			return conn, nil
		}
		l.log.Warn("lmtp: refused a connection from a public address", "remote", conn.RemoteAddr().String())
		go refusePublic(conn, l.hostname)
	}
}

// refusePublic answers the greeting with 554 and closes, without waiting on a slow client
// in the accept loop.
func refusePublic(conn net.Conn, hostname string) {
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "554 5.7.1 %s LMTP is not offered to public addresses\r\n", heloName(hostname))
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
