package migrate

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Security is how the connection to the source server is protected.
type Security int

const (
	// TLS is implicit TLS from the first byte (imaps://, RFC 8314 3.3).
	TLS Security = iota
	// StartTLS upgrades a plaintext connection before the login (imap://, RFC 9051 6.2.1).
	StartTLS
	// Plaintext sends the password in the clear: only when asked for explicitly.
	Plaintext
)

// Source is the IMAP server and account mail is copied from.
type Source struct {
	Addr     string // host:port
	User     string
	Password string
	Security Security
	// TLSConfig for TLS and StartTLS; nil: the system roots and the host name of Addr.
	TLSConfig *tls.Config
}

// ParseSource reads imaps://user@host[:port] (implicit TLS, port 993) or
// imap://user@host[:port] (STARTTLS, port 143; plaintext only with plaintext set). The user
// may itself hold an @ (user@example.com@imap.example.com). The password is not part of
// the URL: it shows in ps and in shell history.
func ParseSource(raw string, plaintext bool) (Source, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Source{}, fmt.Errorf("source %q: %w", raw, err)
	}
	var src Source
	port := ""
	switch strings.ToLower(u.Scheme) {
	case "imaps":
		if plaintext {
			return Source{}, errors.New("plaintext asked for with imaps://; use imap://")
		}
		src.Security, port = TLS, "993"
	case "imap":
		src.Security, port = StartTLS, "143"
		if plaintext {
			src.Security = Plaintext
		}
	default:
		return Source{}, fmt.Errorf("source %q: want imaps://user@host[:port] or imap://user@host[:port]", raw)
	}
	if u.User == nil || u.User.Username() == "" {
		return Source{}, fmt.Errorf("source %q names no user (imaps://user@host)", raw)
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return Source{}, fmt.Errorf("source %q holds a password: give it with --password-file, the prompt or STRATA_MIGRATE_PASSWORD", u.Redacted())
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return Source{}, fmt.Errorf("source %q: want only user, host and port", raw)
	}
	src.User = u.User.Username()
	if p := u.Port(); p != "" {
		port = p
	}
	src.Addr = net.JoinHostPort(u.Hostname(), port)
	return src, nil
}

// String names the source without its password.
func (s Source) String() string {
	scheme := "imaps"
	if s.Security != TLS {
		scheme = "imap"
	}
	return scheme + "://" + url.UserPassword(s.User, "").Username() + "@" + s.Addr
}

// dial connects and logs in.
func (s Source) dial() (*imapclient.Client, error) {
	opts := &imapclient.Options{TLSConfig: s.TLSConfig}
	var c *imapclient.Client
	var err error
	switch s.Security {
	case TLS:
		c, err = imapclient.DialTLS(s.Addr, opts)
	case StartTLS:
		c, err = imapclient.DialStartTLS(s.Addr, opts)
	default:
		c, err = imapclient.DialInsecure(s.Addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.Addr, err)
	}
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("log in to %s as %s: %w", s.Addr, s.User, err)
	}
	return c, nil
}
