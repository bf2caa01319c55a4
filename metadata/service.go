package metadata

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
)

const (
	// defaultRPCTimeout bounds an RPC whose caller set no deadline.
	defaultRPCTimeout = 10 * time.Second
	// fetchChunk is how many records FetchMessages reads per consistent view; the
	// view is released while they are sent, so a slow client holds no store state.
	fetchChunk = 256
	// watchChunk bounds the changes of one ChangeBatch sent by Watch.
	watchChunk = 1024
	// NotLeaderReason is metadatapb's (proto/metadatapb/headers.go).
	NotLeaderReason = metadatapb.NotLeaderReason
	errorDomain     = "metadata.strata-mail"
)

var (
	_ metadatapb.MetadataServer = (*Service)(nil)
	_ replication.StateMachine  = (*FSM)(nil)
)

// Service implements metadatapb.MetadataServer on one Raft group: writes are Raft
// commands, reads are linearizable reads of the local FSM.
type Service struct {
	metadatapb.UnimplementedMetadataServer
	node   *replication.Node
	fsm    *FSM
	logger *slog.Logger
	// clockOffset is added to the wall clock that stamps commands (SetClockOffset).
	clockOffset time.Duration
	// scram is the SCRAM key derivation of passwords (credentials.go, SetScram).
	scram ScramConfig
	// guard counts failed logins and refuses attempts over its limits (authguard.go).
	guard *AuthGuard
	// textIndex answers SearchText (searchtext.go); nil when the node keeps none.
	textIndex TextIndex
	// groupLevel reports the group's feature level (featurelevel.go); nil: see
	// SetGroupFeatureLevel.
	groupLevel GroupFeatureLevel
	// groupLevelCache is the group's level as last learned, stamped on the commands
	// (stampLevel).
	groupLevelCache groupLevelCache
}

// SetClockOffset makes this node stamp the commands it proposes with its wall clock plus d, to
// play a node whose clock is wrong. The state machine's log clock is the proposing leader's
// clock, never moving backwards (advanceClock); it drives dedup windows, blob GC grace and
// journal retention, and request IDs, dedup keys and marks are kept until the retry horizon
// (a log position, apply.go) passes them too, so a jump cannot cut a retry short. The
// fault-injection tests (jepsen/nemesis' clock-jump) use this, through the hidden
// --clock-offset flag, to jump it. Call it before serving.
func (s *Service) SetClockOffset(d time.Duration) { s.clockOffset = d }

// NewService returns the gRPC service over node, whose state machine is fsm.
func NewService(node *replication.Node, fsm *FSM, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{node: node, fsm: fsm, logger: logger.With("component", "metadata-service"), guard: NewAuthGuard(AuthGuardConfig{})}
}

// SetAuthGuard replaces the default brute-force guard (authguard.go). Call it before
// serving.
func (s *Service) SetAuthGuard(g *AuthGuard) { s.guard = g }

// AuthGuard returns the service's brute-force guard, a prometheus.Collector of its metrics.
func (s *Service) AuthGuard() *AuthGuard { return s.guard }

func withDefaultDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultRPCTimeout)
}

// replicationStatus maps an error of the replication layer to a gRPC status.
func replicationStatus(op string, err error) error {
	var nl replication.NotLeaderError
	switch {
	case errors.As(err, &nl):
		st := status.New(codes.Unavailable, fmt.Sprintf("%s: %v", op, nl))
		if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{
			Reason:   NotLeaderReason,
			Domain:   errorDomain,
			Metadata: map[string]string{"leader_id": nl.LeaderID, "leader_addr": nl.LeaderAddr},
		}); derr == nil {
			st = withInfo
		}
		return st.Err()
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: %v", op, err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.Unavailable, "%s timed out, outcome unknown; retry with the same request_id: %v", op, err)
	default:
		return status.Errorf(codes.Unavailable, "%s: %v", op, err)
	}
}

