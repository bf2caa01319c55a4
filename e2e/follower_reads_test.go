package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"google.golang.org/grpc"
	grpcmd "google.golang.org/grpc/metadata"

	"github.com/strata-mail/strata/internal/etcdtest"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestFollowerReads runs etcd, three `strata metadata` processes and one `strata frontend`
// with follower reads (its default). Every metadata process answers a session-consistent
// read at an index it has applied and labels it with its applied index; a follower asked
// for an index beyond its own refuses with NOT_LEADER. Through the frontend, each APPEND is
// at once visible to a new session's SELECT and FETCH and to another session's STATUS,
// before, while and after a follower is SIGSTOPped; UIDNEXT as a polling session sees it
// never goes back, and the appending session's own view catches up through its change
// feed even when that feed was on the stopped node.
func TestFollowerReads(t *testing.T) {
	etcd := etcdtest.Start(t)
	nodes := []*metaNode{
		newMetaNode(t, "n1", etcd, "--log-level", "info"),
		newMetaNode(t, "n2", etcd, "--log-level", "info"),
		newMetaNode(t, "n3", etcd, "--log-level", "info"),
	}
	startNodes(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitVoters(t, ctx, nodes, "n1", "n2", "n3")
	addClusterAccount(t, etcd)

	// Every member answers a session read at the index of the account's creation.
	lc := newLeaderClient(t, nodes...)
	var trailer grpcmd.MD
	if err := lc.do(ctx, func(ctx context.Context, c metadatapb.MetadataClient) error {
		_, err := c.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: "u@acme.test"}, grpc.Trailer(&trailer))
		return err
	}); err != nil {
		t.Fatalf("get account on the leader: %v", err)
	}
	created := appliedIndexOf(t, trailer)
	for _, n := range nodes {
		conn, err := grpc.NewClient(n.grpcAddr, grpc.WithTransportCredentials(n.creds))
		if err != nil {
			t.Fatal(err)
		}
		md := metadatapb.NewMetadataClient(conn)
		at := func(index uint64) context.Context {
			return grpcmd.AppendToOutgoingContext(ctx, metadata.MinIndexHeader, strconv.FormatUint(index, 10))
		}
		if _, err := md.ListMailboxes(at(created), &metadatapb.ListMailboxesRequest{Account: "u@acme.test"}, grpc.Trailer(&trailer)); err != nil {
			t.Errorf("session read on %s at index %d: %v", n.id, created, err)
		} else if got := appliedIndexOf(t, trailer); got < created {
			t.Errorf("%s answered at index %d, below the min index %d", n.id, got, created)
		}
		if st, err := n.status(ctx, false); err == nil && st.GetState() != "Leader" {
			_, err := md.ListMailboxes(at(created+1_000_000), &metadatapb.ListMailboxesRequest{Account: "u@acme.test"})
			if notLeaderID(err) == "" {
				t.Errorf("session read on follower %s beyond its index: %v, want NOT_LEADER naming the leader", n.id, err)
			}
		}
		conn.Close()
	}

	fe := startFrontend(t, "A", etcd, "--blob-dir", t.TempDir())
	// The frontend learns the metadata nodes from etcd just after it starts.
	var writer *imapclient.Client
	testwait.Until(t, 30*time.Second, func() error {
		var err error
		if writer, _, err = dialSystem(fe.imapAddr, "INBOX", nil); err != nil {
			return fmt.Errorf("writer session: %w", err)
		}
		return nil
	})
	defer writer.Close()
	reader := loginSystem(t, fe.imapAddr)
	defer reader.Close()

	// A session polls STATUS throughout: UIDNEXT must never go back, and no poll may fail.
	poller := loginSystem(t, fe.imapAddr)
	defer poller.Close()
	stopPoll := make(chan struct{})
	var polls sync.WaitGroup
	var pollErr error
	var pollCount int
	polls.Go(func() {
		var last uint32
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(20 * time.Millisecond):
			}
			st, err := poller.Status("INBOX", &imap.StatusOptions{UIDNext: true}).Wait()
			if err != nil {
				pollErr = fmt.Errorf("STATUS poll %d: %w", pollCount+1, err)
				return
			}
			pollCount++
			if next := uint32(st.UIDNext); next < last {
				pollErr = fmt.Errorf("STATUS poll %d: UIDNEXT went back from %d to %d", pollCount, last, next)
				return
			} else {
				last = next
			}
		}
	})

	appended := 0
	round := func(phase string) {
		t.Helper()
		appended++
		uid, err := appendMessage(writer, "INBOX", systemMessage(fmt.Sprintf("<fr-%d@strata.test>", appended)), nil)
		if err != nil {
			t.Fatalf("%s: APPEND %d: %v", phase, appended, err)
		}
		st, err := reader.Status("INBOX", &imap.StatusOptions{UIDNext: true, NumMessages: true}).Wait()
		if err != nil {
			t.Fatalf("%s: STATUS after APPEND %d: %v", phase, appended, err)
		}
		if uint32(st.UIDNext) <= uid || st.NumMessages == nil || *st.NumMessages != uint32(appended) {
			t.Fatalf("%s: STATUS after APPEND of UID %d: UIDNEXT %d, MESSAGES %v; want above %d and %d", phase, uid, st.UIDNext, st.NumMessages, uid, appended)
		}
		fresh, sel, err := dialSystem(fe.imapAddr, "INBOX", nil)
		if err != nil {
			t.Fatalf("%s: new session after APPEND %d: %v", phase, appended, err)
		}
		defer fresh.Close()
		if uint32(sel.UIDNext) <= uid || sel.NumMessages != uint32(appended) {
			t.Fatalf("%s: SELECT after APPEND of UID %d: UIDNEXT %d, EXISTS %d; want above %d and %d", phase, uid, sel.UIDNext, sel.NumMessages, uid, appended)
		}
		msgs, err := fresh.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
		if err != nil || len(msgs) != 1 || uint32(msgs[0].UID) != uid {
			t.Fatalf("%s: UID FETCH %d in a new session: %v, %v", phase, uid, msgs, err)
		}
	}
	for range 5 {
		round("before the stop")
	}
	follower := followerOf(t, ctx, nodes)
	follower.signal(syscall.SIGSTOP)
	stoppedAt := time.Now()
	for range 10 {
		round("follower " + follower.id + " stopped")
	}
	t.Logf("10 rounds with follower %s stopped took %v", follower.id, time.Since(stoppedAt).Round(time.Millisecond))
	follower.signal(syscall.SIGCONT)
	waitCaughtUp(t, ctx, nodes)
	for range 5 {
		round("after the stop")
	}
	close(stopPoll)
	polls.Wait()
	if pollErr != nil {
		t.Error(pollErr)
	}
	t.Logf("%d STATUS polls, UIDNEXT never went back", pollCount)

	// The writer's own view follows its change feed, wherever that was.
	testwait.Until(t, 60*time.Second, func() error {
		if err := writer.Noop().Wait(); err != nil {
			t.Fatalf("writer NOOP: %v", err)
		}
		if n := writer.Mailbox().NumMessages; n != uint32(appended) {
			return fmt.Errorf("writer session shows %d messages, %d appended", n, appended)
		}
		return nil
	})
}

// appliedIndexOf reads metadata.AppliedIndexHeader from response metadata.
func appliedIndexOf(t *testing.T, md grpcmd.MD) uint64 {
	t.Helper()
	values := md.Get(metadata.AppliedIndexHeader)
	if len(values) == 0 {
		t.Fatalf("response carries no %s: %v", metadata.AppliedIndexHeader, md)
	}
	index, err := strconv.ParseUint(values[len(values)-1], 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", metadata.AppliedIndexHeader, err)
	}
	return index
}

// loginSystem opens an authenticated session of u@acme.test on a frontend.
func loginSystem(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("u@acme.test", "pw").Wait(); err != nil {
		c.Close()
		t.Fatalf("login: %v", err)
	}
	return c
}
