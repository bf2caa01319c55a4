// Package blobstore holds message bodies. Engines live in sub-packages (fs for the embedded
// mode, S3 for clusters); every engine passes the conformance suite in storetest.
//
// Invariants:
//
//   - A body is durable before the metadata that references it commits: ingest calls
//     Store.Put, which returns only once the bytes survive a crash, and only then appends the
//     message through the metadata service. Removal goes the other way: metadata first, then
//     Store.Delete. The one exception is a Stager (the fs store of the embedded mode): its
//     body is readable before the commit and durable before the commit is acknowledged
//     (Staged.Sync runs beside the Append); the embedded server syncs staged bodies before
//     each Raft snapshot and recovers after a machine crash what referenced a body that
//     did not survive it.
//   - Keys are content hashes under a tenant prefix, "t/<tenant>/<sha256 hex>" (see Key). A
//     store checks that the bytes it is given hash to the key's digest, so an object never holds
//     anything but the body its key names; for a body from a Spool (HashedReader) the check
//     is against the digest the spool computed while taking the bytes in, so a body is hashed
//     once on its way in (Prehashed).
//   - Dedup is within a tenant and free: a Put of a key that exists stores nothing more and
//     succeeds. Two tenants never share an object, so no tenant's key can read, probe or delete
//     another tenant's body.
//   - Stores accept only keys that pass ValidKey, so no key escapes a store's root.
//   - Refcounts live in the metadata FSM; a Store does not count references and Delete removes
//     exactly the one object it is asked to remove.
package blobstore
