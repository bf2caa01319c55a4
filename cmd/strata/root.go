package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "strata",
		Short: "Strata, a distributed mail store with stateless IMAP frontends",
		Long: `Strata stores mail for many tenants: stateless IMAP frontends, a Raft-replicated
metadata service and message bodies in object storage. 'strata serve' runs all of it in
one process for a single machine.

Every flag can also be set with a STRATA_<FLAG> environment variable (STRATA_IMAP_LISTEN
for --imap-listen) or in the YAML file named by --config, whose keys are the flag names.
Flags win over the environment, which wins over the file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyConfig(cmd)
		},
	}
	root.PersistentFlags().String("config", "", "YAML configuration file (keys are flag names)")
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(newServeCommand(), newUserCommand(), newTenantCommand(), newBenchCommand(), newBlobCommand(), newMetadataCommand(), newClusterCommand())
	root.AddCommand(newFrontendCommand())
	root.AddCommand(newDomainCommand(), newQuotaCommand())
	root.AddCommand(newACLCommand(), newMailboxCommand())
	root.AddCommand(newAliasCommand(), newSieveCommand())
	root.AddCommand(newAdminCommand())
	root.AddCommand(newCertCommand())
	root.AddCommand(newHealthCommand())
	root.AddCommand(newMigrateCommand(), newImportCommand(), newExportCommand())
	root.AddCommand(newIndexCommand())
	root.AddCommand(newBackupCommand(), newRestoreCommand())
	return root
}
