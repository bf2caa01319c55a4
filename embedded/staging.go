package embedded

// Staging recovery. The embedded server's frontends stage message bodies in the fs store
// (blobstore.Stager): a body is in place before its Append is sent and made durable beside
// it, and nothing is acknowledged before both are durable (frontend/ingest). What that
// leaves after a crash of the machine (power loss, kernel panic; a killed process leaves
// the page cache and so every staged body whole) is a committed Append whose body is
// missing or not whole, that no client was told succeeded. This file finds those after
// such a crash and expunges them, so that no mailbox holds a message without its body:
//
//   - The staging marker (DataDir/staging-boot) holds the boot ID of the kernel the server
//     last started under; it is written, synced, at startup once the recovery below is
//     over and removed at a clean shutdown after every staged body is synced. A marker left
//     by an earlier boot means the machine went down while the server ran: staged bodies
//     may be lost. (A marker of this boot means only the process died.)
//   - Every body staged before a Raft snapshot is durable before it is taken
//     (replication.Config.BeforeSnapshot syncs the store), so raft compacts no entry whose
//     body may be lost: the Appends that may reference a lost body are all in the log.
//   - The recovery reads every Append in the log, checks each body it references (present
//     and hashing to its key, fs.Store.Check), and expunges, in every mailbox of every
//     account the log's Appends and Copies name, the messages that reference a body that is
//     not whole. It runs before any client is served. A crash during it leaves the old
//     marker, so the next start runs it again.
//   - A marker of this boot means the process was killed: the bodies it staged are whole in
//     the page cache but perhaps not yet on disk, and this process's snapshots sync only
//     what it stages itself (fs.Store.SyncStaged), so raft could compact the Appends of a
//     killed process's bodies before they reach the disk, and a later power loss would
//     lose them where no recovery looks. So a start that finds any marker syncs the body
//     store's whole file system (syncfs(2)) before raft opens (syncAfterCrash), unless
//     the store's own Open synced it (fs.Store.SyncedAtOpen: its last owner, a killed
//     process, did not close it cleanly): one sync per start at most, and none after a
//     clean shutdown. A marker with a cleanly closed store is left by a shutdown whose
//     sessions did not all end (Shutdown): they may have staged after the store's Close.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/internal/fsync"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
)

// stagingMarkerName is the staging marker's file name in the data directory.
const stagingMarkerName = "staging-boot"

// bootIDFile holds the ID Linux draws at every boot.
var bootIDFile = "/proc/sys/kernel/random/boot_id"

// bootID returns this boot's ID, or "" where there is none to read.
func bootID() string {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// stagingRecoveryNeeded reports whether the marker in dataDir says that the machine went
// down while a server ran on it: a marker of another boot, or either boot ID unknown.
func stagingRecoveryNeeded(dataDir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, stagingMarkerName))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // a clean shutdown, or a new data directory
	}
	if err != nil {
		return false, fmt.Errorf("read staging marker: %w", err)
	}
	marked, now := strings.TrimSpace(string(b)), bootID()
	return marked == "" || now == "" || marked != now, nil
}

// syncAfterCrash syncs the file system of blobRoot when dataDir holds a staging marker (the
// last server on it did not shut down cleanly): what a killed process staged and never
// synced is made durable before raft may compact its Appends (file comment).
func syncAfterCrash(dataDir, blobRoot string) error {
	if _, err := os.Stat(filepath.Join(dataDir, stagingMarkerName)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read staging marker: %w", err)
	}
	if err := fsync.Filesystem(blobRoot); err != nil {
		return fmt.Errorf("staging: sync what the last process staged: %w", err)
	}
	return nil
}

// writeStagingMarker writes this boot's ID as the staging marker, durably.
func writeStagingMarker(dataDir string) error {
	path := filepath.Join(dataDir, stagingMarkerName)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write staging marker: %w", err)
	}
	_, werr := f.WriteString(bootID() + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write staging marker: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write staging marker: %w", err)
	}
	return fsync.Dir(dataDir)
}

