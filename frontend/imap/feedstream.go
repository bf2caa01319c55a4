package imap

import (
	"context"
	"log/slog"
	"time"
)

// Bounds of the wait between a change feed's broken stream and the next one.
const (
	feedBackoffMin = 100 * time.Millisecond
	feedBackoffMax = 5 * time.Second
)

// recver is a server-streaming RPC's client side (grpc.ServerStreamingClient).
type recver[T any] interface {
	Recv() (*T, error)
}

// followStream keeps one server stream of a change feed open until ctx ends: it opens a
// stream with open, passes each message received to deliver, and after the stream fails asks
// final whether that failure ends the feed (final does what that end needs and returns true)
// or the stream is opened again, after a wait that doubles from feedBackoffMin to
// feedBackoffMax and falls back to feedBackoffMin once a message arrives. what names the feed
// in the log.
func followStream[T any](ctx context.Context, log *slog.Logger, what string,
	open func(context.Context) (recver[T], error), deliver func(*T), final func(error) bool) {
	backoff := feedBackoffMin
	for {
		err := readStream(ctx, open, func(msg *T) {
			deliver(msg)
			backoff = feedBackoffMin
		})
		if ctx.Err() != nil || final(err) {
			return
		}
		log.Warn(what+" interrupted; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, feedBackoffMax)
	}
}

// readStream reads one stream until it fails, and returns its error.
func readStream[T any](ctx context.Context, open func(context.Context) (recver[T], error), deliver func(*T)) error {
	stream, err := open(ctx)
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		deliver(msg)
	}
}
