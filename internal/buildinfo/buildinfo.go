// Package buildinfo names the build of the running binary, for what nodes report about
// themselves (clusterpb.StatusResponse.version): replicas of one group compare their state
// machines' digests only when they run one build, since the stored layout may differ
// between builds (docs/operations.md, "Upgrades").
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Version is what the build was stamped with (the Makefile's VERSION, `git describe`),
// else the main module's version when the binary was built from a tagged module (go
// install ...@v1.2.3), else the VCS revision `go build` stamped in it (12 hex digits,
// "-dirty" when the tree had changes), else "(devel)" (a test binary, -buildvcs=false).
func Version() string { return version() }

// stamped is set at link time: -ldflags '-X github.com/strata-mail/strata/internal/buildinfo.stamped=v1.2.3'.
var stamped string

var version = sync.OnceValue(func() string {
	if stamped != "" {
		return stamped
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return fromBuildInfo(info)
})

func fromBuildInfo(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision == "" {
		return "(devel)"
	}
	revision = revision[:min(len(revision), 12)]
	if modified {
		revision += "-dirty"
	}
	return revision
}