// propose replicates cmd and returns its result, or its refusal as a gRPC status.
func (s *Service) propose(ctx context.Context, requestID string, cmd *metadatapb.Command) (*metadatapb.CommandResult, error) {
	if requestID == "" {
		return nil, status.Error(codes.InvalidArgument, "request_id is required")
	}
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	cmd.RequestId = requestID
	cmd.TimestampUnixNano = time.Now().Add(s.clockOffset).UnixNano()
	level := s.stampLevel(ctx)
	cmd.FeatureLevel = &level
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode command: %v", err)
	}
	start := time.Now()
	resp, err := s.node.Apply(ctx, data)
	if err != nil {
		return nil, replicationStatus("apply", err)
	}
	s.fsm.metrics.observeCommit(time.Since(start))
	res, isResult := resp.(*metadatapb.CommandResult)
	if !isResult || res == nil {
		return nil, status.Errorf(codes.Internal, "state machine returned %T", resp)
	}
	if codes.Code(res.GetCode()) != codes.OK {
		return nil, commandStatus(res)
	}
	return res, nil
}

// proposeFor proposes cmd (propose) and returns what result takes from the command's
// result: what a gRPC call that is one command answers.
func proposeFor[R any](ctx context.Context, s *Service, requestID string, cmd *metadatapb.Command, result func(*metadatapb.CommandResult) R) (R, error) {
	res, err := s.propose(ctx, requestID, cmd)
	if err != nil {
		var none R
		return none, err
	}
	return result(res), nil
}

// read waits for the read point the request asked for (linearizable, or session
// consistent: consistency.go) and returns a view of the FSM.
func (s *Service) read(ctx context.Context) (*view, error) {
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	if err := s.readPoint(ctx); err != nil {
		return nil, err
	}
	return s.fsm.view(), nil
}

func storageStatus(err error) error {
	return status.Errorf(codes.Internal, "read metadata store: %v", err)
}

// account normalises an account address from a request; an invalid one cannot
// exist, so it fails like an unknown one.
func accountName(email string) string {
	n, _ := NormalizeEmail(email)
	return n
}

func (s *Service) CreateTenant(ctx context.Context, req *metadatapb.CreateTenantRequest) (*metadatapb.Tenant, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_CreateTenant{CreateTenant: req}}, (*metadatapb.CommandResult).GetTenant)
}

func (s *Service) ListTenants(ctx context.Context, _ *metadatapb.ListTenantsRequest) (*metadatapb.ListTenantsResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	tenants, err := v.tenants()
	if err != nil {
		return nil, storageStatus(err)
	}
	return &metadatapb.ListTenantsResponse{Tenants: tenants}, nil
}

func checkPassword(pw string) error {
	if len(pw) > maxPasswordLen {
		return status.Errorf(codes.InvalidArgument, "password longer than %d bytes", maxPasswordLen)
	}
	return nil
}

// CreateAccount hashes the password before proposing: the Raft log and the store
// only ever hold the hash.
func (s *Service) CreateAccount(ctx context.Context, req *metadatapb.CreateAccountRequest) (*metadatapb.Account, error) {
	if err := checkPassword(req.GetPassword()); err != nil {
		return nil, err
	}
	var hash string
	if req.GetPassword() != "" {
		var err error
		if hash, err = HashPassword(req.GetPassword()); err != nil {
			return nil, status.Errorf(codes.Internal, "hash password: %v", err)
		}
	}
	keys, err := s.scramKeys(req.GetPassword())
	if err != nil {
		return nil, err
	}
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_CreateAccount{
		CreateAccount: &metadatapb.CreateAccountCommand{Email: req.GetEmail(), PasswordHash: hash, Scram: keys},
	}})
	if err != nil {
		return nil, err
	}
	return res.GetAccount(), nil
}

func (s *Service) SetPassword(ctx context.Context, req *metadatapb.SetPasswordRequest) (*metadatapb.Account, error) {
	if req.GetPassword() == "" {
		return nil, status.Error(codes.InvalidArgument, "empty password")
	}
	if err := checkPassword(req.GetPassword()); err != nil {
		return nil, err
	}
	hash, err := HashPassword(req.GetPassword())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "hash password: %v", err)
	}
	keys, err := s.scramKeys(req.GetPassword())
	if err != nil {
		return nil, err
	}
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetPassword{
		SetPassword: &metadatapb.SetPasswordCommand{Email: accountName(req.GetEmail()), PasswordHash: hash, Scram: keys},
	}})
	if err != nil {
		return nil, err
	}
	return res.GetAccount(), nil
}

