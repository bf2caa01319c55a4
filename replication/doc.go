// Package replication wires hashicorp/raft for one Raft group: the log and stable store, the
// snapshot store, the TCP transport, bootstrap and membership changes, leader routing and
// linearizable reads. A process may run many Nodes (several groups, or several members of one
// group in tests); the package holds no global state.
//
// Invariants:
//
//   - The state machine (StateMachine) persists the index of the last log it applied in the same
//     storage transaction as the effects of that log, and its ApplyBatch skips every log whose
//     Index is <= AppliedIndex() while still returning one response per log. Raft therefore
//     never double-applies an entry, whatever it replays after a restart.
//   - Raft is started with NoSnapshotRestoreOnStart: Open restores the latest snapshot into the
//     state machine itself, and only when the snapshot's index is greater than AppliedIndex()
//     and, for a state machine that can read it (SnapshotApplied), the applied index the
//     snapshot was taken at is too (raft's index also counts no-ops and barriers).
//     After Open the state machine is never behind the first entry of the (possibly compacted)
//     log; raft replays the entries after the snapshot and the state machine skips those it
//     already holds.
//   - The log after the latest snapshot is bounded in bytes as well as in entries: a start
//     reads every entry after the snapshot once (the replay), whatever the state machine
//     holds; NewRaft's scan for configuration entries reads only the configuration entries
//     and those the store has no side record for (configscan.go). The node asks raft for a snapshot
//     once the entries stored after the latest one take Config.SnapshotBytes (loggrowth.go),
//     and none while raft replays what was stored when it started. Before each, and every
//     minute, it sets raft's TrailingLogs to about Config.TrailingBytes of entries of the
//     mean size of those after the latest snapshot, never above Config.TrailingLogs. Such a snapshot is an ordinary raft snapshot (BeforeSnapshot,
//     Persist, then compaction), so every invariant here holds for it.
//   - A snapshot carries the state machine's own applied index, and Restore adopts it: after
//     Restore, AppliedIndex() is at least the index raft recorded for the snapshot (Open checks
//     this). A snapshot may hold state past the index raft labels it with; that is safe because
//     the state machine only ever holds committed entries.
//   - Raft hands the state machine LogCommand and LogConfiguration entries only (never no-op or
//     barrier entries). A linearizable read therefore waits for the state machine to reach the
//     last entry at or below the commit index that it will actually see, not the commit index.
//   - Linearizable reads (ReadBarrier): a leader serves them only once a Barrier issued in its
//     current term has completed, so that its commit index covers everything earlier leaders
//     committed; then per read: CommitIndex(), VerifyLeader(), and wait until the state machine
//     has applied up to that index. A leader that is the only voter of its latest
//     configuration skips the per-read steps: no other node can be elected, and a write is
//     acknowledged only once applied, so its state holds every acknowledged write.
//   - Apply returns the state machine's response for the entry; a command the state machine
//     rejects comes back as that response, never as Apply's error. Apply's error means the
//     entry was not committed, or that its outcome is unknown (a timed-out or interrupted Apply
//     may still commit, which is why commands carry request IDs).
//   - Node consumes raft's LeaderCh itself; callers of Raft() must not read from it.
//   - With Config.TLS every Raft connection, accepted or dialled, is mutual TLS between node
//     identities of the cluster CA (transport.go, internal/clustertls); raft never reads a
//     message from a peer that failed the handshake. Without it the transport is plaintext
//     (the embedded mode, on loopback).
//   - The log and stable store (logStore) is a Pebble instance of its own in DataDir/raft/log;
//     every write is committed with a WAL sync before it returns, so a log raft was told is
//     stored survives SIGKILL and power loss. A DataDir from before it holds raft/raft.db
//     (raft-boltdb): Open copies it over and renames it raft.db.migrated, only after the copy
//     is synced and marked complete (boltmigrate.go).
package replication
