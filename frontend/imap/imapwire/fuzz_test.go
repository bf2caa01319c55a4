package imapwire

import (
	"strings"
	"testing"
)

// seedCommands are commands as real clients send them: Thunderbird, mutt, Python's imaplib,
// go-imap's imapclient, plus edge cases of the grammar.
var seedCommands = []string{
	// SORT, THREAD, ESORT, WITHIN (RFC 5256, RFC 5267, RFC 9394, RFC 5032)
	"s1 UID SORT (REVERSE ARRIVAL SUBJECT) UTF-8 ALL",
	"s2 SORT RETURN (MIN MAX COUNT ALL PARTIAL -1:-50) (DATE DISPLAYFROM) US-ASCII OR SEEN YOUNGER 3600",
	"s3 UID THREAD REFERENCES UTF-8 NOT OLDER 86400 SUBJECT {3+}\r\nabc",
	"s4 THREAD REFS \"UTF-8\" (1:* FLAGGED)",
	// CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 4), as its examples send them
	"B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk",
	"B02 UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 KEYWORD $Junk",
	"A01 SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk",
	"C01 UID SORT RETURN (UPDATE PARTIAL 23500:24000) (REVERSE DATE) UTF-8 UNDELETED",
	"C02 SEARCH RETURN (PARTIAL 1:500 UPDATE MIN) 1:* UNSEEN",
	"B04 CANCELUPDATE \"B01\"",
	"B05 CANCELUPDATE \"B01\" \"B\\\"2\"",
	// SEARCH=FUZZY (RFC 6203)
	"f1 UID SEARCH RETURN (ALL RELEVANCY) FUZZY SUBJECT \"quartely\"",
	"f2 SEARCH FUZZY (BODY sushy FROM alice) NOT FUZZY TEXT {3+}\r\nabc",
	"f3 SEARCH OR FUZZY HEADER X-Tag foo FUZZY FUZZY SEEN",
	// Thunderbird
	"1 capability",
	"2 authenticate PLAIN",
	"3 ID (\"name\" \"Thunderbird\" \"version\" \"128.0\")",
	"4 list (subscribed) \"\" \"*\" return (special-use)",
	"5 select \"INBOX\"",
	"6 UID fetch 1:* (FLAGS)",
	"7 UID fetch 3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])",
	"8 UID fetch 3 (UID RFC822.SIZE BODY.PEEK[]<0.32768>)",
	"9 UID store 3 +Flags (\\Seen)",
	"10 IDLE",
	"11 UID MOVE 4 \"Trash\"",
	"12 getquotaroot \"INBOX\"",
	"13 myrights \"Other Users/alice@example.com/Projects\"",
	"14 getacl \"Shared/Support\"",
	// mutt
	"a0001 CAPABILITY",
	"a0002 LOGIN \"demo@example.com\" \"demo\"",
	"a0003 LIST \"\" \"*\"",
	"a0004 SELECT \"INBOX\" (CONDSTORE)",
	"a0005 FETCH 1:4 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST X-LABEL)])",
	"a0006 UID STORE 5 -FLAGS.SILENT (\\Deleted)",
	"a0007 UID EXPUNGE 5",
	"a0008 APPEND \"Sent\" (\\Seen) {310}",
	"a0009 STATUS \"Drafts\" (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)",
	// imaplib
	"BHAD1 CAPABILITY",
	"BHAD2 LOGIN demo@example.com \"demo\"",
	"BHAD3 SELECT INBOX",
	"BHAD4 SEARCH ALL",
	"BHAD5 FETCH 1 (RFC822)",
	"BHAD6 STORE 1 +FLAGS \\Deleted",
	"BHAD7 EXPUNGE",
	"BHAD8 CLOSE",
	"BHAD9 LOGOUT",
	"BHAE1 APPEND INBOX () \"07-Feb-1994 21:52:25 -0800\" {5}",
	"u1 APPEND INBOX (\\Seen) UTF8 (~{5}",
	// imapclient and the grammar's corners
	"T1 LOGIN {4}\r\nuser {4+}\r\npass",
	"T2 UID SEARCH RETURN (ALL) CHARSET UTF-8 OR (FROM \"a\" SEEN) NOT (LARGER 10 SINCE 1-Jan-2024) UID 1:*,5",
	"T3 FETCH 1,2:4,7:* (BODY[1.2.MIME] BODY.PEEK[2.TEXT]<10.20> BINARY[1] BINARY.SIZE[1] BODYSTRUCTURE ENVELOPE)",
	"T4 RENAME {3}\r\nfoo \"b\\\"ar\"",
	"T5 ENABLE IMAP4rev2",
	"T5 ENABLE UTF8=ACCEPT",
	"T6 ID (\"name\" \"mutt\" \"os\" NIL)",
	"T6 ID NIL",
	"T6 AUTHENTICATE PLAIN AGRlbW9AZXhhbXBsZS5jb20AZGVtbw==",
	"T7 SEARCH $",
	"T8 UID COPY 1:* \"Ünïcode\"",
	"T9 STORE 1:* (UNCHANGEDSINCE 12) FLAGS.SILENT ()",
	"T9 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:3,20 1,5,100)) CONDSTORE)",
	"T9 UID FETCH 300:500 (FLAGS MODSEQ) (CHANGEDSINCE 12345 VANISHED)",
	"T9 FETCH 1:* (PREVIEW (LAZY) SAVEDATE ENVELOPE)",
	"T9 UID REPLACE 4 Drafts (\\Seen) {5+}\r\nhello",
	"T9 SEARCH OR SAVEDBEFORE 1-Jan-2000 SAVEDON 5-Dec-2026 SAVEDATESUPPORTED",
	"T9 LIST \"\" * RETURN (MYRIGHTS STATUS (HIGHESTMODSEQ))",
	"T9 SEARCH OR NOT MODSEQ \"/flags/\\\\draft\" all 720162338 LARGER 50000",
	"T10 UID FETCH $ (BINARY.PEEK[2.1]<0.5> BINARY.SIZE[1] RFC822.HEADER)",
	"T12 SETACL INBOX bob@example.com +lrs",
	"T12 SETACL {5}\r\nINBOX \"-bob@example.com\" \"\"",
	"T13 DELETEACL INBOX anyone",
	"T13 LISTRIGHTS INBOX anyone",
	"T14 COMPRESS DEFLATE",
	"T14 UNAUTHENTICATE",
	"T14 APPEND INBOX {5000+}",
	"T11 SEARCH RETURN (SAVE MIN) CHARSET UTF-8 (OR $ 5:2) BODY {2+}\r\n\xc3\xa9",
	// RFC 5464 METADATA, as Roundcube, Kolab and the RFC's examples send it
	"M1 GETMETADATA \"\" /shared/comment",
	"M2 GETMETADATA \"INBOX\" (MAXSIZE 1024) (/shared/comment /private/comment)",
	"M3 GETMETADATA (DEPTH infinity MAXSIZE 4096) \"Other Users/alice@example.com/Projects\" (/private /shared)",
	"M4 GETMETADATA INBOX /private/comment /shared/vendor/kolab/folder-type",
	"M5 SETMETADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines.)",
	"M6 SETMETADATA \"\" (/shared/comment NIL /private/vendor/acme/blob ~{4+}\r\na\x00\r\n)",
	"M7 SETMETADATA \"Archive\" (/private/specialuse \"\\\\Archive\")",
	"T14 UID FETCH 1:* (UID EMAILID THREADID)",
	"T14 UID SEARCH THREADID T64b478a75b7ea9 NOT EMAILID M6d99ac3275bb4e",
	"T14 STATUS INBOX (MAILBOXID MESSAGES)",
	// RFC 5465 NOTIFY, as in its examples and as Dovecot's tests send it
	"N1 NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From To)]) MessageExpunge FlagChange)) (subtree Lists (MessageNew MessageExpunge))",
	"N2 NOTIFY SET (selected-delayed (MessageNew MessageExpunge)) (inboxes (MessageNew MessageExpunge FlagChange)) (personal (MailboxName SubscriptionChange))",
	"N3 NOTIFY SET (mailboxes (INBOX \"Lists/IETF\" {4}\r\nWork) (MessageNew MessageExpunge)) (subscribed NONE)",
	"N4 NOTIFY NONE",
	"N5 notify set (PERSONAL (MailboxMetadataChange ServerMetadataChange AnnotationChange))",
	// RFC 7377 MULTISEARCH, as in its examples
	"S1 ESEARCH IN (mailboxes \"folder1\" subtree-one \"folder2\") subject \"chad\"",
	"S2 ESEARCH IN (mailboxes \"folder1\" subtree \"folder2\") unseen",
	"S3 ESEARCH IN (personal subscribed inboxes selected-delayed mailboxes (INBOX {4}\r\nWork)) RETURN (MIN MAX COUNT) CHARSET UTF-8 OR 1:5 FROM x",
	"S4 ESEARCH RETURN (SAVE ALL) NOT $",
	"S5 esearch in (subtree (\"Other Users/alice@example.com\" Shared) (x)) ALL",
}