func (s *Service) DeleteAccount(ctx context.Context, req *metadatapb.DeleteAccountRequest) (*metadatapb.DeleteAccountResponse, error) {
	req.Email = accountName(req.GetEmail())
	if _, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: req}}); err != nil {
		return nil, err
	}
	return &metadatapb.DeleteAccountResponse{}, nil
}

func (s *Service) ListAccounts(ctx context.Context, req *metadatapb.ListAccountsRequest) (*metadatapb.ListAccountsResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	accounts, err := v.accounts(req.GetTenant())
	if err != nil {
		return nil, storageStatus(err)
	}
	return &metadatapb.ListAccountsResponse{Accounts: accounts}, nil
}

// Authenticate checks a password. Unknown, disabled and password-less accounts
// fail exactly like a wrong password, after the same argon2id work. With a service, an
// app password scoped to it is accepted too (credentials.go), without the argon2id work.
func (s *Service) Authenticate(ctx context.Context, req *metadatapb.AuthenticateRequest) (*metadatapb.Account, error) {
	if err := checkPassword(req.GetPassword()); err != nil {
		return nil, err
	}
	email := accountName(req.GetEmail())
	// Only the leader gets here (s.readAccount): its guard is the one every frontend
	// shares. An attempt over the limits is refused before any hashing (authguard.go), app
	// passwords included.
	rec, found, err := s.readAccount(ctx, email)
	if err != nil {
		return nil, err
	}
	if err := s.guard.Admit(email, req.GetRemoteIp()); err != nil {
		return nil, err
	}
	if found && !rec.GetAccount().GetDisabled() {
		if ap := matchAppPassword(rec, req.GetService(), req.GetPassword()); ap != nil {
			s.guard.Succeeded(email, req.GetRemoteIp())
			account := s.appPasswordLogin(ctx, rec, ap)
			account.CredentialStamp = appPasswordStamp(ap)
			return account, nil
		}
	}
	usable := found && !rec.GetAccount().GetDisabled() && rec.GetPasswordHash() != ""
	hash := dummyHash()
	if usable {
		hash = rec.GetPasswordHash()
	}
	select {
	case argonSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	matched := VerifyPassword(hash, req.GetPassword())
	<-argonSlots
	if !matched || !usable {
		s.guard.Failed(email, req.GetRemoteIp())
		return nil, status.Error(codes.Unauthenticated, "invalid credentials")
	}
	s.guard.Succeeded(email, req.GetRemoteIp())
	account := rec.GetAccount()
	account.CredentialStamp = credentialStamp(rec.GetPasswordHash())
	return s.loginAnswer(account), nil
}

// CheckCredential confirms a login a frontend verified earlier (Authenticate) without
// hashing the password again: the stamp must be the current password hash's, compared in
// constant time, and the account enabled. Every refusal is the one Unauthenticated error,
// as in Authenticate. It reads on the leader like Authenticate (not a session read), so a
// password change, disable or delete committed before the call refuses it.
func (s *Service) CheckCredential(ctx context.Context, req *metadatapb.CheckCredentialRequest) (*metadatapb.Account, error) {
	email := accountName(req.GetEmail())
	rec, found, err := s.readAccount(ctx, email)
	if err != nil {
		return nil, err
	}
	// A cached password is refused like any other while its pair or address is locked or
	// throttled: a right guess must not get through a lockout because another session of
	// the user put it in a frontend's cache. Its refusal is not a failure (the frontend
	// goes on to Authenticate, which counts).
	if err := s.guard.Admit(email, req.GetRemoteIp()); err != nil {
		return nil, err
	}
	ap, ok := credentialLogsIn(rec, found, req.GetService(), req.GetCredentialStamp())
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "invalid credentials")
	}
	s.guard.Succeeded(email, req.GetRemoteIp())
	if ap != nil {
		return s.appPasswordLogin(ctx, rec, ap), nil
	}
	return s.loginAnswer(rec.GetAccount()), nil
}

// credentialLogsIn reports whether stamp (an earlier login's Account.credential_stamp)
// still logs in to service: the account is enabled and the stamp is its current password
// hash's, or that of one of its app passwords scoped to service (returned). Compared in
// constant time.
func credentialLogsIn(rec *metadatapb.AccountRecord, found bool, service string, stamp []byte) (*metadatapb.AppPasswordRecord, bool) {
	if !found || rec.GetAccount().GetDisabled() {
		return nil, false
	}
	if ap := matchAppPasswordStamp(rec, service, stamp); ap != nil {
		return ap, true
	}
	return nil, rec.GetPasswordHash() != "" && subtle.ConstantTimeCompare(credentialStamp(rec.GetPasswordHash()), stamp) == 1
}

