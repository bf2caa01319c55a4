package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
)

const rpcTimeout = 10 * time.Second

// testService is a single-node Raft group with the Metadata service on a real gRPC
// listener, and a client connected to it.
type testService struct {
	t      testing.TB
	client metadatapb.MetadataClient
	fsm    *FSM
	node   *replication.Node
	addr   string // the gRPC listener's
	seq    int
}

func startService(t testing.TB) *testService {
	t.Helper()
	return startServiceWith(t, nil)
}

// startServiceWith is startService whose FSM and service record metrics.
func startServiceWith(t testing.TB, metrics *Metrics) *testService {
	t.Helper()
	return startServiceOn(t, serviceNet{metrics: metrics, listen: "127.0.0.1:0", clientCreds: insecure.NewCredentials()})
}

// serviceNet is how startServiceOn serves: metrics, the gRPC listen address, the server's
// transport credentials (nil: plaintext) and the client's.
type serviceNet struct {
	metrics     *Metrics
	listen      string
	serverCreds credentials.TransportCredentials
	clientCreds credentials.TransportCredentials
}

// startServiceOn is startService as sn says.
func startServiceOn(t testing.TB, sn serviceNet) *testService {
	t.Helper()
	metrics := sn.metrics
	dir := t.TempDir()
	logger := testLogger(t)
	fsm, err := OpenFSM(filepath.Join(dir, "fsm"), logger)
	if err != nil {
		t.Fatalf("open fsm: %v", err)
	}
	fsm.SetMetrics(metrics)
	node, err := replication.Open(replication.Config{
		NodeID:             "meta-1",
		DataDir:            dir,
		RaftBind:           "127.0.0.1:0",
		Bootstrap:          true,
		FSM:                fsm,
		Logger:             logger,
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
		CommitTimeout:      2 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("open raft node: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), rpcTimeout)
	defer cancel()
	if err := node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", sn.listen)
	if err != nil {
		t.Fatal(err)
	}
	// Stop waits for the handlers, so that none holds a store view when the FSM closes.
	opts := []grpc.ServerOption{grpc.WaitForHandlers(true)}
	if sn.serverCreds != nil {
		opts = append(opts, grpc.Creds(sn.serverCreds))
	}
	srv := grpc.NewServer(opts...)
	metadatapb.RegisterMetadataServer(srv, NewService(node, fsm, logger))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(sn.clientCreds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("grpc serve: %v", err)
		}
		if err := node.Close(); err != nil {
			t.Errorf("close raft node: %v", err)
		}
		if err := fsm.Close(); err != nil {
			t.Errorf("close fsm: %v", err)
		}
	})
	return &testService{t: t, client: metadatapb.NewMetadataClient(conn), fsm: fsm, node: node, addr: lis.Addr().String()}
}

func (s *testService) ctx() context.Context {
	ctx, cancel := context.WithTimeout(s.t.Context(), rpcTimeout)
	s.t.Cleanup(cancel)
	return ctx
}

func (s *testService) reqID() string {
	s.seq++
	return fmt.Sprintf("test-%d", s.seq)
}

// must returns v, or panics (failing the test with a stack) when an RPC the test
// relies on fails.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected RPC error: %v", err))
	}
	return v
}

func wantCode(t testing.TB, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("error %v, want code %v", err, code)
	}
}

// setupAlice creates tenant example (example.org) and alice@example.org.
func (s *testService) setupAlice() {
	s.t.Helper()
	must(s.client.CreateTenant(s.ctx(), &metadatapb.CreateTenantRequest{RequestId: s.reqID(), Name: "example", Domains: []string{"example.org"}}))
	must(s.client.CreateAccount(s.ctx(), &metadatapb.CreateAccountRequest{RequestId: s.reqID(), Email: alice, Password: "correct horse"}))
}

func (s *testService) mailbox(name string) *metadatapb.Mailbox {
	s.t.Helper()
	return must(s.client.GetMailbox(s.ctx(), &metadatapb.GetMailboxRequest{Account: alice, Name: name}))
}

