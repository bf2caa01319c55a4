package metadata

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// goldenAppendLog is what TestAppendApplyGolden applies: every stored key and every
// answer as main 286753a gave them, before fsm28 cut the Append apply's CPU (issue
// 14). Per key prefix, "keys sha256" of the keys and values in key order; "answers" is the
// sha256 of every entry's CommandResult, deterministically encoded, in log order.
var goldenAppendLog = map[string]string{
	"30":      "5 1d4707dc7822ed9433ac82b87ea89a3f2b9deea6c530da4e885c5b6f36455204",
	"41":      "3 45d7c0ab5ca2460ef0ff0f0361d65c3488b5f9a4ae2ac2e2f63a5bedf9b6a1d9",
	"42":      "1014 223c1be3c86dffe33623aa1f132222d44000e2939cf18d3b835ac8a7b106ca45",
	"44":      "1 00539504bffdf6eaabb12469ef3b6b4a54b747185b31583d3564e0e234929164",
	"45":      "3 6211cf95726256679a9666f053dae40b56e350af8acb86e15f56d01c05f09655",
	"46":      "10 61794353927b04138e389222411321fdf13c39214bc283f1ef02ead55a01b650",
	"48":      "2571 58962b2c7a4d22f0869452a7acc57bf81a9bc9b2596e3d28ea062b9af044b90d",
	"49":      "832 55b548f5f1af20a42bf20db6f54db98f2c72b10b270b21989dafe954b00b5a7d",
	"4a":      "537 7d610cda8e6144f222682bc152de899f534234bdf88f8aadac831fcd9621a64c",
	"4b":      "1 54523855ae9a035b88560d59209c455eb0d1dddbb1de873e7cb2fa0a0a24b775",
	"4c":      "1 7efc2800accfda1fe264c0da48d1fb3ee24b0c919733bce9d80a8cf33dcddfce",
	"4d":      "19 fac6e209c97aea854496e49dcb95e2660f38e0949f91cb90ec274c4858a8fb5f",
	"4e":      "19 45c2433bd4208f7e33b77f1f3a9b728ca8a562a9f3764e141675ad088718233e",
	"4f":      "9 b1e1ce5506183eeb59a54548be9c9dcfa88adb77e26feb2d5c135f075a92141f",
	"50":      "134 723c8c5f2616badac4d915951956e7210003be490f589e3ef9608e68094c0b77",
	"51":      "724 0c2b8784f8a13f3b4a7a6944cb7557bc44b7bcaf6fcb1a5ba220656b63874e9d",
	"52":      "1048 238ad7ba65b5a5cb77c1e49d90997381f88be71c7dead07dc5b435e0193bf26c",
	"53":      "1048 e19de21387edba63a56304f9f0f18eb142c2a71331c4f231aef864ef4c2d2462",
	"54":      "1 41ff95593d1525f2f9d1ce90de8aa23962ad8a7eaabcb5311713c5d7c6ec502c",
	"55":      "18 55ed69f5b5dc433387428d4f2bbd64af307df295f8d25e4512f50ef36ab2a7da",
	"57":      "4 765349d90b4ef0eec984d3f5c7d2133b4047de3b98af4ce63ee49e928ccc4115",
	"58":      "10 ecc3269d24870639aa71286f860cf5d3212eabbb0be97a2c2a0b7ee351387245",
	"63":      "10 7e0c1d85de5d7dbedb01c363eb330da9cca0028c1339d1717376b0146c86a138",
	"64":      "51 ed99edb75b4993dd6641cf2b013131205766974a75980381c2ff86f6ff723a88",
	"65":      "51 2e257a13971ef03a6176d3707b36fcb241a4b1d972188f8edc733fd81d0a35bc",
	"6a":      "824 47499ef3bd4a5c89f0c171b663f2f08fd52fd006677fbed2b71a112709ef701f",
	"6b":      "10 54971a9d6f89319283ac64fe98cb898c4b977a960c093db962d5eadb9b1a4e15",
	"70":      "1 8ea567c8a68b8015fbbcd331f65573031b9300553be3a4aa26bb6e8d92f5e149",
	"71":      "724 f66c9d89fc061c76a59d682f32767cec8c9eeb5465c52f6002a04adc3331bcf1",
	"74":      "10 b020c152f36bf1e75e295b432f338d2058a70c712ae5ba6b81dd093074d42907",
	"75":      "10 8756050ece54353f0892d595c4715c20336acc3b743125faee803bf3a5b1f4f7",
	"all":     "37f6e345ec1d7aa1b54522dd194905ebcdeab12061a758d3e58c20900570062c",
	"answers": "46a7f7e7a01471792170269e2178bf0a70d89baf59e41943d9365da2d69b2b12",
}