// GuardLogin runs the brute-force guard for a login the frontend checked itself (a SCRAM
// proof, an OAuth token, an LDAP bind): admit, then record the outcome reported. Only the
// leader answers (s.read is linearizable here), so its guard is the one Authenticate uses.
func (s *Service) GuardLogin(ctx context.Context, req *metadatapb.GuardLoginRequest) (*metadatapb.GuardLoginResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	v.close()
	// As in Authenticate: a name that is no address (or none) counts as the account "".
	email := accountName(req.GetEmail())
	if err := s.guard.Admit(email, req.GetRemoteIp()); err != nil {
		return nil, err
	}
	switch req.GetOutcome() {
	case metadatapb.LoginOutcome_LOGIN_OUTCOME_FAILURE:
		s.guard.Failed(email, req.GetRemoteIp())
	case metadatapb.LoginOutcome_LOGIN_OUTCOME_SUCCESS:
		s.guard.Succeeded(email, req.GetRemoteIp())
	}
	return &metadatapb.GuardLoginResponse{}, nil
}

// ListMailboxes lists the mailboxes of an account (or of a tenant, "tenant:NAME") as the
// request's user sees them, and with a user the mailboxes of other owners shared with it.
func (s *Service) ListMailboxes(ctx context.Context, req *metadatapb.ListMailboxesRequest) (*metadatapb.ListMailboxesResponse, error) {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	resp, err := v.listMailboxes(normalizeOwner(req.GetAccount()), user)
	if err != nil {
		return nil, readStatus(err)
	}
	return resp, nil
}

// GetMailbox returns one mailbox, by name or id, as the request's user sees it: it needs
// l or r (RFC 4314 4).
func (s *Service) GetMailbox(ctx context.Context, req *metadatapb.GetMailboxRequest) (*metadatapb.Mailbox, error) {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	id, name := req.GetId(), ""
	if req.GetName() != "" {
		var valid bool
		if name, valid = NormalizeMailboxName(req.GetName()); !valid {
			return nil, status.Errorf(codes.InvalidArgument, "invalid mailbox name %q", req.GetName())
		}
		id = 0
	} else if id == 0 {
		return nil, status.Error(codes.InvalidArgument, "get mailbox: give a name or an id")
	}
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	rec, granted, err := v.access(user, normalizeOwner(req.GetAccount()), id, name, 0)
	if err != nil {
		return nil, readStatus(err)
	}
	box, err := v.present(rec, user, granted)
	if err != nil {
		return nil, storageStatus(err)
	}
	return box, nil
}

func (s *Service) CreateMailbox(ctx context.Context, req *metadatapb.CreateMailboxRequest) (*metadatapb.Mailbox, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_CreateMailbox{CreateMailbox: req}}, (*metadatapb.CommandResult).GetMailbox)
}

func (s *Service) DeleteMailbox(ctx context.Context, req *metadatapb.DeleteMailboxRequest) (*metadatapb.DeleteMailboxResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	if _, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_DeleteMailbox{DeleteMailbox: req}}); err != nil {
		return nil, err
	}
	return &metadatapb.DeleteMailboxResponse{}, nil
}

func (s *Service) RenameMailbox(ctx context.Context, req *metadatapb.RenameMailboxRequest) (*metadatapb.RenameMailboxResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	if _, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_RenameMailbox{RenameMailbox: req}}); err != nil {
		return nil, err
	}
	return &metadatapb.RenameMailboxResponse{}, nil
}

func (s *Service) SetSubscribed(ctx context.Context, req *metadatapb.SetSubscribedRequest) (*metadatapb.SetSubscribedResponse, error) {
	req.Account = accountName(req.GetAccount())
	if _, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetSubscribed{SetSubscribed: req}}); err != nil {
		return nil, err
	}
	return &metadatapb.SetSubscribedResponse{}, nil
}