func TestServiceAccounts(t *testing.T) {
	s := startService(t)
	c := s.client
	_, err := c.CreateTenant(s.ctx(), &metadatapb.CreateTenantRequest{Name: "example", Domains: []string{"example.org"}})
	wantCode(t, err, codes.InvalidArgument) // no request_id
	s.setupAlice()
	_, err = c.CreateAccount(s.ctx(), &metadatapb.CreateAccountRequest{RequestId: s.reqID(), Email: "x@nowhere.org", Password: "p"})
	wantCode(t, err, codes.NotFound)
	_, err = c.CreateAccount(s.ctx(), &metadatapb.CreateAccountRequest{RequestId: s.reqID(), Email: alice, Password: "p"})
	wantCode(t, err, codes.AlreadyExists)

	// A retried CreateAccount returns the first outcome, not AlreadyExists.
	first := must(c.CreateAccount(s.ctx(), &metadatapb.CreateAccountRequest{RequestId: "bob-1", Email: "bob@example.org", Password: "pw"}))
	retry := must(c.CreateAccount(s.ctx(), &metadatapb.CreateAccountRequest{RequestId: "bob-1", Email: "bob@example.org", Password: "pw"}))
	if first.GetEmail() != retry.GetEmail() || first.GetCreatedUnix() != retry.GetCreatedUnix() {
		t.Fatalf("retry = %v, first = %v", retry, first)
	}

	acct := must(c.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: "ALICE@example.org", Password: "correct horse"}))
	if acct.GetEmail() != alice || acct.GetTenant() != "example" {
		t.Fatalf("authenticated %v", acct)
	}
	for _, bad := range []*metadatapb.AuthenticateRequest{
		{Email: alice, Password: "wrong"},
		{Email: "nobody@example.org", Password: "correct horse"},
		{Email: alice, Password: ""},
	} {
		_, err := c.Authenticate(s.ctx(), bad)
		wantCode(t, err, codes.Unauthenticated)
	}
	must(c.SetPassword(s.ctx(), &metadatapb.SetPasswordRequest{RequestId: s.reqID(), Email: alice, Password: "new secret"}))
	_, err = c.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: "correct horse"})
	wantCode(t, err, codes.Unauthenticated)
	must(c.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: "new secret"}))

	// The store holds only the argon2id hash.
	v := s.fsm.view()
	rec, _, err := v.account(alice)
	v.close()
	if err != nil || !VerifyPassword(rec.GetPasswordHash(), "new secret") || rec.GetPasswordHash()[:10] != "$argon2id$" {
		t.Fatalf("stored hash %q, %v", rec.GetPasswordHash(), err)
	}

	tenants := must(c.ListTenants(s.ctx(), &metadatapb.ListTenantsRequest{}))
	if len(tenants.GetTenants()) != 1 || !slices.Equal(tenants.GetTenants()[0].GetDomains(), []string{"example.org"}) {
		t.Fatalf("tenants = %v", tenants)
	}
	accounts := must(c.ListAccounts(s.ctx(), &metadatapb.ListAccountsRequest{Tenant: "example"}))
	if len(accounts.GetAccounts()) != 2 {
		t.Fatalf("accounts = %v", accounts)
	}
	must(c.DeleteAccount(s.ctx(), &metadatapb.DeleteAccountRequest{RequestId: s.reqID(), Email: "bob@example.org"}))
	_, err = c.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: "bob@example.org", Password: "pw"})
	wantCode(t, err, codes.Unauthenticated)
	_, err = c.ListMailboxes(s.ctx(), &metadatapb.ListMailboxesRequest{Account: "bob@example.org"})
	wantCode(t, err, codes.NotFound)
}

func TestServiceMailboxes(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	box := must(c.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "Work/2026"}))
	if byID := must(c.GetMailbox(s.ctx(), &metadatapb.GetMailboxRequest{Account: alice, Id: box.GetId()})); byID.GetName() != "Work/2026" {
		t.Fatalf("by id = %v", byID)
	}
	_, err := c.GetMailbox(s.ctx(), &metadatapb.GetMailboxRequest{Account: "bob@example.org", Id: box.GetId()})
	wantCode(t, err, codes.NotFound) // another account's id
	must(c.RenameMailbox(s.ctx(), &metadatapb.RenameMailboxRequest{RequestId: s.reqID(), Account: alice, From: "Work", To: "Jobs"}))
	if renamed := s.mailbox("Jobs/2026"); renamed.GetId() != box.GetId() {
		t.Fatalf("renamed = %v", renamed)
	}
	must(c.SetSubscribed(s.ctx(), &metadatapb.SetSubscribedRequest{RequestId: s.reqID(), Account: alice, Name: "Jobs/2026", Subscribed: true}))
	if !s.mailbox("Jobs/2026").GetSubscribed() {
		t.Fatal("subscription not stored")
	}
	_, err = c.DeleteMailbox(s.ctx(), &metadatapb.DeleteMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "INBOX"})
	wantCode(t, err, codes.FailedPrecondition)
	must(c.DeleteMailbox(s.ctx(), &metadatapb.DeleteMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "Jobs/2026"}))
	list := must(c.ListMailboxes(s.ctx(), &metadatapb.ListMailboxesRequest{Account: alice}))
	var names []string
	for _, m := range list.GetMailboxes() {
		names = append(names, m.GetName())
	}
	if want := []string{"Archive", "Drafts", "INBOX", "Jobs", "Junk", "Sent", "Trash"}; !slices.Equal(names, want) {
		t.Fatalf("mailboxes = %v, want %v", names, want)
	}
	_, err = c.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "bad*name"})
	wantCode(t, err, codes.InvalidArgument)
}

