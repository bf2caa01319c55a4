package connserver

import (
	"net"
	"time"
)

// DeadlineWriter gives every write to a client a deadline, Timeout from its start, so that a
// client that stops reading cannot hold its connection's goroutine, nor the responses
// queued for it, forever: the write fails with a timeout (os.ErrDeadlineExceeded) and the
// connection ends.
type DeadlineWriter struct {
	Conn    net.Conn
	Timeout time.Duration
}

func (w DeadlineWriter) Write(p []byte) (int, error) {
	if err := w.Conn.SetWriteDeadline(time.Now().Add(w.Timeout)); err != nil {
		return 0, err
	}
	return w.Conn.Write(p)
}