func (s *Service) Append(ctx context.Context, req *metadatapb.AppendRequest) (*metadatapb.AppendResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_Append{Append: req}}, (*metadatapb.CommandResult).GetAppend)
}

// ImportMessages appends messages with the UIDs and UIDVALIDITY of the server they are
// migrated from (import.go); an administrator's call (internal/authz).
func (s *Service) ImportMessages(ctx context.Context, req *metadatapb.ImportMessagesRequest) (*metadatapb.AppendResponse, error) {
	req.Account = normalizeOwner(req.GetAccount())
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_ImportMessages{ImportMessages: req}})
	if err != nil {
		return nil, err
	}
	return res.GetAppend(), nil
}

func (s *Service) StoreFlags(ctx context.Context, req *metadatapb.StoreFlagsRequest) (*metadatapb.StoreFlagsResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_StoreFlags{StoreFlags: req}}, (*metadatapb.CommandResult).GetStoreFlags)
}

func (s *Service) Copy(ctx context.Context, req *metadatapb.CopyRequest) (*metadatapb.CopyResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	if req.GetDestAccount() != "" {
		req.DestAccount = normalizeOwner(req.GetDestAccount())
		if req.DestAccount == "" {
			// An owner that cannot exist: the destination is missing (RFC 9051 6.4.7 TRYCREATE).
			return nil, status.Error(codes.NotFound, "mailbox not found")
		}
	}
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_Copy{Copy: req}})
	if err != nil {
		return nil, err
	}
	return res.GetCopy(), nil
}

func (s *Service) Expunge(ctx context.Context, req *metadatapb.ExpungeRequest) (*metadatapb.ExpungeResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_Expunge{Expunge: req}}, (*metadatapb.CommandResult).GetExpunge)
}

// ClaimRecent claims a mailbox's \Recent messages below up_to_uid for one IMAP4rev1
// session (recent.go); it needs r and a right to change the mailbox (RFC 4314 5.2).
func (s *Service) ClaimRecent(ctx context.Context, req *metadatapb.ClaimRecentRequest) (*metadatapb.ClaimRecentResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_ClaimRecent{ClaimRecent: req}}, (*metadatapb.CommandResult).GetClaimRecent)
}

// ListMessages returns the SELECT view of a mailbox, or one page of it; it needs r (RFC
// 4314 4).
func (s *Service) ListMessages(ctx context.Context, req *metadatapb.ListMessagesRequest) (*metadatapb.ListMessagesResponse, error) {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	rec, granted, err := v.access(user, normalizeOwner(req.GetAccount()), req.GetMailboxId(), "", rightRead)
	if err != nil {
		return nil, readStatus(err)
	}
	box, err := v.present(rec, user, granted)
	if err != nil {
		return nil, storageStatus(err)
	}
	resp, err := v.messageList(box, listingQuery{
		owner: rec.GetAccount(), user: user, afterUID: req.GetAfterUid(), limit: req.GetLimit(),
		dictionary: req.GetFlagSetDictionary(), sourceUIDs: req.GetSourceUids(), column: rec.GetListingColumn(),
	})
	if err != nil {
		return nil, storageStatus(err)
	}
	return resp, nil
}

// ListVanished answers VANISHED (EARLIER) (RFC 7162 3.2.5.1, 3.2.6) from the tombstones; it
// needs r (RFC 4314 4). An empty UID set means all.
func (s *Service) ListVanished(ctx context.Context, req *metadatapb.ListVanishedRequest) (*metadatapb.ListVanishedResponse, error) {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	rec, _, err := v.access(user, normalizeOwner(req.GetAccount()), req.GetMailboxId(), "", rightRead)
	if err != nil {
		return nil, readStatus(err)
	}
	ranges := allUIDs
	if len(req.GetUids()) > 0 {
		ranges = normalizeRanges(req.GetUids())
	}
	uids, complete, err := v.vanished(rec.GetMailbox(), req.GetSinceModseq(), ranges)
	if err != nil {
		return nil, storageStatus(err)
	}
	return &metadatapb.ListVanishedResponse{Vanished: uidRangesOf(uids), HighestModseq: rec.GetMailbox().GetHighestModseq(), Complete: complete}, nil
}