func (s *testService) fetch(req *metadatapb.FetchMessagesRequest) []*metadatapb.MessageRecord {
	s.t.Helper()
	stream := must(s.client.FetchMessages(s.ctx(), req))
	var out []*metadatapb.MessageRecord
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			s.t.Fatalf("fetch: %v", err)
		}
		out = append(out, r)
	}
}

func newMessages(n int, prefix string) []*metadatapb.NewMessage {
	msgs := make([]*metadatapb.NewMessage, n)
	for i := range msgs {
		msgs[i] = &metadatapb.NewMessage{BlobKey: fmt.Sprintf("%s-%d", prefix, i), Size: 4400, InternalDateUnix: 1793534400, Structure: testStructure(prefix)}
	}
	return msgs
}

func TestServiceMessages(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	inbox, archive := s.mailbox("INBOX"), s.mailbox("Archive")

	// More messages than one fetch chunk, so FetchMessages crosses views.
	app := must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(), Messages: newMessages(fetchChunk+44, "m")}))
	if len(app.GetUids()) != fetchChunk+44 || app.GetUids()[fetchChunk+43] != fetchChunk+44 {
		t.Fatalf("append uids = %d", len(app.GetUids()))
	}
	all := s.fetch(&metadatapb.FetchMessagesRequest{Account: alice, MailboxId: inbox.GetId(), Uids: []*metadatapb.UidRange{uidRange(1, 0)}})
	if len(all) != fetchChunk+44 || all[0].GetStructure() != nil {
		t.Fatalf("fetched %d records (structure %v)", len(all), all[0].GetStructure() != nil)
	}
	for i, r := range all {
		if r.GetUid() != uint32(i+1) {
			t.Fatalf("record %d has uid %d", i, r.GetUid())
		}
	}
	some := s.fetch(&metadatapb.FetchMessagesRequest{Account: alice, MailboxId: inbox.GetId(), WithStructure: true,
		Uids: []*metadatapb.UidRange{uidRange(5, 3), uidRange(299, 0), uidRange(4, 6)}})
	var uids []uint32
	for _, r := range some {
		uids = append(uids, r.GetUid())
		if r.GetStructure().GetEnvelope().GetSubject() != "m" {
			t.Fatalf("structure of %d = %v", r.GetUid(), r.GetStructure())
		}
	}
	if !slices.Equal(uids, []uint32{3, 4, 5, 6, 299, 300}) {
		t.Fatalf("fetched uids %v", uids)
	}
	// header_only: the same header bytes, nothing else of the structure.
	headers := s.fetch(&metadatapb.FetchMessagesRequest{Account: alice, MailboxId: inbox.GetId(), WithStructure: true, HeaderOnly: true,
		Uids: []*metadatapb.UidRange{uidRange(3, 6), uidRange(299, 0)}})
	if len(headers) != len(some) {
		t.Fatalf("header_only fetched %d records, want %d", len(headers), len(some))
	}
	for i, r := range headers {
		want := &metadatapb.MessageStructure{Header: some[i].GetStructure().GetHeader()}
		if len(want.GetHeader()) == 0 || r.GetUid() != some[i].GetUid() || !proto.Equal(r.GetStructure(), want) {
			t.Fatalf("header_only record %d = %v, want uid %d and %v", i, r, some[i].GetUid(), want)
		}
	}
	// envelope_only, alone and with header_only.
	for _, withHeader := range []bool{false, true} {
		envelopes := s.fetch(&metadatapb.FetchMessagesRequest{Account: alice, MailboxId: inbox.GetId(), WithStructure: true, EnvelopeOnly: true,
			HeaderOnly: withHeader, Uids: []*metadatapb.UidRange{uidRange(3, 6), uidRange(299, 0)}})
		if len(envelopes) != len(some) {
			t.Fatalf("envelope_only fetched %d records, want %d", len(envelopes), len(some))
		}
		for i, r := range envelopes {
			want := &metadatapb.MessageStructure{Envelope: some[i].GetStructure().GetEnvelope()}
			if withHeader {
				want.Header = some[i].GetStructure().GetHeader()
			}
			if want.GetEnvelope() == nil || !proto.Equal(r.GetStructure(), want) {
				t.Fatalf("envelope_only (header %v) record %d = %v, want %v", withHeader, i, r.GetStructure(), want)
			}
		}
	}

	st := must(c.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(),
		Uids: []*metadatapb.UidRange{uidRange(1, 3)}, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Deleted`, `\seen`}}))
	if len(st.GetUpdated()) != 3 || st.GetModseq() != app.GetModseq()+1 {
		t.Fatalf("store = %v", st)
	}
	cp := must(c.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), Account: alice, SourceMailboxId: inbox.GetId(), DestMailboxId: archive.GetId(), Uids: []*metadatapb.UidRange{uidRange(10, 11)}}))
	mv := must(c.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), Account: alice, SourceMailboxId: inbox.GetId(), DestMailboxId: archive.GetId(), Uids: []*metadatapb.UidRange{uidRange(20, 20)}, Move: true}))
	if !slices.Equal(cp.GetDestUids(), []uint32{1, 2}) || !slices.Equal(mv.GetDestUids(), []uint32{3}) {
		t.Fatalf("copy %v move %v", cp, mv)
	}
	ex := must(c.Expunge(s.ctx(), &metadatapb.ExpungeRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId()}))
	if !slices.Equal(ex.GetExpunged(), []uint32{1, 2, 3}) {
		t.Fatalf("expunged %v", ex.GetExpunged())
	}
	list := must(c.ListMessages(s.ctx(), &metadatapb.ListMessagesRequest{Account: alice, MailboxId: inbox.GetId()}))
	if n := len(list.GetUids()); n != fetchChunk+44-4 || list.GetUids()[0] != 4 || len(list.GetFlags()) != n || len(list.GetModseqs()) != n {
		t.Fatalf("list has %d uids starting %d", n, list.GetUids()[0])
	}
	if m := list.GetMailbox(); m.GetMessages() != uint32(fetchChunk+40) || m.GetUnseen() != uint32(fetchChunk+40) || m.GetHighestModseq() != ex.GetModseq() {
		t.Fatalf("mailbox = %v", m)
	}
	_, err := c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: "bob@example.org", MailboxId: inbox.GetId(), Messages: newMessages(1, "x")})
	wantCode(t, err, codes.NotFound)
}

// watcher reads a Watch stream in the background.
type watcher struct {
	batches chan *metadatapb.ChangeBatch
	done    chan error
	cancel  context.CancelFunc
}

func (s *testService) watch(mailbox, since uint64) *watcher {
	return s.watchRequest(&metadatapb.WatchRequest{Account: alice, MailboxId: mailbox, SinceModseq: since})
}

// watchRequest opens the Watch stream req asks for and reads it in the background until the
// test ends.
func (s *testService) watchRequest(req *metadatapb.WatchRequest) *watcher {
	ctx, cancel := context.WithCancel(s.t.Context())
	stream, err := s.client.Watch(ctx, req)
	if err != nil {
		cancel()
		s.t.Fatalf("watch: %v", err)
	}
	w := &watcher{batches: make(chan *metadatapb.ChangeBatch, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			b, err := stream.Recv()
			if err != nil {
				w.done <- err
				return
			}
			w.batches <- b
		}
	}()
	s.t.Cleanup(cancel)
	return w
}

// changes collects changes until the watcher's cursor reaches modseq.
func (w *watcher) changes(t testing.TB, modseq uint64) []*metadatapb.Change {
	t.Helper()
	var out []*metadatapb.Change
	timeout := time.After(rpcTimeout)
	for cursor := uint64(0); cursor < modseq; {
		select {
		case b := <-w.batches:
			if b.GetHighestModseq() <= cursor {
				t.Fatalf("batch at %d after cursor %d", b.GetHighestModseq(), cursor)
			}
			cursor = b.GetHighestModseq()
			out = append(out, b.GetChanges()...)
		case err := <-w.done:
			if len(w.batches) > 0 {
				// Batches received before the end come first.
				w.done <- err
				continue
			}
			t.Fatalf("watch ended before modseq %d: %v", modseq, err)
		case <-timeout:
			t.Fatalf("watch did not reach modseq %d", modseq)
		}
	}
	return out
}

func kindsAndUIDs(changes []*metadatapb.Change) string {
	s := ""
	for _, c := range changes {
		s += fmt.Sprintf("%s:%d@%d ", c.GetKind().String()[len("CHANGE_KIND_"):], c.GetUid(), c.GetModseq())
	}
	return s
}

func TestServiceWatch(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	inbox := s.mailbox("INBOX")
	appendOne := func(blob string) *metadatapb.AppendResponse {
		return must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(), Messages: newMessages(1, blob)}))
	}
	appendOne("a")
	appendOne("b")

	// The journal first, then live changes.
	w := s.watch(inbox.GetId(), 0)
	if got := kindsAndUIDs(w.changes(t, 3)); got != "APPEND:1@2 APPEND:2@3 " {
		t.Fatalf("journal replay = %q", got)
	}
	must(c.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(),
		Uids: []*metadatapb.UidRange{uidRange(2, 2)}, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Seen`}}))
	appendOne("c")
	if got := kindsAndUIDs(w.changes(t, 5)); got != "FLAGS:2@4 APPEND:3@5 " {
		t.Fatalf("live changes = %q", got)
	}
	w.cancel()
	if err := <-w.done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled watch ended with %v", err)
	}

	// Changes while no one watches are picked up by a watcher resuming at its cursor,
	// including many concurrent writes without gaps or repeats.
	appendOne("d")
	w = s.watch(inbox.GetId(), 5)
	const writers, each = 4, 10
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			for j := range each {
				_, err := c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: fmt.Sprintf("w%d-%d", i, j), Account: alice, MailboxId: inbox.GetId(), Messages: newMessages(1, "w")})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	final := uint64(6 + writers*each)
	changes := w.changes(t, final)
	if len(changes) != 1+writers*each {
		t.Fatalf("resumed watch got %d changes: %s", len(changes), kindsAndUIDs(changes))
	}
	for i, ch := range changes {
		if ch.GetModseq() != uint64(6+i) || ch.GetUid() != uint32(4+i) || ch.GetKind() != metadatapb.ChangeKind_CHANGE_KIND_APPEND {
			t.Fatalf("change %d = %v", i, ch)
		}
	}

	// Deleting the mailbox ends the watch after MAILBOX_DELETED.
	must(c.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "Temp"}))
	temp := s.mailbox("Temp")
	wt := s.watch(temp.GetId(), 0)
	// Once the watcher has seen an append, it is established before the delete.
	must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: temp.GetId(), Messages: newMessages(1, "t")}))
	wt.changes(t, 2)
	must(c.DeleteMailbox(s.ctx(), &metadatapb.DeleteMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "Temp"}))
	if got := wt.changes(t, 3); len(got) != 1 || got[0].GetKind() != metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED {
		t.Fatalf("deleted mailbox watch got %s", kindsAndUIDs(got))
	}
	if err := <-wt.done; status.Code(err) != codes.NotFound {
		t.Fatalf("watch of deleted mailbox ended with %v", err)
	}
	// Another account cannot watch alice's mailbox; the error arrives on Recv.
	stream := must(c.Watch(s.ctx(), &metadatapb.WatchRequest{Account: "bob@example.org", MailboxId: inbox.GetId()}))
	_, err := stream.Recv()
	wantCode(t, err, codes.NotFound)
}

