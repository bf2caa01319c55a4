package imap

import "testing"

// SetTestHook makes the engine call hook at its test points (testHook in server.go) until
// the test ends. Set it before the test's server starts, so that the server's goroutines
// see it.
func SetTestHook(t testing.TB, hook func(point string)) {
	t.Helper()
	testHook.Store(&hook)
	t.Cleanup(func() { testHook.Store(nil) })
}
