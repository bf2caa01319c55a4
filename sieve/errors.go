package sieve

import (
	"errors"
	"fmt"
)

// Pos is a position in a script: 1-based line and column (column counts bytes).
type Pos struct {
	Line, Column int
}

// Error is a compile error: where in which script, and what is wrong.
type Error struct {
	Script string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Script, e.Line, e.Column, e.Msg)
}

// RuntimeError is an error raised while a script runs (a resource limit, an
// action conflict, a missing included script). The result that accompanies it
// falls back to the implicit keep.
type RuntimeError struct {
	Script string
	Line   int
	Column int
	Msg    string
	// Err is the sentinel the error wraps, if any (ErrLimit, ErrScriptNotFound).
	Err error
}

func (e *RuntimeError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Script, e.Line, e.Column, e.Msg)
}

func (e *RuntimeError) Unwrap() error { return e.Err }

// ErrLimit is wrapped by every runtime error caused by a resource limit.
var ErrLimit = errors.New("sieve: resource limit exceeded")

// ErrScriptNotFound is returned by a ScriptLoader for a script that does not exist.
var ErrScriptNotFound = errors.New("sieve: script not found")