// TestServiceSubscriptions: the subscription list is a set of names apart from the mailboxes
// (RFC 9051 6.3.7): a name may be subscribed before it exists and stays subscribed after
// its mailbox is deleted; RENAME carries the subscriptions of the subtree along.
func TestServiceSubscriptions(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	subs := func() []string {
		t.Helper()
		return must(c.ListMailboxes(s.ctx(), &metadatapb.ListMailboxesRequest{Account: alice})).GetSubscriptions()
	}
	subscribe := func(name string, on bool) {
		t.Helper()
		must(c.SetSubscribed(s.ctx(), &metadatapb.SetSubscribedRequest{RequestId: s.reqID(), Account: alice, Name: name, Subscribed: on}))
	}
	defaults := []string{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"}
	if got := subs(); !slices.Equal(got, defaults) {
		t.Fatalf("default subscriptions = %v, want %v", got, defaults)
	}
	subscribe("Later/Plans", true)
	subscribe("inbox", true) // INBOX in any case is INBOX
	if got := subs(); !slices.Contains(got, "Later/Plans") || slices.Contains(got, "inbox") {
		t.Fatalf("subscriptions = %v", got)
	}
	created := must(c.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "Later/Plans"}))
	if !created.GetSubscribed() || !s.mailbox("Later/Plans").GetSubscribed() || s.mailbox("Later").GetSubscribed() {
		t.Fatalf("created = %v, parent subscribed = %v", created, s.mailbox("Later").GetSubscribed())
	}
	must(c.RenameMailbox(s.ctx(), &metadatapb.RenameMailboxRequest{RequestId: s.reqID(), Account: alice, From: "Later", To: "Soon"}))
	if got := subs(); !slices.Contains(got, "Soon/Plans") || slices.Contains(got, "Later/Plans") {
		t.Fatalf("after rename = %v", got)
	}
	must(c.DeleteMailbox(s.ctx(), &metadatapb.DeleteMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "Soon/Plans"}))
	if got := subs(); !slices.Contains(got, "Soon/Plans") {
		t.Fatalf("after delete = %v: a subscription must outlive its mailbox", got)
	}
	subscribe("Soon/Plans", false)
	subscribe("Never/Existed", false) // removing what is not there is fine
	if got := subs(); slices.Contains(got, "Soon/Plans") {
		t.Fatalf("after unsubscribe = %v", got)
	}
	_, err := c.SetSubscribed(s.ctx(), &metadatapb.SetSubscribedRequest{RequestId: s.reqID(), Account: alice, Name: "a//b", Subscribed: true})
	wantCode(t, err, codes.InvalidArgument)
}