// removeStagingMarker removes the staging marker, durably: called at a clean shutdown once
// every staged body is synced.
func removeStagingMarker(dataDir string) error {
	if err := os.Remove(filepath.Join(dataDir, stagingMarkerName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove staging marker: %w", err)
	}
	return fsync.Dir(dataDir)
}

// recoverStaged finds the bodies that the Appends in node's log reference and that are not
// whole in blobs, and expunges the messages that reference them (file comment). It returns
// how many messages it expunged.
func recoverStaged(ctx context.Context, node *replication.Node, blobs *fs.Store, md metadatapb.MetadataClient, log *slog.Logger) (int, error) {
	checked := map[string]bool{}  // blob keys read
	lost := map[string]bool{}     // those that are not whole
	accounts := map[string]bool{} // accounts whose mailboxes may hold a message of a lost body
	err := node.EachCommand(func(index uint64, data []byte) error {
		var cmd metadatapb.Command
		if err := proto.Unmarshal(data, &cmd); err != nil {
			return nil // not a command this recovery reads; the FSM reports it
		}
		if c := cmd.GetCopy(); c != nil {
			accounts[c.GetAccount()] = true
			if c.GetDestAccount() != "" {
				accounts[c.GetDestAccount()] = true
			}
		}
		a := cmd.GetAppend()
		if a == nil {
			return nil
		}
		accounts[a.GetAccount()] = true
		for _, m := range a.GetMessages() {
			key := m.GetBlobKey()
			if checked[key] {
				continue
			}
			checked[key] = true
			if err := blobs.Check(ctx, key); err != nil {
				if !errors.Is(err, blobstore.ErrNotFound) && !errors.Is(err, blobstore.ErrDigestMismatch) {
					// Not a verdict on the body (an I/O error): expunging on it could
					// drop an acknowledged message.
					return err
				}
				log.Warn("staging recovery: a body the log references did not survive the crash", "key", key, "index", index, "err", err)
				lost[key] = true
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("staging recovery: read the raft log: %w", err)
	}
	if len(lost) == 0 {
		return 0, nil
	}
	expunged := 0
	for account := range accounts {
		n, err := expungeLost(ctx, md, account, lost)
		expunged += n
		if err != nil {
			return expunged, fmt.Errorf("staging recovery: account %s: %w", account, err)
		}
	}
	log.Warn("staging recovery: expunged the messages whose bodies the crash lost; none had been acknowledged", "bodies", len(lost), "messages", expunged)
	return expunged, nil
}

// expungeLost expunges, in every mailbox of account, the messages whose body is in lost.
func expungeLost(ctx context.Context, md metadatapb.MetadataClient, account string, lost map[string]bool) (int, error) {
	list, err := md.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: account})
	if err != nil {
		if isNotFound(err) {
			return 0, nil // deleted since
		}
		return 0, err
	}
	expunged := 0
	for _, mb := range list.GetMailboxes() {
		if mb.GetNoselect() {
			continue
		}
		uids, err := lostUIDs(ctx, md, account, mb.GetId(), lost)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return expunged, err
		}
		if len(uids) == 0 {
			continue
		}
		if _, err := md.StoreFlags(ctx, &metadatapb.StoreFlagsRequest{
			RequestId: NewRequestID(), Account: account, MailboxId: mb.GetId(), Uids: uids,
			Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Deleted`},
		}); err != nil {
			return expunged, err
		}
		resp, err := md.Expunge(ctx, &metadatapb.ExpungeRequest{RequestId: NewRequestID(), Account: account, MailboxId: mb.GetId(), Uids: uids})
		if err != nil {
			return expunged, err
		}
		expunged += len(resp.GetExpunged())
	}
	return expunged, nil
}

// lostUIDs returns, as ranges of one UID each, the messages of a mailbox whose body is in
// lost.
func lostUIDs(ctx context.Context, md metadatapb.MetadataClient, account string, mailbox uint64, lost map[string]bool) ([]*metadatapb.UidRange, error) {
	stream, err := md.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{
		Account: account, MailboxId: mailbox, Uids: []*metadatapb.UidRange{{First: 1, Last: ^uint32(0)}},
	})
	if err != nil {
		return nil, err
	}
	var uids []*metadatapb.UidRange
	for {
		rec, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return uids, nil
			}
			return nil, err
		}
		if lost[rec.GetBlobKey()] {
			uids = append(uids, &metadatapb.UidRange{First: rec.GetUid(), Last: rec.GetUid()})
		}
	}
}

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }
