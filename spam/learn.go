package spam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of LearnerConfig.
const (
	DefaultQueueSize   = 1000
	DefaultWorkers     = 2
	DefaultMaxAttempts = 5
	DefaultBackoff     = time.Second
	maxBackoff         = time.Minute
)

// LearnerConfig configures a Learner.
type LearnerConfig struct {
	// ControllerURL is rspamd's controller worker, e.g. http://127.0.0.1:11334;
	// /learnspam and /learnham are appended.
	ControllerURL string
	// Password is the controller's password or enable_password, sent in the Password
	// header; learning needs the enable password unless the frontend's address is one
	// of the controller's secure_ip.
	Password string
	// Timeout bounds each learn request, reading the message included.
	Timeout time.Duration
	// QueueSize is the most messages waiting to be learnt; more are dropped and counted.
	QueueSize int
	// Workers is how many learn requests run at once.
	Workers int
	// MaxAttempts is how many times a message is tried before it is given up and
	// counted as a failure.
	MaxAttempts int
	// Backoff is the wait before the first retry; it doubles with each retry up to a
	// minute.
	Backoff time.Duration
	// HTTP is the client to use; nil means a client of its own.
	HTTP *http.Client
	// Logger gets one line per message given up; nil discards.
	Logger *slog.Logger
}

// OpenFunc opens the content of the message to learn. The Learner calls it in its own
// goroutine, once per attempt, and closes what it returns. An error that Is
// fs.ErrNotExist says the message is gone (expunged before it was learnt): it is not
// retried.
type OpenFunc = func(ctx context.Context) (io.ReadCloser, error)

// learnJob is one message waiting to be learnt.
type learnJob struct {
	spam    bool
	account string
	open    OpenFunc
}

// Learner teaches rspamd's Bayes classifier the messages users classify, posting them to
// the controller's /learnspam and /learnham. Learn never blocks; a bounded queue feeds a
// fixed set of workers that retry with exponential backoff. It is safe for concurrent use.
type Learner struct {
	spamURL, hamURL string
	password        string
	timeout         time.Duration
	maxAttempts     int
	backoff         time.Duration
	http            *http.Client
	logger          *slog.Logger

	queue chan learnJob
	// mu guards closed against a Learn racing Close's close of queue.
	mu     sync.RWMutex
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	accepted                         atomic.Uint64
	learnedSpam, learnedHam, skipped atomic.Uint64
	failures, retries, dropped       atomic.Uint64
}

// NewLearner starts a Learner for cfg; Close stops it.
func NewLearner(cfg LearnerConfig) (*Learner, error) {
	spamURL, err := endpointURL(cfg.ControllerURL, "/learnspam")
	if err != nil {
		return nil, fmt.Errorf("rspamd controller url: %w", err)
	}
	hamURL, _ := endpointURL(cfg.ControllerURL, "/learnham")
	if cfg.Timeout < 0 || cfg.QueueSize < 0 || cfg.Workers < 0 || cfg.MaxAttempts < 0 || cfg.Backoff < 0 {
		return nil, errors.New("rspamd learner: negative timeout, queue size, workers, attempts or backoff")
	}
	if err := setHeader(http.Header{}, "Password", cfg.Password); err != nil {
		return nil, errors.New("rspamd controller password: a line break or NUL is not allowed")
	}
	l := &Learner{
		spamURL: spamURL, hamURL: hamURL, password: cfg.Password,
		timeout: cfg.Timeout, maxAttempts: cfg.MaxAttempts, backoff: cfg.Backoff,
		http: cfg.HTTP, logger: cfg.Logger,
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if l.maxAttempts == 0 {
		l.maxAttempts = DefaultMaxAttempts
	}
	if l.backoff == 0 {
		l.backoff = DefaultBackoff
	}
	if l.http == nil {
		l.http = &http.Client{}
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	queueSize, workers := cfg.QueueSize, cfg.Workers
	if queueSize == 0 {
		queueSize = DefaultQueueSize
	}
	if workers == 0 {
		workers = DefaultWorkers
	}
	l.queue = make(chan learnJob, queueSize)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	for range workers {
		l.wg.Add(1)
		go l.work()
	}
	return l, nil
}

// Learn queues the message open reads to be learnt as spam or ham for account, and
// returns at once: when the queue is full or the Learner closed, the message is dropped
// and counted.
func (l *Learner) Learn(spam bool, account string, open OpenFunc) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- learnJob{spam: spam, account: account, open: open}:
		l.accepted.Add(1)
	default:
		l.dropped.Add(1)
	}
}

