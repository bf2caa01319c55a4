package sieve

// Limits bound what one script may cost. Compile enforces MaxScriptSize and
// MaxNesting; Execute enforces the rest and fails with an error wrapping
// ErrLimit, and the result falls back to the implicit keep.
type Limits struct {
	MaxScriptSize   int // bytes of source
	MaxNesting      int // blocks and tests nested in each other
	MaxSteps        int // commands and tests evaluated in one execution, includes counted
	MaxActions      int // actions in one result (Pigeonhole's sieve_max_actions)
	MaxRedirects    int // distinct redirects per message (Pigeonhole's sieve_max_redirects)
	MaxIncludeDepth int // RFC 6609 3.2: nested includes
	MaxVariableSize int // bytes; longer values are truncated (RFC 5229 3 allows a limit)
	// VacationMinPeriod, VacationMaxPeriod and VacationDefaultPeriod are in
	// seconds (RFC 5230 4.1, RFC 6131 2: the site sets the bounds).
	VacationMinPeriod     int64
	VacationMaxPeriod     int64
	VacationDefaultPeriod int64
	// DuplicateDefaultPeriod and DuplicateMaxPeriod are in seconds (RFC 7352 3.1).
	DuplicateDefaultPeriod int64
	DuplicateMaxPeriod     int64
}

// DefaultLimits are Pigeonhole's defaults where it has them.
var DefaultLimits = Limits{
	MaxScriptSize:          1 << 20,
	MaxNesting:             32,
	MaxSteps:               100000,
	MaxActions:             32,
	MaxRedirects:           4,
	MaxIncludeDepth:        10,
	MaxVariableSize:        4096,
	VacationMinPeriod:      86400,
	VacationMaxPeriod:      1 << 53, // no maximum, as Pigeonhole's default
	VacationDefaultPeriod:  7 * 86400,
	DuplicateDefaultPeriod: 14 * 86400,
	DuplicateMaxPeriod:     7 * 86400 * 52,
}

// withDefaults fills every zero field from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set64 := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxScriptSize, d.MaxScriptSize)
	set(&l.MaxNesting, d.MaxNesting)
	set(&l.MaxSteps, d.MaxSteps)
	set(&l.MaxActions, d.MaxActions)
	set(&l.MaxRedirects, d.MaxRedirects)
	set(&l.MaxIncludeDepth, d.MaxIncludeDepth)
	set(&l.MaxVariableSize, d.MaxVariableSize)
	set64(&l.VacationMinPeriod, d.VacationMinPeriod)
	set64(&l.VacationMaxPeriod, d.VacationMaxPeriod)
	set64(&l.VacationDefaultPeriod, d.VacationDefaultPeriod)
	set64(&l.DuplicateDefaultPeriod, d.DuplicateDefaultPeriod)
	set64(&l.DuplicateMaxPeriod, d.DuplicateMaxPeriod)
	return l
}