// FetchMessages streams records in UID order; an empty UID set means all. It needs r (RFC
// 4314 4), checked once on the first view. Each chunk is read from its own consistent view
// after the read barrier.
func (s *Service) FetchMessages(req *metadatapb.FetchMessagesRequest, stream grpc.ServerStreamingServer[metadatapb.MessageRecord]) error {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return err
	}
	v, err := s.read(stream.Context())
	if err != nil {
		return err
	}
	owner := normalizeOwner(req.GetAccount())
	_, _, err = v.access(user, owner, req.GetMailboxId(), "", rightRead)
	v.close()
	if err != nil {
		return readStatus(err)
	}
	privateUser := ""
	if isPrivate(user, owner) {
		privateUser = user
	}
	ranges := allUIDs
	if len(req.GetUids()) > 0 {
		ranges = normalizeRanges(req.GetUids())
	}
	var parts []protowire.Number
	if req.GetHeaderOnly() {
		parts = append(parts, structureHeaderField)
	}
	if req.GetPreviewOnly() {
		parts = append(parts, structurePreviewField)
	}
	if req.GetEnvelopeOnly() {
		parts = append(parts, structureEnvelopeField)
	}
	if req.GetSortKeysOnly() {
		parts = append(parts, structureSortKeysField)
	}
	for len(ranges) > 0 {
		v := s.fsm.view()
		records, err := v.messageRecords(req.GetMailboxId(), privateUser, ranges, req.GetWithStructure(), parts, fetchChunk)
		v.close()
		if err != nil {
			return storageStatus(err)
		}
		for _, r := range records {
			if names := req.GetHeaderFields(); req.GetHeaderOnly() && len(names) > 0 && r.GetStructure() != nil {
				r.Structure.Header = headerFields(r.Structure.GetHeader(), names)
			}
			if err := stream.Send(r); err != nil {
				return err
			}
		}
		if len(records) < fetchChunk {
			return nil
		}
		ranges = rangesAfter(ranges, records[len(records)-1].GetUid())
	}
	return nil
}

// rangesAfter returns the part of sorted ranges above uid.
func rangesAfter(ranges [][2]uint32, uid uint32) [][2]uint32 {
	var out [][2]uint32
	for _, r := range ranges {
		switch {
		case r[1] <= uid:
		case r[0] > uid:
			out = append(out, r)
		default:
			out = append(out, [2]uint32{uid + 1, r[1]})
		}
	}
	return out
}

// Watch streams the mailbox's journal after since_modseq, then live changes. It
// subscribes before its first read of the journal, and after every wake-up reads the
// journal again from its cursor, so no change is missed or sent twice. It needs r (RFC 4314
// 4), checked again at every wake-up, so a revoked right ends the stream with NotFound or
// PermissionDenied. It ends with NotFound after sending MAILBOX_DELETED.
func (s *Service) Watch(req *metadatapb.WatchRequest, stream grpc.ServerStreamingServer[metadatapb.ChangeBatch]) error {
	ctx := stream.Context()
	user, err := actingUser(req.GetUser())
	if err != nil {
		return err
	}
	owner := normalizeOwner(req.GetAccount())
	sub := s.fsm.Subscribe(req.GetMailboxId())
	defer sub.Close()
	v, err := s.read(ctx)
	if err != nil {
		return err
	}
	_, _, err = v.access(user, owner, req.GetMailboxId(), "", rightRead)
	v.close()
	if err != nil {
		return readStatus(err)
	}
	w := &watchState{owner: owner, user: user, mailbox: req.GetMailboxId(), cursor: req.GetSinceModseq(),
		followRights: req.GetFollowRights(), sentVersion: req.GetKnownAclVersion()}
	for {
		deleted, err := s.sendJournal(stream, w)
		if err != nil {
			return err
		}
		if deleted {
			return status.Errorf(codes.NotFound, "mailbox %d was deleted", req.GetMailboxId())
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-sub.Ready():
			if _, _, closed := sub.Drain(); closed {
				return status.Error(codes.Unavailable, "metadata service shutting down")
			}
		}
	}
}

// watchState is what one Watch stream follows: a mailbox as its user sees it, and the
// MODSEQ it has sent changes up to; with followRights, also the user's rights, and the ACL
// version of the rights the watcher holds (known_acl_version, then the last it was sent).
type watchState struct {
	owner, user string
	mailbox     uint64
	cursor      uint64

	followRights bool
	granted      rights // as of aclVersion, the last watchAccess
	aclVersion   uint64
	sentVersion  uint64
}

