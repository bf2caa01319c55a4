package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newHealthCommand is `strata health ready|live ADDR`: a probe client for images that have
// nothing else (the Strata image is FROM scratch, without curl), such as the health checks
// of deploy/compose.yaml. Kubernetes asks the probes with httpGet and needs none of this.
func newHealthCommand() *cobra.Command {
	return verbGroup("health", "Ask a running process's health probes (for container health checks)",
		`health asks the /readyz or /healthz probe of a strata process at ADDR, the address of its
--metrics-listen (host:port, or an http:// URL), prints the answer and exits 0 when it is
200, 1 otherwise (docs/operations.md).`, healthVerbs)
}

// healthVerbs are the `strata health` subcommands: one per probe.
var healthVerbs = []adminVerb{
	probeVerb("ready", "/readyz", "Exit 0 when the process at ADDR is ready for traffic"),
	probeVerb("live", "/healthz", "Exit 0 when the process at ADDR is alive"),
}

// probeVerb is the verb that asks path.
func probeVerb(name, path, short string) adminVerb {
	return adminVerb{
		use:   name + " ADDR",
		short: short,
		args:  cobra.ExactArgs(1),
		flags: func(f *pflag.FlagSet) {
			f.Duration("timeout", 3*time.Second, "how long to wait for the answer")
		},
		local: func(cmd *cobra.Command, args []string) error {
			timeout, _ := cmd.Flags().GetDuration("timeout")
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			code, body, err := askProbe(ctx, args[0], path)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), body)
			if code != http.StatusOK {
				return fmt.Errorf("%s answered %d", path, code)
			}
			return nil
		},
	}
}

// maxProbeBody bounds what askProbe reads of an answer (a probe's is a few lines).
const maxProbeBody = 64 << 10

// askProbe GETs path from addr (host:port, or a URL with its scheme) and returns the status
// code and the body.
func askProbe(ctx context.Context, addr, path string) (int, string, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return 0, "", fmt.Errorf("probe %s: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("probe %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	if err != nil {
		return 0, "", fmt.Errorf("probe %s: read the answer: %w", addr, err)
	}
	return resp.StatusCode, string(body), nil
}
