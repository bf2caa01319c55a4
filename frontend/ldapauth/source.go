package ldapauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Config configures a Source.
type Config struct {
	Metadata metadatapb.MetadataClient
	// Cache is the process's verified-credentials cache (shared with the logins whose
	// passwords Strata keeps); nil: every login binds to the directory.
	Cache *auth.Cache
	// SettingsTTL is how long a domain's LDAP settings are reused before they are read
	// again; default DefaultSettingsTTL. A changed setting reaches every frontend within it.
	SettingsTTL time.Duration
	Logger      *slog.Logger
}

const (
	// DefaultSettingsTTL is Config.SettingsTTL's default.
	DefaultSettingsTTL = 10 * time.Second
	// maxDomains bounds the settings held (logins name arbitrary domains); past it the
	// whole table is dropped.
	maxDomains = 10_000
	// maxAliases bounds the aliases applied from one entry.
	maxAliases = 64
	// checkTimeout bounds the settings lookup of a login, and its check once the guard
	// admitted it (the directory's own operations have the tenant's timeout_ms too).
	checkTimeout = 15 * time.Second
	// maxLoginBytes bounds a login name (RFC 5321 4.5.3.1.3: a path is at most 256 octets).
	maxLoginBytes = 320
)

// Source checks the logins of LDAP tenants (an auth.Directory) and resolves their
// recipients for LMTP. Its methods are safe for concurrent use.
type Source struct {
	cfg Config

	mu      sync.Mutex
	domains map[string]domainSettings
	pools   map[string]*tenantPool // by tenant

	hits, misses, unavailable, dials atomic.Uint64
}

// domainSettings are the settings of a domain's tenant as read at fetched; resp nil: the
// domain belongs to no tenant.
type domainSettings struct {
	resp    *metadatapb.LdapSettingsResponse
	fetched time.Time
}

var _ auth.Directory = (*Source)(nil)

// New returns a Source.
func New(cfg Config) *Source {
	if cfg.SettingsTTL <= 0 {
		cfg.SettingsTTL = DefaultSettingsTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Source{cfg: cfg, domains: make(map[string]domainSettings), pools: make(map[string]*tenantPool)}
}

// Stats are the Source's counters since it was made.
type Stats struct {
	// Hits are logins confirmed from the cache without a bind; Misses bound to the
	// directory (first logins, expired entries, wrong passwords); Unavailable are checks
	// the directory did not answer.
	Hits, Misses, Unavailable uint64
}

// Stats returns the counters.
func (s *Source) Stats() Stats {
	return Stats{Hits: s.hits.Load(), Misses: s.misses.Load(), Unavailable: s.unavailable.Load()}
}

// CheckPassword is auth.Directory's: the login of an account of an LDAP tenant, admitted
// by the brute-force guard (admit) and then checked by the directory (or the cache), the
// account provisioned and its attributes applied.
func (s *Source) CheckPassword(ctx context.Context, username, password string, admit func(context.Context) error) (*metadatapb.Account, bool, error) {
	email := strings.ToLower(username)
	local, domain, ok := splitAddress(email)
	if !ok {
		return nil, false, nil
	}
	tenantCtx, cancel := context.WithTimeout(ctx, checkTimeout)
	tenant, err := s.tenant(tenantCtx, domain)
	cancel()
	if err != nil {
		return nil, true, err
	}
	if tenant == nil {
		return nil, false, nil
	}
	// The guard's delays are waited out under ctx, the login's; the check after them has
	// a deadline of its own.
	if err := admit(ctx); err != nil {
		return nil, true, err
	}
	ctx, cancel = context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	stamp := settingsStamp(tenant.GetSettings())
	if remembered, ok := s.cfg.Cache.Recall(email, password); ok {
		if account, ok := bytes.CutPrefix(remembered, stamp); ok {
			acct, err := s.cfg.Metadata.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: string(account)})
			switch {
			case err == nil && !acct.GetDisabled() && acct.GetTenant() == tenant.GetTenant():
				s.hits.Add(1)
				return acct, true, nil
			case err == nil && acct.GetDisabled():
				return nil, true, auth.ErrInvalidCredentials
			case err != nil && status.Code(err) != codes.NotFound:
				return nil, true, err
			}
		}
		// The settings changed, or the account went: check with the directory again.
		s.cfg.Cache.Forget(email, password)
	}
	s.misses.Add(1)
	e, err := s.withDirectory(ctx, tenant, func(ss *session) (*entry, error) { return ss.verify(local, email, password) })
	if err != nil {
		return nil, true, err
	}
	acct, err := s.provision(ctx, tenant, email, e)
	if err != nil {
		return nil, true, err
	}
	s.cfg.Cache.Remember(email, password, append(stamp, acct.GetEmail()...))
	return acct, true, nil
}

