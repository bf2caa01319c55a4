package spam_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mail/strata/internal/rspamdtest"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/spam"
)

func learner(t *testing.T, cfg spam.LearnerConfig) *spam.Learner {
	t.Helper()
	l, err := spam.NewLearner(cfg)
	if err != nil {
		t.Fatalf("NewLearner: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

// opener returns an OpenFunc of msg that counts its calls.
func opener(msg string, calls *atomic.Int64) spam.OpenFunc {
	return func(context.Context) (io.ReadCloser, error) {
		calls.Add(1)
		return io.NopCloser(strings.NewReader(msg)), nil
	}
}

// waitStats waits until the learner's counters satisfy ok.
func waitStats(t *testing.T, l *spam.Learner, what string, ok func(spam.LearnerStats) bool) {
	t.Helper()
	testwait.Until(t, time.Minute, func() error {
		if st := l.Stats(); !ok(st) {
			return fmt.Errorf("stats %+v, want %s", st, what)
		}
		return nil
	})
}

// TestLearnSpamAndHam: messages given to Learn reach rspamd's Bayes classifier as spam
// and ham (its counters in redis).
func TestLearnSpamAndHam(t *testing.T) {
	srv := rspamd(t)
	spamBefore, err := srv.Learns(true)
	if err != nil {
		t.Fatal(err)
	}
	hamBefore, err := srv.Learns(false)
	if err != nil {
		t.Fatal(err)
	}
	l := learner(t, spam.LearnerConfig{ControllerURL: srv.ControllerURL, Password: rspamdtest.Password})
	junk := message("Cheap pills", "Winner! Claim your lottery prize now, cheap pills and casino bonus.")
	var calls atomic.Int64
	l.Learn(true, "demo@example.com", opener(junk, &calls))
	l.Learn(false, "demo@example.com", opener(message("Minutes", "The minutes of Tuesday's meeting are attached."), &calls))
	waitStats(t, l, "1 spam and 1 ham learnt", func(st spam.LearnerStats) bool { return st.LearnedSpam == 1 && st.LearnedHam == 1 })
	if got, _ := srv.Learns(true); got != spamBefore+1 {
		t.Errorf("rspamd learns_spam = %d, want %d", got, spamBefore+1)
	}
	if got, _ := srv.Learns(false); got != hamBefore+1 {
		t.Errorf("rspamd learns_ham = %d, want %d", got, hamBefore+1)
	}
	if st := l.Stats(); st.Failures != 0 || st.Retries != 0 || st.Dropped != 0 || calls.Load() != 2 {
		t.Errorf("stats %+v after %d opens", st, calls.Load())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(l)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	learnt := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "strata_spam_learned_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			learnt[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if learnt["spam"] != 1 || learnt["ham"] != 1 {
		t.Errorf("strata_spam_learned_total = %v, want spam 1 and ham 1", learnt)
	}
}

// TestLearnFailures: a wrong password and a message that is gone fail at once; an
// unreachable controller is retried, then given up.
func TestLearnFailures(t *testing.T) {
	srv := rspamd(t)
	var calls atomic.Int64
	t.Run("password", func(t *testing.T) {
		l := learner(t, spam.LearnerConfig{ControllerURL: srv.ControllerURL, Password: "wrong", Backoff: time.Millisecond})
		l.Learn(true, "demo@example.com", opener(message("x", "some words to learn here"), &calls))
		waitStats(t, l, "1 failure", func(st spam.LearnerStats) bool { return st.Failures == 1 })
		if st := l.Stats(); st.Retries != 0 || st.LearnedSpam != 0 {
			t.Errorf("stats %+v: an unauthorized learn was retried or counted", st)
		}
	})
	t.Run("gone", func(t *testing.T) {
		l := learner(t, spam.LearnerConfig{ControllerURL: srv.ControllerURL, Password: rspamdtest.Password, Backoff: time.Millisecond})
		l.Learn(true, "demo@example.com", func(context.Context) (io.ReadCloser, error) {
			return nil, fmt.Errorf("message 7: %w", fs.ErrNotExist)
		})
		waitStats(t, l, "1 failure", func(st spam.LearnerStats) bool { return st.Failures == 1 })
		if st := l.Stats(); st.Retries != 0 {
			t.Errorf("stats %+v: a gone message was retried", st)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		l := learner(t, spam.LearnerConfig{ControllerURL: "http://" + closedPort(t), MaxAttempts: 3, Backoff: time.Millisecond})
		l.Learn(false, "demo@example.com", opener(message("x", "y"), &calls))
		waitStats(t, l, "1 failure after 2 retries", func(st spam.LearnerStats) bool { return st.Failures == 1 })
		if st := l.Stats(); st.Retries != 2 {
			t.Errorf("stats %+v, want 2 retries", st)
		}
	})
	t.Run("open fails", func(t *testing.T) {
		l := learner(t, spam.LearnerConfig{ControllerURL: srv.ControllerURL, MaxAttempts: 2, Backoff: time.Millisecond})
		l.Learn(false, "demo@example.com", func(context.Context) (io.ReadCloser, error) {
			return nil, errors.New("metadata unavailable")
		})
		waitStats(t, l, "1 failure after 1 retry", func(st spam.LearnerStats) bool { return st.Failures == 1 && st.Retries == 1 })
	})
}

// TestLearnNeverBlocks: Learn returns while every worker is busy and the queue is full;
// what does not fit is dropped and counted, and so is what comes after Close.
func TestLearnNeverBlocks(t *testing.T) {
	srv := rspamd(t)
	l, err := spam.NewLearner(spam.LearnerConfig{ControllerURL: srv.ControllerURL, Password: rspamdtest.Password,
		QueueSize: 1, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	l.Learn(true, "demo@example.com", func(ctx context.Context) (io.ReadCloser, error) {
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, fs.ErrNotExist
	})
	<-started // the one worker holds the first message
	var calls atomic.Int64
	l.Learn(true, "demo@example.com", opener(message("queued", "z"), &calls)) // fills the queue
	l.Learn(true, "demo@example.com", opener(message("dropped", "z"), &calls))
	if st := l.Stats(); st.Dropped != 1 || st.Queued != 1 || st.Accepted != 2 {
		t.Errorf("stats %+v, want 2 accepted, 1 queued and 1 dropped", st)
	}
	close(release)
	waitStats(t, l, "the blocked message failed", func(st spam.LearnerStats) bool { return st.Failures == 1 })
	l.Close()
	l.Learn(true, "demo@example.com", opener(message("late", "z"), &calls))
	st := l.Stats()
	if st.Failures != 1 || st.Queued != 0 || st.Dropped+st.Skipped+st.LearnedSpam != 3 {
		t.Errorf("stats %+v after Close: want the blocked one failed and the others dropped or learnt", st)
	}
}

// TestLearnerBadConfig: configurations that cannot work are refused at start.
func TestLearnerBadConfig(t *testing.T) {
	for _, cfg := range []spam.LearnerConfig{
		{ControllerURL: ""},
		{ControllerURL: "localhost:11334"},
		{ControllerURL: "http://h", Password: "a\r\nb"},
		{ControllerURL: "http://h", QueueSize: -1},
		{ControllerURL: "http://h", Backoff: -time.Second},
	} {
		if l, err := spam.NewLearner(cfg); err == nil {
			l.Close()
			t.Errorf("NewLearner(%+v) accepted", cfg)
		}
	}
}
