package metadata

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TextIndex is the node's text-search index (package searchindex), which runs beside the
// FSM fed by its change feed. The metadata service only checks rights and hands the
// calls over: it never reads bodies itself (DESIGN.md: boundaries).
type TextIndex interface {
	SearchText(ctx context.Context, req *metadatapb.SearchTextRequest) (*metadatapb.SearchTextResponse, error)
	Rebuild(ctx context.Context, account string, progress func(done, total uint64)) error
}

// SetTextIndex makes the service answer SearchText and RebuildSearchIndex from ix. Call
// it before serving; without one, SearchText answers indexed=false.
func (s *Service) SetTextIndex(ix TextIndex) { s.textIndex = ix }

// loginAnswer marks account, the answer of a call a login makes, with whether this node
// keeps the text-search index (Account.search_index): an IMAP session of a frontend
// announces SEARCH=FUZZY (RFC 6203) after its login only then.
func (s *Service) loginAnswer(account *metadatapb.Account) *metadatapb.Account {
	if account != nil {
		account.SearchIndex = s.textIndex != nil
	}
	return account
}

// SearchText answers from the node's index after checking that the acting user may read
// the mailbox (RFC 4314 4: SEARCH needs r).
func (s *Service) SearchText(ctx context.Context, req *metadatapb.SearchTextRequest) (*metadatapb.SearchTextResponse, error) {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	_, _, err = v.access(user, normalizeOwner(req.GetAccount()), req.GetMailboxId(), "", rightRead)
	v.close()
	if err != nil {
		return nil, readStatus(err)
	}
	if s.textIndex == nil {
		return &metadatapb.SearchTextResponse{}, nil
	}
	r := &metadatapb.SearchTextRequest{Account: normalizeOwner(req.GetAccount()), MailboxId: req.GetMailboxId(), Queries: req.GetQueries()}
	return s.textIndex.SearchText(ctx, r)
}

// RebuildSearchIndex rebuilds the account's index on this node, streaming progress. Each
// node, follower or leader, keeps its own index of its group's accounts and rebuilds it
// from its own applied state (LocalReads); this call reaches only the node it is sent to,
// and `strata index rebuild --etcd` sends it to every registered node.
func (s *Service) RebuildSearchIndex(req *metadatapb.RebuildSearchIndexRequest, stream grpc.ServerStreamingServer[metadatapb.RebuildSearchIndexProgress]) error {
	if s.textIndex == nil {
		return status.Error(codes.FailedPrecondition, "this node keeps no search index")
	}
	if req.GetAccount() == "" {
		return status.Error(codes.InvalidArgument, "rebuild search index: no account")
	}
	var sendErr error
	err := s.textIndex.Rebuild(LocalReads(stream.Context()), normalizeOwner(req.GetAccount()), func(done, total uint64) {
		if sendErr == nil {
			sendErr = stream.Send(&metadatapb.RebuildSearchIndexProgress{Done: done, Total: total})
		}
	})
	if err != nil {
		if status.Code(err) != codes.Unknown {
			return err
		}
		return status.Errorf(codes.Internal, "rebuild search index of %s: %v", req.GetAccount(), err)
	}
	return sendErr
}