// Resolve provisions the account of address when its tenant keeps its accounts in a
// directory that has the address as an entry's mail or alias attribute, for LMTP's RCPT of
// a user who never logged in. Only search mode can answer: bind mode has no credentials to
// search with, so its users receive mail once they have logged in. found false: not an
// LDAP tenant's address, or the directory has no such entry. The address compares exactly
// (no subaddress), as the directory stores it.
func (s *Source) Resolve(ctx context.Context, address string) (found bool, err error) {
	address = strings.ToLower(address)
	_, domain, ok := splitAddress(address)
	if !ok {
		return false, nil
	}
	tenant, err := s.tenant(ctx, domain)
	if err != nil || tenant == nil || tenant.GetSettings().GetMode() != modeSearch {
		return false, err
	}
	e, err := s.withDirectory(ctx, tenant, func(ss *session) (*entry, error) {
		e, found, err := ss.lookup(address)
		if !found && err == nil {
			return nil, auth.ErrInvalidCredentials
		}
		return e, err
	})
	if errors.Is(err, auth.ErrInvalidCredentials) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := s.provision(ctx, tenant, address, e); err != nil {
		if errors.Is(err, auth.ErrInvalidCredentials) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// withDirectory runs fn on a connection to the tenant's directory, pooled (acquire,
// release) or new, and logs what did not answer.
func (s *Source) withDirectory(ctx context.Context, tenant *metadatapb.LdapSettingsResponse, fn func(*session) (*entry, error)) (*entry, error) {
	ss, pooled, err := s.acquire(ctx, tenant)
	if err == nil {
		var e *entry
		e, err = fn(ss)
		s.release(tenant, ss, err)
		if pooled && errors.Is(err, auth.ErrDirectoryUnavailable) && !errors.Is(err, errServiceAccount) && ctx.Err() == nil {
			// A pooled connection the directory dropped in between (a restart, an idle
			// timeout of its own): once more on a new one.
			s.dials.Add(1)
			if ss, err = open(ctx, tenant.GetSettings()); err == nil {
				e, err = fn(ss)
				s.release(tenant, ss, err)
			}
		}
		if err == nil {
			return e, nil
		}
	}
	if errors.Is(err, auth.ErrDirectoryUnavailable) {
		s.unavailable.Add(1)
		level := slog.LevelWarn
		if errors.Is(err, errServiceAccount) {
			level = slog.LevelError
		}
		s.cfg.Logger.Log(ctx, level, "ldap directory unavailable", "tenant", tenant.GetTenant(), "url", tenant.GetSettings().GetUrl(), "err", err)
	}
	return nil, err
}

// Connection pool. A login of an LDAP tenant used to open a connection (TCP, the TLS
// handshake) per check; the pool keeps up to maxIdleConns healthy connections per tenant
// for the next checks. Every exchange starts with a bind, so a connection carries nothing
// of the previous user. Health: a connection goes back only after an exchange that ended
// with an answer (success, or the directory refusing the credentials), and is checked at
// its next use: one the directory or the network closed (go-ldap marks it closing when its
// reader fails) or idle longer than maxIdleTime is closed instead. The pool of a tenant is
// emptied when its settings change (the settings stamp), and at most maxPooledTenants
// tenants keep connections (past that, the whole pool is closed).
const (
	maxIdleConns     = 4
	maxIdleTime      = 30 * time.Second
	maxPooledTenants = 1000
)

// tenantPool is the idle connections to one tenant's directory under one set of settings.
type tenantPool struct {
	stamp []byte
	idle  []*session // most recently parked last
}

// acquire returns a healthy pooled connection to the tenant's directory, readied for ctx
// (pooled true), or a new one.
func (s *Source) acquire(ctx context.Context, tenant *metadatapb.LdapSettingsResponse) (ss *session, pooled bool, err error) {
	stamp := settingsStamp(tenant.GetSettings())
	for {
		s.mu.Lock()
		ss = nil
		if p := s.pools[tenant.GetTenant()]; p != nil && bytes.Equal(p.stamp, stamp) && len(p.idle) > 0 {
			ss = p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
		}
		s.mu.Unlock()
		if ss == nil {
			s.dials.Add(1)
			ss, err = open(ctx, tenant.GetSettings())
			return ss, false, err
		}
		if ss.conn.IsClosing() || time.Since(ss.idle) > maxIdleTime || ss.rearm(ctx) != nil {
			ss.conn.Close()
			continue
		}
		return ss, true, nil
	}
}

// release ends a use of ss that ended with err: back to the pool when the exchange got an
// answer and the pool has room, closed otherwise.
func (s *Source) release(tenant *metadatapb.LdapSettingsResponse, ss *session, err error) {
	healthy := err == nil || (errors.Is(err, auth.ErrInvalidCredentials) && !errors.Is(err, auth.ErrDirectoryUnavailable))
	if !healthy || !ss.park() {
		ss.close()
		return
	}
	stamp := settingsStamp(tenant.GetSettings())
	var closing []*session
	s.mu.Lock()
	p := s.pools[tenant.GetTenant()]
	if p == nil || !bytes.Equal(p.stamp, stamp) {
		if p != nil {
			closing = p.idle
		}
		if p == nil && len(s.pools) >= maxPooledTenants {
			for _, old := range s.pools {
				closing = append(closing, old.idle...)
			}
			s.pools = make(map[string]*tenantPool)
		}
		p = &tenantPool{stamp: stamp}
		s.pools[tenant.GetTenant()] = p
	}
	if len(p.idle) < maxIdleConns {
		p.idle = append(p.idle, ss)
	} else {
		closing = append(closing, ss)
	}
	s.mu.Unlock()
	for _, c := range closing {
		c.conn.Close()
	}
}

// Dials is how many connections to directories the Source has opened.
func (s *Source) Dials() uint64 { return s.dials.Load() }

// tenant returns the LDAP settings of domain's tenant; nil when the domain belongs to no
// tenant or its tenant keeps its passwords in Strata.
func (s *Source) tenant(ctx context.Context, domain string) (*metadatapb.LdapSettingsResponse, error) {
	now := time.Now()
	s.mu.Lock()
	d, ok := s.domains[domain]
	s.mu.Unlock()
	if !ok || now.Sub(d.fetched) >= s.cfg.SettingsTTL {
		resp, err := s.cfg.Metadata.GetLdapSettings(ctx, &metadatapb.GetLdapSettingsRequest{Domain: domain})
		switch {
		case status.Code(err) == codes.NotFound || status.Code(err) == codes.Unimplemented:
			resp = nil // no tenant, or a metadata service older than LDAP settings
		case err != nil:
			return nil, err
		}
		d = domainSettings{resp: resp, fetched: now}
		s.mu.Lock()
		if len(s.domains) >= maxDomains {
			clear(s.domains)
		}
		s.domains[domain] = d
		s.mu.Unlock()
	}
	if d.resp.GetSettings() == nil {
		return nil, nil
	}
	return d.resp, nil
}

// provision returns the Strata account of a verified directory entry: the entry's mail
// attribute or else login, which must be an address of the tenant's domains. When the
// account is missing, or its STORAGE limit or aliases differ from the entry's, one
// ProvisionLdapAccount command creates it (without a password) and applies them; otherwise
// nothing is written. A disabled account is refused.
func (s *Source) provision(ctx context.Context, tenant *metadatapb.LdapSettingsResponse, login string, e *entry) (*metadatapb.Account, error) {
	email := login
	if e.mail != "" {
		email = strings.ToLower(strings.TrimSpace(e.mail))
	}
	if _, domain, ok := splitAddress(email); !ok || !slices.Contains(tenant.GetDomains(), domain) {
		s.cfg.Logger.Warn("ldap entry's address is not in the tenant's domains", "tenant", tenant.GetTenant(), "dn", e.dn, "address", email)
		return nil, auth.ErrInvalidCredentials
	}
	md := s.cfg.Metadata
	acct, err := md.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: email})
	missing := status.Code(err) == codes.NotFound
	switch {
	case err != nil && !missing:
		return nil, err
	case !missing && (acct.GetDisabled() || acct.GetTenant() != tenant.GetTenant()):
		return nil, auth.ErrInvalidCredentials
	}
	log := s.cfg.Logger.With("tenant", tenant.GetTenant(), "account", email)
	req := &metadatapb.ProvisionLdapAccountRequest{RequestId: newRequestID(), Email: email}
	changed := missing
	if tenant.GetSettings().GetQuotaAttribute() != "" {
		if set, want, err := s.storageChange(ctx, email, missing, e.quota); err != nil {
			log.Warn("ldap quota not applied", "value", e.quota, "err", err)
		} else if set {
			req.SetStorage, req.StorageBytes, changed = true, want, true
		}
	}
	if req.Aliases = s.newAliases(ctx, log, email, missing, e.aliases); len(req.Aliases) > 0 {
		changed = true
	}
	if !changed {
		return acct, nil
	}
	acct, err = md.ProvisionLdapAccount(ctx, req)
	switch status.Code(err) {
	case codes.OK:
	case codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.NotFound:
		log.Warn("ldap account not provisioned", "err", err)
		return nil, auth.ErrInvalidCredentials
	default:
		return nil, err
	}
	if missing {
		log.Info("account provisioned from ldap", "dn", e.dn)
	}
	if acct.GetDisabled() {
		return nil, auth.ErrInvalidCredentials
	}
	return acct, nil
}