// TestAppendApplyGolden applies one fixed log of Appends, in batches of 1 to 64 entries,
// and compares the whole store, byte for byte (by a hash per key prefix), and every answer
// with what the build before fsm28 wrote (goldenAppendLog): the Append apply's shortcuts
// (fewer reads, allocations and encodings) must not change one byte of the state, which
// every replica replays. The log covers what an APPEND writes: messages of one to three
// per command with sort keys and thread keys (Message-IDs, references, replies by
// subject), flags with \Seen and without, \Seen kept private in a mailbox shared to another
// user, dedup keys and their duplicates, a body appended twice (one blob, two references),
// request IDs retried, appends refused over quota and after an earlier message of the same
// command was stored (rolled back), and STORE and EXPUNGE between them (tombstones,
// released blobs). The commands are stamped with a fixed level, so a later build, which
// applies a level's commands as this one does, still matches. It runs with the
// batches' last writes of a key left unwritten until the batch ends (txn.defers) and
// with every write at once.
func TestAppendApplyGolden(t *testing.T) {
	for _, writeEach := range []bool{false, true} {
		t.Run(fmt.Sprintf("writeEach=%v", writeEach), func(t *testing.T) {
			h := withAccount(t)
			h.f.writeEach.Store(writeEach)
			answers := applyGoldenLog(t, h)
			wantGolden(t, h, answers)
		})
	}
}

// applyGoldenLog applies the golden log (TestAppendApplyGolden) to h, a store with alice,
// and returns the answers, one encoded CommandResult a line.
func applyGoldenLog(t *testing.T, h *harness) []byte {
	t.Helper()
	h.step = 137 * time.Millisecond
	const bob, carol = "bob@example.org", "carol@example.org"
	h.ok(cmdAccount(bob))
	h.ok(cmdAccount(carol))
	h.ok(cmdCreateMailbox(alice, "Shared"))
	h.ok(cmdSetACL(alice, alice, "Shared", bob, "lrswit"))
	messages := uint64(40)
	h.ok(cmdSetQuota(carol, "", nil, &messages))
	boxes := []struct {
		user, owner string
		id          uint64
	}{
		{alice, alice, h.mustMailbox(alice, "INBOX").GetId()},
		{bob, bob, h.mustMailbox(bob, "INBOX").GetId()},
		{bob, alice, h.mustMailbox(alice, "Shared").GetId()},
		{carol, carol, h.mustMailbox(carol, "INBOX").GetId()},
	}
	level := FeatureSubjectRecords
	var answers []byte
	applyBatch := func(cmds []*metadatapb.Command) {
		t.Helper()
		entries := make([]*raft.Log, len(cmds))
		for i, cmd := range cmds {
			cmd.FeatureLevel = &level
			entries[i] = h.entry(cmd)
		}
		for _, r := range h.f.ApplyBatch(entries) {
			out, err := marshalOpts.Marshal(r.(*metadatapb.CommandResult))
			if err != nil {
				t.Fatalf("marshal result: %v", err)
			}
			answers = fmt.Appendf(answers, "%x\n", out)
		}
	}
	flagSets := [][]string{nil, {`\Seen`}, {`\Flagged`, "$Label"}, {`\Seen`, `\Answered`}, {`\Draft`}}
	sizes := []int{1, 64, 7, 33, 2, 64, 64, 5, 17, 1, 1, 40}
	n := 0
	for round := 0; n < 700; round++ {
		var cmds []*metadatapb.Command
		for range sizes[round%len(sizes)] {
			n++
			box := boxes[n%len(boxes)]
			blobs := []string{fmt.Sprintf("blob-%d", n)}
			for k := 1; k < 1+n%3; k++ {
				blobs = append(blobs, fmt.Sprintf("blob-%d-%d", n, k))
			}
			if n%11 == 0 {
				blobs[0] = fmt.Sprintf("blob-%d", n-4) // a body stored before
			}
			cmd := cmdAppendKeys(box.owner, box.id, n%5 != 0, blobs...)
			req := cmd.GetAppend()
			req.User = box.user
			for k, m := range req.GetMessages() {
				m.Flags = flagSets[(n+k)%len(flagSets)]
				refs := []string{fmt.Sprintf("m%d@example.org", n-3), fmt.Sprintf("m%d@example.org", n/7)}
				m.Thread = &metadatapb.ThreadKeys{
					MessageId:   fmt.Sprintf("m%d-%d@example.org", n, k),
					References:  refs[:n%3],
					BaseSubject: fmt.Sprintf("topic %d", n%13),
					Reply:       n%4 == 1,
				}
				if n%6 == 0 {
					m.Thread.MessageId = fmt.Sprintf("m%d@example.org", n-6) // a Message-ID seen before
				}
			}
			switch {
			case n%9 == 0:
				req.DedupKey = []byte(fmt.Sprintf("dedup-%d", n/27))
				req.DedupWindowSeconds = 600
			case n%29 == 0:
				req.Messages[len(req.Messages)-1].BlobKey = "" // refused after the first message
			}
			if n%23 == 0 {
				req.RequestId = fmt.Sprintf("golden-%d", n/46) // retried
			}
			cmds = append(cmds, cmd)
		}
		if round%4 == 3 {
			box := boxes[round%len(boxes)]
			first := uint32(1 + round%9)
			cmds = append(cmds,
				cmdStoreAs(box.user, box.owner, box.id, metadatapb.FlagOp_FLAG_OP_ADD, 0, []*metadatapb.UidRange{uidRange(first, first+4)}, `\Deleted`),
				&metadatapb.Command{Op: &metadatapb.Command_Expunge{Expunge: &metadatapb.ExpungeRequest{User: box.user, Account: box.owner, MailboxId: box.id, Uids: []*metadatapb.UidRange{uidRange(first, first+2)}}}})
		}
		applyBatch(cmds)
	}
	return answers
}

