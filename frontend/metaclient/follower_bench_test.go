package metaclient_test

import (
	"fmt"
	"runtime"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/metaclient"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// BenchmarkSessionReads measures the reads of selected sessions on the in-process 3-voter
// group, from 64 goroutines sharing one client (one frontend), with follower reads off
// (every read linearizable on the leader) and on (session-consistent, spread over the
// three members). The mailbox holds 100 messages; follower-share is the part of the reads
// the followers served. The group has the election timing of `strata metadata`, so that
// the loaded machine does not make it change leader during a run.
//
//	go test -run '^$' -bench BenchmarkSessionReads -benchtime 5s ./frontend/metaclient/
func BenchmarkSessionReads(b *testing.B) {
	g := startGroupTimed(b, defaultElections)
	setup := newClient(b, g.nodes())
	md := metadatapb.NewMetadataClient(setup)
	createDemo(b, md)
	inbox := inboxID(b, md)
	req := &metadatapb.AppendRequest{RequestId: "bench-append", Account: embedded.DemoAccount, MailboxId: inbox}
	for i := range 100 {
		req.Messages = append(req.Messages, &metadatapb.NewMessage{BlobKey: fmt.Sprint("blob-", i), Size: 2048, InternalDateUnix: 1793534400})
	}
	if _, err := md.Append(rpcContext(b), req); err != nil {
		b.Fatalf("append: %v", err)
	}
	list := func(b *testing.B, md metadatapb.MetadataClient) error {
		resp, err := md.ListMessages(b.Context(), &metadatapb.ListMessagesRequest{Account: embedded.DemoAccount, MailboxId: inbox})
		if err == nil && len(resp.GetUids()) != 100 {
			err = fmt.Errorf("listed %d messages", len(resp.GetUids()))
		}
		return err
	}
	fetch := func(b *testing.B, md metadatapb.MetadataClient) error {
		uids, err := tryFetchUIDs(b.Context(), md, inbox)
		if err == nil && len(uids) != 100 {
			err = fmt.Errorf("fetched %d messages", len(uids))
		}
		return err
	}
	for _, read := range []struct {
		name string
		call func(*testing.B, metadatapb.MetadataClient) error
	}{{"ListMessages", list}, {"FetchMessages", fetch}} {
		for _, followerReads := range []bool{false, true} {
			name := read.name + "/leader"
			if followerReads {
				name = read.name + "/followers"
			}
			b.Run(name, func(b *testing.B) {
				c, err := metaclient.New(metaclient.Config{Nodes: g.nodes(), DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, Logger: quietLogger(), FollowerReads: followerReads})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				md := metadatapb.NewMetadataClient(c)
				// The client's read position comes from its first answers, as a frontend's
				// from its sessions' logins.
				inboxID(b, md)
				leader := g.leader()
				before := served(g.members, metadatapb.Metadata_ListMessages_FullMethodName, metadatapb.Metadata_FetchMessages_FullMethodName)
				b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := read.call(b, md); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				after := served(g.members, metadatapb.Metadata_ListMessages_FullMethodName, metadatapb.Metadata_FetchMessages_FullMethodName)
				total, followers := 0, 0
				for i, m := range g.members {
					total += after[i] - before[i]
					if m != leader {
						followers += after[i] - before[i]
					}
				}
				if total > 0 {
					b.ReportMetric(float64(followers)/float64(total), "follower-share")
				}
			})
		}
	}
}