// Close stops taking messages, abandons those queued or waiting for a retry (counted as
// dropped) and waits for the workers to end; a request in flight is cancelled.
func (l *Learner) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

func (l *Learner) work() {
	defer l.wg.Done()
	for job := range l.queue {
		if l.ctx.Err() != nil {
			l.dropped.Add(1)
			continue
		}
		l.learn(job)
	}
}

// learn tries job up to maxAttempts times, waiting backoff, then twice as long, between
// attempts.
func (l *Learner) learn(job learnJob) {
	wait := l.backoff
	for attempt := 1; ; attempt++ {
		outcome, err := l.post(job)
		if err == nil {
			switch {
			case outcome == outcomeSkipped:
				l.skipped.Add(1)
			case job.spam:
				l.learnedSpam.Add(1)
			default:
				l.learnedHam.Add(1)
			}
			return
		}
		if l.ctx.Err() != nil {
			l.dropped.Add(1) // Close cancelled it
			return
		}
		var perm *permanentError
		if errors.As(err, &perm) || attempt >= l.maxAttempts {
			l.failures.Add(1)
			l.logger.Warn("rspamd learn failed", "spam", job.spam, "account", job.account,
				"attempts", attempt, "err", err)
			return
		}
		select {
		case <-time.After(wait):
		case <-l.ctx.Done():
			l.dropped.Add(1)
			return
		}
		l.retries.Add(1)
		wait = min(2*wait, maxBackoff)
	}
}

// permanentError is a failure a retry cannot mend (the message is gone, the password is
// wrong, rspamd refuses the message).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

type learnOutcome int

const (
	outcomeLearned learnOutcome = iota
	outcomeSkipped              // rspamd had nothing to learn (204), or knew the message (208)
)

// post sends job's message once.
func (l *Learner) post(job learnJob) (learnOutcome, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	defer cancel()
	body, err := job.open(ctx)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, &permanentError{err}
		}
		return 0, fmt.Errorf("open message: %w", err)
	}
	defer body.Close()
	endpoint := l.hamURL
	if job.spam {
		endpoint = l.spamURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, body)
	if err != nil {
		return 0, &permanentError{err}
	}
	if l.password != "" {
		req.Header.Set("Password", l.password)
	}
	// The account as the recipient, for a classifier configured per user (rspamd's
	// per_user Bayes reads Deliver-To).
	if err := setHeader(req.Header, "Deliver-To", job.account); err != nil {
		return 0, &permanentError{err}
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("rspamd learn: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var r struct {
		Success bool   `json:"success"`
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(raw, &r) // 204 has no body; the status decides
	switch {
	case resp.StatusCode == http.StatusOK && r.Success:
		return outcomeLearned, nil
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusAlreadyReported:
		// rspamd: 204 when the message has too few tokens or the learn condition says
		// no, 208 when its signature shows it was learnt already.
		return outcomeSkipped, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return 0, fmt.Errorf("rspamd learn: HTTP %d: %s", resp.StatusCode, r.Error)
	default:
		return 0, &permanentError{fmt.Errorf("rspamd learn: HTTP %d: %s", resp.StatusCode, r.Error)}
	}
}

// LearnerStats counts what a Learner did since it started.
type LearnerStats struct {
	Accepted                uint64 // messages Learn queued
	LearnedSpam, LearnedHam uint64 // messages rspamd learnt
	Skipped                 uint64 // messages rspamd declined to learn (too short, known)
	Failures                uint64 // messages given up after their attempts or a permanent error
	Retries                 uint64 // attempts that failed and were tried again
	Dropped                 uint64 // messages not queued (queue full, Learner closed) or abandoned at Close
	Queued                  int    // messages waiting now
}

// Stats returns the counters.
func (l *Learner) Stats() LearnerStats {
	return LearnerStats{
		Accepted: l.accepted.Load(), LearnedSpam: l.learnedSpam.Load(), LearnedHam: l.learnedHam.Load(),
		Skipped: l.skipped.Load(), Failures: l.failures.Load(), Retries: l.retries.Load(),
		Dropped: l.dropped.Load(), Queued: len(l.queue),
	}
}
