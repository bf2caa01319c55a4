package replication

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is below slog.LevelDebug: raft's trace output only shows with a handler set that low.
const levelTrace = slog.LevelDebug - 4

// slogHCLogger routes raft's hclog output to a log/slog logger. The hclog name becomes the
// "logger" attribute ("raft", "raft.net", "raft.snapshot").
type slogHCLogger struct {
	logger  *slog.Logger
	name    string
	implied []any
	// minLevel filters below the handler's own level when SetLevel is used; shared by the
	// loggers derived with With and Named, as in hclog.
	minLevel *atomic.Int32
}

func newSlogHCLogger(logger *slog.Logger, name string) *slogHCLogger {
	min := new(atomic.Int32)
	min.Store(int32(hclog.Trace))
	return &slogHCLogger{logger: logger, name: name, minLevel: min}
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (l *slogHCLogger) enabled(level hclog.Level) bool {
	if level == hclog.Off || int32(level) < l.minLevel.Load() {
		return false
	}
	return l.logger.Enabled(context.Background(), slogLevel(level))
}

func (l *slogHCLogger) Log(level hclog.Level, msg string, args ...any) {
	if !l.enabled(level) {
		return
	}
	attrs := make([]any, 0, len(args)+2)
	if l.name != "" {
		attrs = append(attrs, "logger", l.name)
	}
	for _, a := range args {
		// hclog.Fmt values are printf-style: format them as hclog would.
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				a = fmt.Sprintf(format, f[1:]...)
			}
		}
		attrs = append(attrs, a)
	}
	l.logger.Log(context.Background(), slogLevel(level), msg, attrs...)
}

func (l *slogHCLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *slogHCLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *slogHCLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *slogHCLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *slogHCLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *slogHCLogger) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *slogHCLogger) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *slogHCLogger) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *slogHCLogger) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *slogHCLogger) IsError() bool { return l.enabled(hclog.Error) }

func (l *slogHCLogger) ImpliedArgs() []any { return l.implied }

func (l *slogHCLogger) With(args ...any) hclog.Logger {
	c := *l
	c.logger = l.logger.With(args...)
	c.implied = append(append([]any(nil), l.implied...), args...)
	return &c
}

func (l *slogHCLogger) Name() string { return l.name }

func (l *slogHCLogger) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return l.ResetNamed(name)
}

func (l *slogHCLogger) ResetNamed(name string) hclog.Logger {
	c := *l
	c.name = name
	return &c
}

func (l *slogHCLogger) SetLevel(level hclog.Level) { l.minLevel.Store(int32(level)) }

func (l *slogHCLogger) GetLevel() hclog.Level { return hclog.Level(l.minLevel.Load()) }

func (l *slogHCLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

func (l *slogHCLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	logger := l.logger
	if l.name != "" {
		logger = logger.With("logger", l.name)
	}
	return slog.NewLogLogger(logger.Handler(), slogLevel(level)).Writer()
}
