package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/strata-mail/strata/blobstore/gc"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// blobGCTimeout bounds one `strata blob gc` pass, which deletes bodies one by one.
const blobGCTimeout = 30 * time.Minute

func newBlobCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "blob", Short: "Manage message bodies in the blob store"}
	addServerFlag(cmd)
	collect := &cobra.Command{
		Use:   "gc [--grace DURATION]",
		Short: "Delete the bodies no message has referenced for the grace period, now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			grace, _ := cmd.Flags().GetDuration("grace")
			if grace <= 0 {
				return fmt.Errorf("--grace must be positive")
			}
			addr, _ := cmd.Flags().GetString("server")
			creds, err := adminCreds(cmd.Flags())
			if err != nil {
				return err
			}
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				return fmt.Errorf("connect to %s: %w", addr, err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), blobGCTimeout)
			defer cancel()
			res, err := metadatapb.NewBlobAdminClient(conn).CollectBlobs(ctx, &metadatapb.CollectBlobsRequest{GraceNanos: int64(grace)})
			if err != nil {
				return fmt.Errorf("blob gc: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d unreferenced bodies\n", res.GetDeleted())
			return nil
		},
	}
	collect.Flags().Duration("grace", gc.DefaultGrace, "delete only bodies unreferenced for at least this long")
	cmd.AddCommand(collect)
	return cmd
}