// storageChange compares the entry's quota value (bytes; empty: no limit) with the
// account's STORAGE limit: set when they differ.
func (s *Source) storageChange(ctx context.Context, account string, missing bool, value string) (set bool, want *uint64, err error) {
	if value != "" {
		n, ok := quotaBytes(value)
		if !ok {
			return false, nil, errors.New("not a number of bytes")
		}
		want = &n
	}
	var have *uint64
	if !missing {
		q, err := s.cfg.Metadata.GetQuota(ctx, &metadatapb.GetQuotaRequest{Account: account})
		if err != nil {
			return false, nil, err
		}
		for _, root := range q.GetRoots() {
			if root.GetAccount() == account && root.GetLimits() != nil {
				have = root.GetLimits().StorageBytes
			}
		}
	}
	same := (want == nil && have == nil) || (want != nil && have != nil && *want == *have)
	return !same, want, nil
}

// newAliases are the entry's alias values (lower case, at most maxAliases) that do not
// yet deliver to account.
func (s *Source) newAliases(ctx context.Context, log *slog.Logger, account string, missing bool, values []string) []string {
	var out []string
	for i, alias := range values {
		if i == maxAliases {
			log.Warn("ldap entry has too many aliases; the rest are not applied", "applied", maxAliases)
			break
		}
		alias = strings.ToLower(strings.TrimSpace(alias))
		if alias == account || alias == "" || slices.Contains(out, alias) {
			continue
		}
		if !missing {
			r, err := s.cfg.Metadata.ResolveRecipient(ctx, &metadatapb.ResolveRecipientRequest{Address: alias})
			if err == nil && r.GetVia() == "alias" && r.GetDetail() == "" && slices.ContainsFunc(r.GetTargets(), func(t *metadatapb.ResolvedAccount) bool { return t.GetAccount() == account }) {
				continue
			}
			if err != nil && status.Code(err) != codes.NotFound {
				log.Warn("ldap alias not checked", "alias", alias, "err", err)
				continue
			}
		}
		out = append(out, alias)
	}
	return out
}