// rightsChange returns the CHANGE_KIND_RIGHTS change the stream owes its watcher, whose
// rights are as of another ACL version than the mailbox's; nil when it owes none.
func (w *watchState) rightsChange() *metadatapb.Change {
	if !w.followRights || w.sentVersion == w.aclVersion {
		return nil
	}
	w.sentVersion = w.aclVersion
	return &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_RIGHTS, Rights: w.granted.String(), AclVersion: w.aclVersion}
}

// sendJournal sends every journal entry after the cursor as the user sees it (changesFor),
// re-checking on each view that the user may still read the mailbox, and reports whether
// the mailbox was deleted. With followRights, the user's rights read on that view go
// first in its batch when they are not those sent last (a batch of no other change, at the
// cursor, when the journal has nothing new). A user
// other than the owner learns of a deletion only as MAILBOX_DELETED at the journal's end:
// without a mailbox there is no ACL to say what else it may read.
func (s *Service) sendJournal(stream grpc.ServerStreamingServer[metadatapb.ChangeBatch], w *watchState) (bool, error) {
	for {
		v := s.fsm.view()
		gone, err := v.watchAccess(w)
		if err != nil {
			v.close()
			return false, err
		}
		var entries []*metadatapb.ChangeBatch
		if gone && !isOwner(w.user, w.owner) {
			entries, err = v.deletedJournalEnd(w.mailbox, w.cursor)
		} else {
			entries, err = v.journal(w.mailbox, w.cursor, watchChunk)
		}
		if err == nil {
			err = v.changesFor(w, entries)
		}
		v.close()
		if err != nil {
			return false, storageStatus(err)
		}
		var rightsChange *metadatapb.Change
		if !gone {
			rightsChange = w.rightsChange()
		}
		if len(entries) == 0 && rightsChange == nil {
			return false, nil
		}
		out := &metadatapb.ChangeBatch{HighestModseq: w.cursor}
		if rightsChange != nil {
			out.Changes = append(out.Changes, rightsChange)
		}
		if len(entries) > 0 {
			// The first entry's log time: the lag of the batch's oldest change.
			out.TimestampUnixNano = entries[0].GetTimestampUnixNano()
		}
		deleted := false
		for _, e := range entries {
			out.Changes = append(out.Changes, e.GetChanges()...)
			out.HighestModseq = e.GetHighestModseq()
			for _, c := range e.GetChanges() {
				deleted = deleted || c.GetKind() == metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED
			}
		}
		if err := stream.Send(out); err != nil {
			return false, err
		}
		w.cursor = out.GetHighestModseq()
		if deleted {
			return true, nil
		}
	}
}

// SetAcl implements SETACL (RFC 4314 3.1); it needs a, or an admin call.
func (s *Service) SetAcl(ctx context.Context, req *metadatapb.SetAclRequest) (*metadatapb.AclResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetAcl{SetAcl: req}}, (*metadatapb.CommandResult).GetAcl)
}

// DeleteAcl implements DELETEACL (RFC 4314 3.2); it needs a, or an admin call.
func (s *Service) DeleteAcl(ctx context.Context, req *metadatapb.DeleteAclRequest) (*metadatapb.AclResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_DeleteAcl{DeleteAcl: req}}, (*metadatapb.CommandResult).GetAcl)
}

// GetAcl implements GETACL (RFC 4314 3.3); it needs a (RFC 4314 4), or an admin call.
func (s *Service) GetAcl(ctx context.Context, req *metadatapb.GetAclRequest) (*metadatapb.AclResponse, error) {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	name := ""
	if req.GetMailboxId() == 0 {
		var valid bool
		if name, valid = NormalizeMailboxName(req.GetName()); !valid {
			return nil, status.Errorf(codes.InvalidArgument, "invalid mailbox name %q", req.GetName())
		}
	}
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	rec, _, err := v.access(user, normalizeOwner(req.GetAccount()), req.GetMailboxId(), name, rightAdminister)
	if err != nil {
		return nil, readStatus(err)
	}
	return &metadatapb.AclResponse{MailboxId: rec.GetMailbox().GetId(), Acl: rec.GetMailbox().GetAcl()}, nil
}
