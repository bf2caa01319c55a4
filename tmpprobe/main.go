package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func main() {
	conn, err := grpc.NewClient(os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	c := metadatapb.NewMetadataClient(conn)
	ctx := context.Background()
	user := "bench1@example.com"
	mb, err := c.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: user, Name: "INBOX", User: user})
	if err != nil {
		panic(err)
	}
	measure := func(name string, n int, fn func(i int)) {
		var d []time.Duration
		for i := 0; i < n; i++ {
			t := time.Now()
			fn(i)
			d = append(d, time.Since(t))
			time.Sleep(10 * time.Millisecond)
		}
		slices.Sort(d)
		fmt.Printf("%-28s p50 %7.3f ms  p90 %7.3f ms\n", name, float64(d[n/2].Microseconds())/1000, float64(d[n*9/10].Microseconds())/1000)
	}
	measure("GetMailbox", 200, func(int) {
		if _, err := c.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: user, Name: "INBOX", User: user}); err != nil {
			panic(err)
		}
	})
	fetch := func(req *metadatapb.FetchMessagesRequest) {
		s, err := c.FetchMessages(ctx, req)
		if err != nil {
			panic(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				return
			}
		}
	}
	measure("FetchMessages 20 envelope", 200, func(i int) {
		fetch(&metadatapb.FetchMessagesRequest{Account: user, MailboxId: mb.GetId(), User: user, WithStructure: true, EnvelopeOnly: true,
			Uids: []*metadatapb.UidRange{{First: uint32(1 + i%150), Last: uint32(20 + i%150)}}})
	})
	measure("FetchMessages 200 subject", 200, func(i int) {
		fetch(&metadatapb.FetchMessagesRequest{Account: user, MailboxId: mb.GetId(), User: user, WithStructure: true, HeaderOnly: true, HeaderFields: []string{"Subject"}})
	})
	measure("StoreFlags 1", 200, func(i int) {
		op := metadatapb.FlagOp_FLAG_OP_ADD
		if i%2 == 1 {
			op = metadatapb.FlagOp_FLAG_OP_REMOVE
		}
		if _, err := c.StoreFlags(ctx, &metadatapb.StoreFlagsRequest{RequestId: fmt.Sprintf("probe-%d-%d", time.Now().UnixNano(), i), Account: user, MailboxId: mb.GetId(), User: user,
			Uids: []*metadatapb.UidRange{{First: 5, Last: 5}}, Op: op, Flags: []string{`\Flagged`}}); err != nil {
			panic(err)
		}
	})
}
