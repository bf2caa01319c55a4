package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/strata-mail/strata/blobstore/gc"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// blobGCTimeout bounds one `strata blob gc` pass, which deletes bodies one by one.
const blobGCTimeout = 30 * time.Minute

var blobVerbs = []adminVerb{{
	use:      "gc [--grace DURATION]",
	short:    "Delete the bodies no message has referenced for the grace period, now",
	deadline: blobGCTimeout,
	args:     cobra.NoArgs,
	flags: func(f *pflag.FlagSet) {
		f.Duration("grace", gc.DefaultGrace, "delete only bodies unreferenced for at least this long")
	},
	service: func(ctx context.Context, conn grpc.ClientConnInterface, cmd *cobra.Command, _ []string) error {
		grace, _ := cmd.Flags().GetDuration("grace")
		if grace <= 0 {
			return fmt.Errorf("--grace must be positive")
		}
		res, err := metadatapb.NewBlobAdminClient(conn).CollectBlobs(ctx, &metadatapb.CollectBlobsRequest{GraceNanos: int64(grace)})
		if err != nil {
			return fmt.Errorf("blob gc: %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "deleted %d unreferenced bodies\n", res.GetDeleted())
		return nil
	},
}}

func newBlobCommand() *cobra.Command {
	return adminGroup("blob", "Manage message bodies in the blob store",
		`blob runs on 'strata serve' (--server) or on the leader of a cluster's metadata group
(--etcd, or --server naming any metadata node: a follower's NOT_LEADER answer is followed),
which runs the collector only when it was started with the frontends' --blob and --s3-* flags.`, blobVerbs)
}
