package spam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds one /checkv2 call when CheckerConfig.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// maxResponse bounds the JSON body read from rspamd: a verdict with every symbol and its
// options is a few KiB; anything near this is not rspamd.
const maxResponse = 4 << 20

// ErrUnavailable is wrapped by every error Check returns with FailClosed: the scanner could
// not be reached or did not answer with a verdict, so the message is not to be accepted now
// (LMTP answers 451 4.7.1, RFC 3463 3.8, and the MTA retries).
var ErrUnavailable = errors.New("spam scanner unavailable")

// CheckerConfig configures a Checker.
type CheckerConfig struct {
	// URL is rspamd's normal worker, e.g. http://127.0.0.1:11333; /checkv2 is appended.
	URL string
	// Timeout bounds each check, from sending the message to reading the verdict.
	Timeout time.Duration
	// FailClosed makes Check return an error wrapping ErrUnavailable when rspamd does not
	// answer; otherwise (fail-open) the message gets an untested Verdict and delivery
	// goes on.
	FailClosed bool
	// HTTP is the client to use; nil means a client of its own.
	HTTP *http.Client
}

// Checker asks rspamd for the verdict on a message (POST /checkv2). It is safe for
// concurrent use.
type Checker struct {
	endpoint   string
	timeout    time.Duration
	failClosed bool
	http       *http.Client

	checked  atomic.Uint64
	failures atomic.Uint64
}

// NewChecker returns a Checker for cfg, refusing a URL that is not http or https.
func NewChecker(cfg CheckerConfig) (*Checker, error) {
	endpoint, err := endpointURL(cfg.URL, "/checkv2")
	if err != nil {
		return nil, fmt.Errorf("rspamd url: %w", err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("rspamd timeout %v is negative", cfg.Timeout)
	}
	c := &Checker{endpoint: endpoint, timeout: cfg.Timeout, failClosed: cfg.FailClosed, http: cfg.HTTP}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	return c, nil
}

// endpointURL joins base (scheme://host[:port][/prefix]) and path.
func endpointURL(base, path string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", base)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: a query or fragment is not allowed", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	return u.String(), nil
}

// Envelope is what rspamd is told about a message besides its content, as the HTTP
// headers of /checkv2 (rspamd's "protocol" documentation). Empty fields are not sent.
type Envelope struct {
	From      string   // the SMTP MAIL FROM (reverse path); "" for the null sender
	Rcpt      []string // the SMTP RCPT TO addresses, one Rcpt header each
	IP        string   // the address of the client that handed the message to the MTA
	Helo      string   // that client's HELO/EHLO name
	Hostname  string   // its resolved host name
	DeliverTo string   // the final recipient (Deliver-To)
	QueueID   string   // the MTA's queue ID, for rspamd's log
	User      string   // the authenticated sender, if any
}

// Verdict is rspamd's answer to /checkv2.
type Verdict struct {
	// Tested is false when no scan took place (fail-open after an error, or rspamd
	// skipped the message without a result); the other fields are then zero.
	Tested bool
	// Action is rspamd's action: "no action", "greylist", "add header", "rewrite subject",
	// "soft reject" or "reject".
	Action string
	// Score is the message's score; RequiredScore the score of the reject action.
	Score, RequiredScore float64
	// Symbols are the rules that matched, by name.
	Symbols map[string]Symbol
	// MessageID is the Message-ID rspamd read, for logs.
	MessageID string
}

// Symbol is one rule that matched.
type Symbol struct {
	Score   float64
	Options []string
}

// Spam reports whether rspamd's action marks the message as spam: anything from
// "add header" up; "greylist" and "soft reject" are delays, not verdicts.
func (v Verdict) Spam() bool {
	switch v.Action {
	case "add header", "rewrite subject", "reject":
		return true
	}
	return false
}

// checkResponse is the JSON of /checkv2 (rspamd 2.x and 3.x).
type checkResponse struct {
	IsSkipped     bool    `json:"is_skipped"`
	Score         float64 `json:"score"`
	RequiredScore float64 `json:"required_score"`
	Action        string  `json:"action"`
	Symbols       map[string]struct {
		Score   float64  `json:"score"`
		Options []string `json:"options"`
	} `json:"symbols"`
	MessageID string `json:"message-id"`
	Error     string `json:"error"`
}

// Check sends the message read from body to rspamd with env and returns its verdict.
// When rspamd cannot be reached, times out or answers without a verdict, Check returns
// an error wrapping ErrUnavailable with FailClosed, and an untested Verdict and nil
// without (fail-open). A body that fails to read is an error either way: the message,
// not the scanner, is at fault.
func (c *Checker) Check(ctx context.Context, body io.Reader, env Envelope) (Verdict, error) {
	v, err := c.check(ctx, body, env)
	if err == nil {
		c.checked.Add(1)
		return v, nil
	}
	var be *bodyError
	if errors.As(err, &be) {
		return Verdict{}, be.err
	}
	c.failures.Add(1)
	if c.failClosed {
		return Verdict{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Verdict{}, nil
}

// bodyError marks a failure to read the message being sent.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }

// bodyReader tells the body's own read errors apart from the transport's.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyError{fmt.Errorf("read message: %w", err)}
	}
	return n, err
}

func (c *Checker) check(ctx context.Context, body io.Reader, env Envelope) (Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bodyReader{body})
	if err != nil {
		return Verdict{}, err
	}
	for _, h := range []struct{ name, value string }{
		{"From", env.From}, {"IP", env.IP}, {"Helo", env.Helo}, {"Hostname", env.Hostname},
		{"Deliver-To", env.DeliverTo}, {"Queue-Id", env.QueueID}, {"User", env.User},
	} {
		if err := setHeader(req.Header, h.name, h.value); err != nil {
			return Verdict{}, &bodyError{err}
		}
	}
	for _, rcpt := range env.Rcpt {
		if err := setHeader(req.Header, "Rcpt", rcpt); err != nil {
			return Verdict{}, &bodyError{err}
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var be *bodyError
		if errors.As(err, &be) {
			return Verdict{}, be
		}
		return Verdict{}, fmt.Errorf("rspamd check: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return Verdict{}, fmt.Errorf("rspamd check: read response: %w", err)
	}
	if len(raw) > maxResponse {
		return Verdict{}, fmt.Errorf("rspamd check: response over %d bytes", maxResponse)
	}
	var r checkResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return Verdict{}, fmt.Errorf("rspamd check: HTTP %d, response is not a verdict: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || r.Error != "" {
		return Verdict{}, fmt.Errorf("rspamd check: HTTP %d: %s", resp.StatusCode, r.Error)
	}
	if r.IsSkipped && r.Action == "" {
		return Verdict{}, nil // skipped without a result: untested
	}
	// A skipped message with an action has a pre-result, as GTUBE's reject: a verdict.
	if r.Action == "" || !finite(r.Score) || !finite(r.RequiredScore) {
		return Verdict{}, fmt.Errorf("rspamd check: response has no action or score")
	}
	v := Verdict{Tested: true, Action: r.Action, Score: r.Score, RequiredScore: r.RequiredScore,
		MessageID: r.MessageID, Symbols: make(map[string]Symbol, len(r.Symbols))}
	for name, s := range r.Symbols {
		v.Symbols[name] = Symbol{Score: s.Score, Options: s.Options}
	}
	return v, nil
}

// setHeader adds a header field, refusing values that would break the request.
func setHeader(h http.Header, name, value string) error {
	if value == "" {
		return nil
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("%s %q: a line break or NUL is not allowed", name, value)
	}
	h.Add(name, value)
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// CheckerStats counts checks since the Checker was made.
type CheckerStats struct {
	Checked  uint64 // verdicts received (skipped messages included)
	Failures uint64 // checks that got no verdict (a fail-open delivery or a fail-closed refusal)
}

// Stats returns the counters.
func (c *Checker) Stats() CheckerStats {
	return CheckerStats{Checked: c.checked.Load(), Failures: c.failures.Load()}
}
