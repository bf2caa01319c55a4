package authz

import (
	"github.com/strata-mail/strata/internal/identity"
	"github.com/strata-mail/strata/proto/clusterpb"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Who may call what: one row per RPC of the services a metadata node (or `strata serve`'s
// admin endpoint) serves. An RPC without a row is refused (TestEveryRPCHasARule fails first).
//
// Callers:
//   - frontends make the data-plane calls for the users they serve (the metadata service
//     checks the acting `user`'s rights itself, RFC 4314), plus what IMAP, LMTP and
//     ManageSieve need of the admin rows (ACLs, Sieve scripts, GetQuota, SetQuota for IMAP
//     SETQUOTA by a tenant-admin account);
//   - metadata nodes join the group and read each other's status;
//   - the cluster administrator may call everything;
//   - a tenant administrator calls only the tenant-scoped rows, and only about its tenant:
//     every account, address, tenant and domain the request names (the fields listed in
//     the row) must be its tenant's, at least one must be named (no "all tenants" answer),
//     and the fields in clusterOnly must be empty (a tenant admin cannot raise its own
//     tenant's quota).
type rule struct {
	callers identity.Kind
	// owners are request fields naming accounts, alias addresses ("local@domain",
	// "@domain") or mailbox owners ("tenant:NAME"); tenants name tenants; domains name
	// domains. They scope a tenant admin's call and are what the audit log records as the
	// target. No secret is ever listed here.
	owners, tenants, domains []string
	// clusterOnly are request fields only a cluster admin may set.
	clusterOnly []string
	// audit marks the calls that change administrative state: they are logged whoever
	// makes them. Every call by an administrator, and every refused call, is logged too.
	audit bool
}

const (
	cluster = identity.ClusterAdmin
	tenant  = identity.TenantAdmin
	front   = identity.Frontend
	node    = identity.Node
)

// Scopes shared by many rows.
var (
	byEmail      = []string{"email"}
	byAccount    = []string{"account"}
	byAccountAct = []string{"account", "user"}
	byTenant     = []string{"tenant"}
)

var rules = map[string]rule{
	// Tenants, domains, accounts.
	metadatapb.Metadata_CreateTenant_FullMethodName:          {callers: cluster, audit: true},
	metadatapb.Metadata_DeleteTenant_FullMethodName:          {callers: cluster, audit: true},
	metadatapb.Metadata_ListTenants_FullMethodName:           {callers: cluster},
	metadatapb.Metadata_AddDomain_FullMethodName:             {callers: cluster | tenant, tenants: byTenant, audit: true},
	metadatapb.Metadata_RemoveDomain_FullMethodName:          {callers: cluster | tenant, tenants: byTenant, domains: []string{"domain"}, audit: true},
	metadatapb.Metadata_CreateAccount_FullMethodName:         {callers: cluster | tenant, owners: byEmail, audit: true},
	metadatapb.Metadata_SetPassword_FullMethodName:           {callers: cluster | tenant, owners: byEmail, audit: true},
	metadatapb.Metadata_DeleteAccount_FullMethodName:         {callers: cluster | tenant, owners: byEmail, audit: true},
	metadatapb.Metadata_SetAccountDisabled_FullMethodName:    {callers: cluster | tenant, owners: byEmail, audit: true},
	metadatapb.Metadata_SetAccountTenantAdmin_FullMethodName: {callers: cluster | tenant, owners: byEmail, audit: true},
	metadatapb.Metadata_ListAccounts_FullMethodName:          {callers: cluster | tenant, tenants: byTenant},
	metadatapb.Metadata_GetAccount_FullMethodName:            {callers: front | cluster | tenant, owners: byEmail},
	metadatapb.Metadata_Authenticate_FullMethodName:          {callers: front | cluster},
	metadatapb.Metadata_CheckCredential_FullMethodName:       {callers: front | cluster},
	metadatapb.Metadata_GuardLogin_FullMethodName:            {callers: front | cluster},
	// SCRAM keys (RFC 5802 3): StoredKey and ServerKey let their holder pose as the server,
	// so only the frontends that run SCRAM exchanges read them.
	metadatapb.Metadata_GetScramCredentials_FullMethodName: {callers: front | cluster},
	// App passwords (`strata user app-password`): the account's tenant admin manages them.
	metadatapb.Metadata_AddAppPassword_FullMethodName:    {callers: cluster | tenant, owners: byEmail, audit: true},
	metadatapb.Metadata_RevokeAppPassword_FullMethodName: {callers: cluster | tenant, owners: byEmail, audit: true},
	metadatapb.Metadata_ListAppPasswords_FullMethodName:  {callers: cluster | tenant, owners: byEmail},

	// Quotas (RFC 9208). Tenant roots are the provider's: a tenant admin sets account roots.
	metadatapb.Metadata_SetQuota_FullMethodName: {callers: front | cluster | tenant, owners: byAccount, clusterOnly: byTenant, audit: true},
	metadatapb.Metadata_GetQuota_FullMethodName: {callers: front | cluster | tenant, owners: byAccount, tenants: byTenant},

	// Delivery settings hold the tenant's resource limits (Sieve sizes, dedup window):
	// the provider sets them.
	metadatapb.Metadata_SetDeliverySettings_FullMethodName: {callers: cluster, audit: true},
	metadatapb.Metadata_GetDeliverySettings_FullMethodName: {callers: front | cluster | tenant, tenants: byTenant},
	metadatapb.Metadata_ResolveRecipient_FullMethodName:    {callers: front | cluster},
	// OAuth issuers (OAUTHBEARER, XOAUTH2): a tenant's admin may point its own tenant at
	// its identity provider; a token still has to name an account of that tenant.
	metadatapb.Metadata_SetOAuthSettings_FullMethodName: {callers: cluster | tenant, tenants: byTenant, audit: true},
	metadatapb.Metadata_GetOAuthSettings_FullMethodName: {callers: front | cluster | tenant, tenants: byTenant},
	metadatapb.Metadata_FindOAuthIssuer_FullMethodName:  {callers: front | cluster},
	// LDAP tenants: the settings name files on the frontend hosts (the bind password), so
	// only the cluster admin sets them; a frontend provisions the accounts of its LDAP
	// logins (the service refuses it for other tenants).
	metadatapb.Metadata_SetLdapSettings_FullMethodName:      {callers: cluster, audit: true},
	metadatapb.Metadata_GetLdapSettings_FullMethodName:      {callers: front | cluster | tenant, tenants: byTenant, domains: []string{"domain"}},
	metadatapb.Metadata_ProvisionLdapAccount_FullMethodName: {callers: front | cluster, owners: byEmail, audit: true},
	metadatapb.Metadata_AddAlias_FullMethodName:             {callers: cluster | tenant, owners: []string{"address", "targets"}, audit: true},
	metadatapb.Metadata_DeleteAlias_FullMethodName:          {callers: cluster | tenant, owners: []string{"address", "targets"}, audit: true},
	metadatapb.Metadata_ListAliases_FullMethodName:          {callers: cluster | tenant, tenants: byTenant, domains: []string{"domain"}},

	// Sieve scripts: an account's, or with tenant and no account the tenant's global ones.
	metadatapb.Metadata_PutSieveScript_FullMethodName:       {callers: front | cluster | tenant, owners: byAccount, tenants: byTenant, audit: true},
	metadatapb.Metadata_DeleteSieveScript_FullMethodName:    {callers: front | cluster | tenant, owners: byAccount, tenants: byTenant, audit: true},
	metadatapb.Metadata_RenameSieveScript_FullMethodName:    {callers: front | cluster | tenant, owners: byAccount, tenants: byTenant, audit: true},
	metadatapb.Metadata_SetActiveSieveScript_FullMethodName: {callers: front | cluster | tenant, owners: byAccount, audit: true},
	metadatapb.Metadata_GetSieveScript_FullMethodName:       {callers: front | cluster | tenant, owners: byAccount, tenants: byTenant},
	metadatapb.Metadata_ListSieveScripts_FullMethodName:     {callers: front | cluster | tenant, owners: byAccount, tenants: byTenant},
	metadatapb.Metadata_GetActiveSieveScript_FullMethodName: {callers: front | cluster | tenant, owners: byAccount},

	// ACLs (RFC 4314) and mailboxes (`strata acl`, `strata mailbox`): the owner, and the
	// acting user when one is given, must be the tenant admin's.
	metadatapb.Metadata_SetAcl_FullMethodName:        {callers: front | cluster | tenant, owners: byAccountAct, audit: true},
	metadatapb.Metadata_DeleteAcl_FullMethodName:     {callers: front | cluster | tenant, owners: byAccountAct, audit: true},
	metadatapb.Metadata_GetAcl_FullMethodName:        {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_ListMailboxes_FullMethodName: {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_GetMailbox_FullMethodName:    {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_CreateMailbox_FullMethodName: {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_DeleteMailbox_FullMethodName: {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_RenameMailbox_FullMethodName: {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_SetSubscribed_FullMethodName: {callers: front | cluster | tenant, owners: byAccount},
	// Migration (`strata migrate`, `strata import`): an append that keeps the UIDs and
	// UIDVALIDITY of the server the mail comes from, into the tenant admin's accounts.
	metadatapb.Metadata_ImportMessages_FullMethodName: {callers: cluster | tenant, owners: byAccount, audit: true},
	// `strata index thread-numbers`: numbers an account's old mailboxes now (what the
	// leader does in the background), changing nothing a client sees.
	metadatapb.Metadata_NumberAccountMessages_FullMethodName: {callers: cluster | tenant, owners: byAccount, audit: true},
	// What else `strata migrate` calls on a target account, so that a tenant admin
	// migrates its own tenant's accounts: the copy record (an RFC 5464 annotation), the
	// listing with source UIDs, and the source's flag changes and expunges. A tenant
	// admin sets its users' passwords already, so reading and changing their mailboxes
	// through these gives it nothing it could not do over IMAP; each call is audited.
	metadatapb.Metadata_ListMessages_FullMethodName: {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_StoreFlags_FullMethodName:   {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_Expunge_FullMethodName:      {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_SetMetadata_FullMethodName:  {callers: front | cluster | tenant, owners: byAccountAct},
	metadatapb.Metadata_GetMetadata_FullMethodName:  {callers: front | cluster | tenant, owners: byAccountAct},

	// Messages, change feeds, annotations, delivery marks: the data plane.
	metadatapb.Metadata_Append_FullMethodName:             {callers: front | cluster},
	metadatapb.Metadata_FetchMessages_FullMethodName:      {callers: front | cluster},
	metadatapb.Metadata_ReadSortColumn_FullMethodName:     {callers: front | cluster},
	metadatapb.Metadata_Copy_FullMethodName:               {callers: front | cluster},
	metadatapb.Metadata_ListVanished_FullMethodName:       {callers: front | cluster},
	metadatapb.Metadata_SearchText_FullMethodName:         {callers: front | cluster},
	metadatapb.Metadata_RebuildSearchIndex_FullMethodName: {callers: cluster, audit: true},
	metadatapb.Metadata_ClaimRecent_FullMethodName:        {callers: front | cluster},
	metadatapb.Metadata_Watch_FullMethodName:              {callers: front | cluster},
	metadatapb.Metadata_WatchAccount_FullMethodName:       {callers: front | cluster},
	metadatapb.Metadata_CheckMarks_FullMethodName:         {callers: front | cluster},
	metadatapb.Metadata_SetMarks_FullMethodName:           {callers: front | cluster},

	// Blob garbage collection: a process holding the blob store, or an admin.
	metadatapb.Metadata_MarkBlobsDeleting_FullMethodName: {callers: front | cluster, audit: true},
	metadatapb.Metadata_ForgetBlobs_FullMethodName:       {callers: front | cluster, audit: true},
	metadatapb.BlobAdmin_CollectBlobs_FullMethodName:     {callers: cluster, audit: true},
	metadatapb.Backup_HoldBlobs_FullMethodName:           {callers: cluster, audit: true},
	metadatapb.Backup_Snapshot_FullMethodName:            {callers: cluster, audit: true},

	// Cluster membership.
	clusterpb.ClusterAdmin_Join_FullMethodName:               {callers: node | cluster, audit: true},
	clusterpb.ClusterAdmin_Remove_FullMethodName:             {callers: cluster, audit: true},
	clusterpb.ClusterAdmin_TransferLeadership_FullMethodName: {callers: cluster, audit: true},
	clusterpb.ClusterAdmin_Status_FullMethodName:             {callers: node | cluster},
}
