// Package message parses RFC 5322 / MIME messages once, at ingest, into the
// metadata form (proto/metadatapb.MessageStructure) that the IMAP engine serves
// ENVELOPE, BODYSTRUCTURE, BODY[HEADER], header searches and ranged body
// sections from, and renders that form back into IMAP syntax.
//
// Invariants:
//   - Parse reads its input exactly once, front to back, and holds at most one
//     read buffer, the header block being parsed (capped at MaxHeaderBytes), a
//     bounded prefix of the preview candidate, and the resulting structure
//     (bounded by MaxParts, MaxDepth and a retained-string budget). Memory never
//     grows with the size of bodies.
//   - Every offset in a BodyPart refers to the bytes exactly as given to Parse
//     (CRLF or bare LF), so that a section is a ranged read of the stored blob:
//     HeaderOffset <= BodyOffset <= EndOffset <= len(message), and siblings
//     appear in increasing offset order.
//   - Malformed MIME never makes Parse fail; only a read error does. Broken
//     structure degrades the way Dovecot and Cyrus degrade it (see the
//     comments at each rule).
//   - Strings in the structure are valid UTF-8 (protobuf requires it); raw
//     8-bit header bytes that are not UTF-8 are read as ISO-8859-1.
package message
