// Package testlog is a log destination for tests: a buffer that a server's goroutines may
// write while the test reads it.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer collects what is written to it; the zero value is ready. It is safe for
// concurrent Write and String.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