// settingsStamp names the settings a login was verified with: a changed setting (another
// directory, mode or mapping) makes every remembered login of the tenant miss.
func settingsStamp(settings *metadatapb.LdapSettings) []byte {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(settings)
	sum := sha256.Sum256(append([]byte("ldap\x00"), b...))
	return sum[:]
}

// splitAddress takes a lower-case login name apart at its last "@". A name that is not
// UTF-8 or holds a control character is no address (and never reaches a directory: LDAP
// strings are UTF-8, RFC 4511 4.1.2).
func splitAddress(email string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(email, '@')
	if i <= 0 || i == len(email)-1 || len(email) > maxLoginBytes || !utf8.ValidString(email) ||
		strings.ContainsFunc(email, unicode.IsControl) {
		return "", "", false
	}
	return email[:i], email[i+1:], true
}

// newRequestID returns a fresh ID for a metadata write; a retried write reuses it.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	ldapHitsDesc = prometheus.NewDesc("strata_ldap_cache_hits_total",
		"Logins of LDAP tenants confirmed from the verified-credentials cache, without a bind to the directory.", nil, nil)
	ldapMissesDesc = prometheus.NewDesc("strata_ldap_binds_total",
		"Logins of LDAP tenants checked with the directory (first logins, expired entries, wrong passwords).", nil, nil)
	ldapUnavailableDesc = prometheus.NewDesc("strata_ldap_unavailable_total",
		"Logins and LMTP lookups the directory did not answer (down, timeout, TLS failure, service account refused).", nil, nil)
)

// Collector exports the counters, read at each scrape (docs/metrics.md).
func (s *Source) Collector() prometheus.Collector { return sourceCollector{s} }

type sourceCollector struct{ s *Source }

func (sc sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{ldapHitsDesc, ldapMissesDesc, ldapUnavailableDesc} {
		ch <- d
	}
}

func (sc sourceCollector) Collect(ch chan<- prometheus.Metric) {
	st := sc.s.Stats()
	ch <- prometheus.MustNewConstMetric(ldapHitsDesc, prometheus.CounterValue, float64(st.Hits))
	ch <- prometheus.MustNewConstMetric(ldapMissesDesc, prometheus.CounterValue, float64(st.Misses))
	ch <- prometheus.MustNewConstMetric(ldapUnavailableDesc, prometheus.CounterValue, float64(st.Unavailable))
}