// FuzzParseCommand checks that no input makes the parser panic or loop. `go test` runs the
// seeds; `make fuzz` runs it with a fuzz time.
func FuzzParseCommand(f *testing.F) {
	for _, s := range seedCommands {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := ParseCommand(b)
		if err == nil && (cmd == nil || cmd.Tag == "" || cmd.Name == "") {
			t.Fatalf("ParseCommand(%q) = %+v without an error", b, cmd)
		}
		if cmd != nil && strings.ContainsAny(cmd.Tag, " +(){") {
			t.Fatalf("bad tag %q", cmd.Tag)
		}
		if head, err := ParseAppendHead(b); err == nil {
			if args := head.Args.(*AppendArgs); args.Literal.Size < 0 {
				t.Fatalf("negative literal size in %q", b)
			}
		}
		LiteralAtEnd(b)
	})
}

func BenchmarkParseCommand(b *testing.B) {
	lines := [][]byte{
		[]byte("7 UID fetch 3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])"),
		[]byte("a0006 UID STORE 5:9,12 -FLAGS.SILENT (\\Deleted)"),
		[]byte("T2 UID SEARCH RETURN (ALL) OR (FROM \"a\" SEEN) NOT (LARGER 10 SINCE 1-Jan-2024) UID 1:*"),
		[]byte("a0002 LOGIN \"demo@example.com\" \"demo\""),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ParseCommand(lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
}