// wantGolden compares the store and the answers with goldenAppendLog.
func wantGolden(t *testing.T, h *harness, answers []byte) {
	t.Helper()
	got := goldenDump(t, h)
	sum := sha256.Sum256(answers)
	got["answers"] = hex.EncodeToString(sum[:])
	if !maps.Equal(got, goldenAppendLog) {
		var lines []string
		for _, k := range slices.Sorted(maps.Keys(got)) {
			mark := ""
			if goldenAppendLog[k] != got[k] {
				mark = " // differs: golden " + goldenAppendLog[k]
			}
			lines = append(lines, fmt.Sprintf("\t%q: %q,%s", k, got[k], mark))
		}
		for _, k := range slices.Sorted(maps.Keys(goldenAppendLog)) {
			if _, ok := got[k]; !ok {
				lines = append(lines, fmt.Sprintf("\t// missing: %q: %q", k, goldenAppendLog[k]))
			}
		}
		t.Errorf("the store or the answers differ from the golden log's:\n%s", strings.Join(lines, "\n"))
	}
}

// goldenDump returns, per key prefix (its first byte, in hex), the number of keys and the
// sha256 of every key and value under it in key order.
func goldenDump(t *testing.T, h *harness) map[string]string {
	t.Helper()
	v := h.f.view()
	defer v.close()
	type prefixSum struct {
		keys int
		h    []byte
	}
	sums := map[byte]*prefixSum{}
	var all []byte
	err := scan(v.r, nil, nil, func(k, val []byte) (bool, error) {
		s := sums[k[0]]
		if s == nil {
			s = &prefixSum{}
			sums[k[0]] = s
		}
		s.keys++
		s.h = fmt.Appendf(s.h, "%x=%x\n", k, val)
		all = fmt.Appendf(all, "%x=%x\n", k, val)
		return true, nil
	})
	if err != nil {
		t.Fatalf("scan the store: %v", err)
	}
	out := map[string]string{}
	for p, s := range sums {
		sum := sha256.Sum256(s.h)
		out[fmt.Sprintf("%02x", p)] = fmt.Sprintf("%d %x", s.keys, sum)
	}
	sum := sha256.Sum256(all)
	out["all"] = hex.EncodeToString(sum[:])
	return out
}

// TestUnwrittenValues: a value written to a key that defers (the log clock, a mailbox
// record, quota usage) is answered from the cache but not in the batch until the batch
// ends or an iterator over it opens; a delete, a range deletion and a rollback after it
// leave the batch what writing each at once would.
func TestUnwrittenValues(t *testing.T) {
	tx := newHarness(t).batchTxn()
	inBatch := func(key []byte) string {
		t.Helper()
		v, closer, err := tx.b.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			return "absent"
		}
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return string(v)
	}
	cached := func(key []byte) string {
		t.Helper()
		v, found, err := tx.get(key)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return "absent"
		}
		return string(v)
	}
	box, other := mailboxKey(5), mailboxKey(6)
	cached(box)
	tx.mustSet(box, []byte("v1"))
	if got := inBatch(box); got != "absent" {
		t.Fatalf("a deferred write is in the batch at once: %q", got)
	}
	if got := cached(box); got != "v1" {
		t.Fatalf("the cache answers %q, want v1", got)
	}
	var seen []string
	err := scan(tx, mailboxKey(0), mailboxKey(100), func(_, v []byte) (bool, error) {
		seen = append(seen, string(v))
		return true, nil
	})
	if err != nil || !slices.Equal(seen, []string{"v1"}) || inBatch(box) != "v1" {
		t.Fatalf("an iterator over the key saw %q (%v), the batch holds %q", seen, err, inBatch(box))
	}

	tx.mustSet(box, []byte("v2"))
	tx.savepoint()
	tx.mustSet(box, []byte("v3"))
	tx.rollback()
	cached(other)
	tx.mustSet(other, []byte("w1"))
	tx.mustDelete(other)
	tx.writeUnwritten(nil, nil)
	if got, gone := inBatch(box), inBatch(other); got != "v2" || gone != "absent" {
		t.Fatalf("after a rollback and a delete the batch holds %q and %q, want v2 and absent", got, gone)
	}

	tx.mustSet(box, []byte("v4"))
	tx.deleteRange(mailboxKey(0), mailboxKey(100))
	tx.writeUnwritten(nil, nil)
	if got := inBatch(box); got != "absent" {
		t.Fatalf("a range deletion after a deferred write left %q", got)
	}
	tx.mustSet(box, []byte("v5"))
	tx.writeUnwritten(nil, nil)
	if got := inBatch(box); got != "v5" {
		t.Fatalf("a write after the range deletion left %q, want v5", got)
	}
}
