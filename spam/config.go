package spam

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Config is the rspamd setup of a frontend, from the --rspamd-* flags of `strata serve`
// and `strata frontend`. The zero Config turns scanning and learning off.
type Config struct {
	// URL of rspamd's normal worker: scanning at delivery when set.
	URL string
	// Timeout of each check and each learn request; 0 is DefaultTimeout.
	Timeout time.Duration
	// FailClosed refuses deliveries rspamd gives no verdict for (see Checker).
	FailClosed bool
	// ControllerURL of rspamd's controller worker: learning when set.
	ControllerURL string
	// PasswordFile holds the controller's enable password (its first line); none when "".
	PasswordFile string
}

// NewChecker returns the Checker of c, or nil when scanning is off.
func (c Config) NewChecker() (*Checker, error) {
	if c.URL == "" {
		if c.FailClosed {
			return nil, fmt.Errorf("--rspamd-fail-closed needs --rspamd-url")
		}
		return nil, nil
	}
	return NewChecker(CheckerConfig{URL: c.URL, Timeout: c.Timeout, FailClosed: c.FailClosed})
}

// NewLearner starts the Learner of c, or returns nil when learning is off; the caller
// closes it.
func (c Config) NewLearner(logger *slog.Logger) (*Learner, error) {
	if c.ControllerURL == "" {
		if c.PasswordFile != "" {
			return nil, fmt.Errorf("--rspamd-password-file needs --rspamd-controller-url")
		}
		return nil, nil
	}
	var password string
	if c.PasswordFile != "" {
		raw, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("rspamd password: %w", err)
		}
		password, _, _ = strings.Cut(string(raw), "\n")
		password = strings.TrimSuffix(password, "\r")
		if password == "" {
			return nil, fmt.Errorf("rspamd password file %s: the first line is empty", c.PasswordFile)
		}
	}
	return NewLearner(LearnerConfig{ControllerURL: c.ControllerURL, Password: password, Timeout: c.Timeout, Logger: logger})
}