// TestCheckCredential: the stamp Authenticate answers confirms the account without a hash
// until the password changes (even to the same password), the account is disabled, or it
// is deleted and created again; any other stamp is refused.
func TestCheckCredential(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	check := func(stamp []byte) error {
		_, err := c.CheckCredential(s.ctx(), &metadatapb.CheckCredentialRequest{Email: "Alice@example.org", CredentialStamp: stamp})
		return err
	}
	first := must(c.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: "correct horse"}))
	if len(first.GetCredentialStamp()) != credentialStampLen {
		t.Fatalf("Authenticate stamp = %x", first.GetCredentialStamp())
	}
	if acct := must(c.CheckCredential(s.ctx(), &metadatapb.CheckCredentialRequest{Email: alice, CredentialStamp: first.GetCredentialStamp()})); acct.GetEmail() != alice || acct.GetCredentialStamp() != nil {
		t.Fatalf("CheckCredential = %v", acct)
	}
	again := must(c.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: "correct horse"}))
	if !bytes.Equal(again.GetCredentialStamp(), first.GetCredentialStamp()) {
		t.Fatal("the stamp changed without a password change")
	}
	for _, bad := range [][]byte{nil, {}, make([]byte, credentialStampLen), first.GetCredentialStamp()[:credentialStampLen-1]} {
		wantCode(t, check(bad), codes.Unauthenticated)
	}
	_, err := c.CheckCredential(s.ctx(), &metadatapb.CheckCredentialRequest{Email: "nobody@example.org", CredentialStamp: first.GetCredentialStamp()})
	wantCode(t, err, codes.Unauthenticated)

	// A new hash of the same password: a new salt, a new stamp.
	must(c.SetPassword(s.ctx(), &metadatapb.SetPasswordRequest{RequestId: s.reqID(), Email: alice, Password: "correct horse"}))
	wantCode(t, check(first.GetCredentialStamp()), codes.Unauthenticated)
	second := must(c.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: "correct horse"})).GetCredentialStamp()
	if err := check(second); err != nil {
		t.Fatal(err)
	}

	must(c.SetAccountDisabled(s.ctx(), &metadatapb.SetAccountDisabledRequest{RequestId: s.reqID(), Email: alice, Disabled: true}))
	wantCode(t, check(second), codes.Unauthenticated)
	must(c.SetAccountDisabled(s.ctx(), &metadatapb.SetAccountDisabledRequest{RequestId: s.reqID(), Email: alice}))
	if err := check(second); err != nil {
		t.Fatal(err)
	}

	must(c.DeleteAccount(s.ctx(), &metadatapb.DeleteAccountRequest{RequestId: s.reqID(), Email: alice}))
	wantCode(t, check(second), codes.Unauthenticated)
	must(c.CreateAccount(s.ctx(), &metadatapb.CreateAccountRequest{RequestId: s.reqID(), Email: alice, Password: "correct horse"}))
	wantCode(t, check(second), codes.Unauthenticated)
}
