// Command strata is the one Strata binary: the all-in-one server (`serve`), and the admin
// commands that talk to a running server through its gRPC endpoint.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "strata:", err)
		os.Exit(1)
	}
}
