"""A long IMAP session with Python's standard imaplib against a running Strata.

Covers NAMESPACE, LIST patterns, STATUS, APPEND with flags and date, UID FETCH of header
fields, BODYSTRUCTURE, partial fetches, UID STORE +FLAGS.SILENT, UID COPY / UID MOVE, SEARCH
with several keys, EXPUNGE, RENAME, DELETE and IDLE (raw: imaplib has no IDLE before 3.14).

Usage: imaplib_full.py HOST PORT USER PASSWORD
Exits non-zero with a message on the first unexpected answer. Leaves behind, for the Go
test to check: "Py/Sub" with messages A (\\Seen $Label1 \\Flagged) and C (from IDLE),
"Py/Renamed" with a copy of A, "Py Two" deleted, INBOX untouched.
"""
import imaplib
import re
import sys
import time

PLAIN = (b"From: Alice <alice@example.org>\r\nTo: demo@example.com\r\nSubject: plain A\r\n"
         b"Message-ID: <a@example.org>\r\nDate: Mon, 07 Feb 1994 21:52:25 -0800\r\n"
         b"\r\nHello, this is the plain body of message A.\r\n")
MULTI = (b"From: Bob <bob@example.org>\r\nTo: demo@example.com\r\nSubject: multi B\r\n"
         b"Message-ID: <b@example.org>\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n"
         b"preamble\r\n--xyz\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPart one text.\r\n"
         b"--xyz\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
         b"<p>Part two</p>\r\n--xyz--\r\n")


def fail(what, data):
    sys.exit(f"{what}: {data!r}")


def check(result, what):
    typ, data = result
    if typ != "OK":
        fail(f"{what} answered {typ}", data)
    return data


def literal_of(data):
    """Returns the first literal in a FETCH answer."""
    for part in data:
        if isinstance(part, tuple):
            return part[1]
    fail("no literal in FETCH answer", data)


def list_names(imap, ref, pattern):
    data = check(imap.list(ref, pattern), f"LIST {ref!r} {pattern!r}")
    names = []
    for line in data:
        if line is None:
            continue
        m = re.match(rb'\((.*?)\) (NIL|"."|"\\\\") (.*)$', line)
        if not m:
            fail("unparsable LIST line", line)
        name = m.group(3)
        if name.startswith(b'"'):
            name = name[1:-1]
        names.append(name.decode())
    return sorted(names)


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    imap = imaplib.IMAP4(host, port)
    for cap in ("IMAP4REV1", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE"):
        if cap not in imap.capabilities:
            fail(f"greeting capabilities lack {cap}", imap.capabilities)
    check(imap.login(user, password), "LOGIN")

    # RFC 2342 5: personal, other users' and shared namespaces, "/" as the delimiter.
    data = check(imap.namespace(), "NAMESPACE")
    if data != [b'(("" "/")) (("Other Users/" "/")) (("Shared/" "/"))']:
        fail("NAMESPACE", data)

    for name in ("Py", "Py/Sub", "Py/Other", '"Py Two"'):
        check(imap.create(name), f"CREATE {name}")
    typ, data = imap.create("Py/Sub")
    if typ != "NO":
        fail("CREATE of an existing mailbox", (typ, data))

    # RFC 9051 6.3.9: * matches the delimiter, % does not; the reference is prefixed.
    if list_names(imap, '""', "Py/*") != ["Py/Other", "Py/Sub"]:
        fail("LIST Py/*", list_names(imap, '""', "Py/*"))
    if list_names(imap, '""', "Py*") != ["Py", "Py Two", "Py/Other", "Py/Sub"]:
        fail("LIST Py*", list_names(imap, '""', "Py*"))
    if list_names(imap, '""', "Py%") != ["Py", "Py Two"]:
        fail("LIST Py%", list_names(imap, '""', "Py%"))
    if list_names(imap, "Py/", "%") != ["Py/Other", "Py/Sub"]:
        fail("LIST Py/ %", list_names(imap, "Py/", "%"))
    if list_names(imap, '""', "inbox") != ["INBOX"]:
        fail("LIST inbox (INBOX is case-insensitive)", list_names(imap, '""', "inbox"))
    data = check(imap.list('""', '""'), 'LIST "" ""')
    if len(data) != 1 or b'"/"' not in data[0] or b"\\Noselect" not in data[0]:
        fail('LIST "" "" must give the delimiter with \\Noselect', data)
    data = check(imap.list('""', "Py"), "LIST Py")
    if b"\\HasChildren" not in data[0]:
        fail("LIST Py lacks \\HasChildren", data)

    # APPEND with flags and a date (RFC 9051 6.3.12); APPENDUID (RFC 4315).
    date = imaplib.Time2Internaldate(time.mktime((2020, 3, 4, 5, 6, 7, 0, 0, -1)))
    data = check(imap.append("Py/Sub", r"(\Seen $Label1)", date, PLAIN), "APPEND A")
    typ, code = imap.response("APPENDUID")
    if not code or code[0] is None or len(code[0].split()) != 2:
        fail("APPEND without APPENDUID", (data, code))
    uid_a = int(code[0].split()[1])
    check(imap.append("Py/Sub", None, None, MULTI), "APPEND B")
    uid_b = int(imap.response("APPENDUID")[1][0].split()[1])
    if uid_b <= uid_a:
        fail("UIDs do not increase", (uid_a, uid_b))

    data = check(imap.status("Py/Sub", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"), "STATUS")
    m = re.search(rb"MESSAGES (\d+).*UIDNEXT (\d+).*UNSEEN (\d+)", data[0])
    if not m or int(m.group(1)) != 2 or int(m.group(2)) != uid_b + 1 or int(m.group(3)) != 1:
        fail("STATUS Py/Sub", data)

    check(imap.select("Py/Sub"), "SELECT Py/Sub")
    data = check(imap.uid("FETCH", str(uid_a), "(FLAGS INTERNALDATE)"), "UID FETCH INTERNALDATE")
    line = data[0]
    if b"\\Seen" not in line or b"$Label1" not in line or b'"04-Mar-2020 05:06:07' not in line:
        fail(f"FLAGS/INTERNALDATE of A (appended with {date})", data)

    # RFC 9051 6.4.5: HEADER.FIELDS gives the named fields in message order plus the blank line.
    data = check(imap.uid("FETCH", f"{uid_a}:{uid_b}", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"),
                 "UID FETCH HEADER.FIELDS")
    headers = [part[1] for part in data if isinstance(part, tuple)]
    if headers != [b"From: Alice <alice@example.org>\r\nSubject: plain A\r\n\r\n",
                   b"From: Bob <bob@example.org>\r\nSubject: multi B\r\n\r\n"]:
        fail("HEADER.FIELDS (SUBJECT FROM)", data)
    data = check(imap.uid("FETCH", str(uid_a), "(BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM TO DATE)])"),
                 "HEADER.FIELDS.NOT")
    if literal_of(data) != b"Message-ID: <a@example.org>\r\n\r\n":
        fail("HEADER.FIELDS.NOT", data)

    data = check(imap.uid("FETCH", str(uid_b), "(BODYSTRUCTURE)"), "BODYSTRUCTURE")
    bs = data[0].upper()
    for want in (b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 14 1',
                 b'("TEXT" "HTML" ("CHARSET" "UTF-8") NIL NIL "QUOTED-PRINTABLE" 15 1',
                 b'"MIXED" ("BOUNDARY" "XYZ")'):
        if want not in bs:
            fail(f"BODYSTRUCTURE lacks {want!r}", data)

    # Partial fetches (RFC 9051 6.4.5): <origin.count>, the answer names only the origin.
    data = check(imap.uid("FETCH", str(uid_a), "(BODY.PEEK[]<6.5>)"), "partial BODY[]")
    if literal_of(data) != b"Alice" or b"BODY[]<6>" not in data[0][0]:
        fail("BODY.PEEK[]<6.5>", data)
    data = check(imap.uid("FETCH", str(uid_b), "(BODY.PEEK[1]<5.3> BODY.PEEK[2.MIME])"), "partial part")
    lits = [part[1] for part in data if isinstance(part, tuple)]
    if b"one" not in lits or not any(b"Content-Type: text/html" in x for x in lits):
        fail("BODY[1]<5.3> and BODY[2.MIME]", data)
    data = check(imap.uid("FETCH", str(uid_a), "(BODY.PEEK[TEXT]<1000.10>)"), "partial beyond end")
    lits = [part[1] for part in data if isinstance(part, tuple)]
    if lits != [b""] and not (not lits and b'BODY[TEXT]<1000> ""' in data[0]):
        fail("a partial fetch beyond the end is empty", data)
    data = check(imap.uid("FETCH", str(uid_b), "(FLAGS)"), "FLAGS of B after peeks")
    if b"\\Seen" in data[0]:
        fail("BODY.PEEK set \\Seen", data)

    # UID STORE +FLAGS.SILENT: no FETCH answer for the changed message (RFC 9051 6.4.6).
    imap.untagged_responses.pop("FETCH", None)
    check(imap.uid("STORE", str(uid_a), "+FLAGS.SILENT", r"(\Flagged)"), "UID STORE +FLAGS.SILENT")
    if imap.untagged_responses.get("FETCH"):
        fail("+FLAGS.SILENT answered with FETCH", imap.untagged_responses["FETCH"])
    data = check(imap.uid("STORE", str(uid_b), "+FLAGS", r"(\Answered)"), "UID STORE +FLAGS")
    if not data or data[0] is None or f"UID {uid_b}".encode() not in data[0] or b"\\Answered" not in data[0]:
        fail("UID STORE +FLAGS must answer FETCH with UID and FLAGS", data)

    # SEARCH with several keys (RFC 9051 6.4.4).
    searches = [
        ("ALL", [uid_a, uid_b]),
        ("FLAGGED SEEN", [uid_a]),
        ("UNSEEN ANSWERED", [uid_b]),
        ('OR SUBJECT "plain" FROM bob', [uid_a, uid_b]),
        ('NOT FROM alice', [uid_b]),
        ("KEYWORD $Label1", [uid_a]),
        ("UNKEYWORD $Label1 LARGER 200", [uid_b]),
        ('BODY "Part one" HEADER Message-ID "<b@example.org>"', [uid_b]),
        (f"UID {uid_a} BEFORE 1-Jan-2021", [uid_a]),
        ("SENTBEFORE 1-Jan-2000", [uid_a]),
        ('TEXT "plain body"', [uid_a]),
        ("SMALLER 10", []),
    ]
    for criteria, want in searches:
        data = check(imap.uid("SEARCH", criteria), f"UID SEARCH {criteria}")
        got = sorted(int(x) for x in data[0].split())
        if got != want:
            fail(f"UID SEARCH {criteria} gave {got}, want {want}", data)
    data = check(imap.search("UTF-8", "SUBJECT", "multi"), "SEARCH CHARSET UTF-8")
    if data[0].split() != [b"2"]:
        fail("SEARCH CHARSET UTF-8 SUBJECT multi", data)

    # UID COPY keeps the source; COPYUID names both UID sets (RFC 4315 3).
    data = check(imap.uid("COPY", str(uid_a), "Py/Other"), "UID COPY")
    code = imap.response("COPYUID")[1]
    if not code or code[0] is None or code[0].split()[1] != str(uid_a).encode():
        fail("UID COPY without COPYUID", (data, code))
    typ, data = imap.uid("COPY", str(uid_a), "Nonexistent")
    if typ != "NO" or b"TRYCREATE" not in data[0]:
        fail("COPY to a missing mailbox must be NO [TRYCREATE]", (typ, data))

    # UID MOVE: the source loses the message with EXPUNGE (RFC 6851 3.3).
    check(imap.uid("MOVE", str(uid_b), '"Py Two"'), "UID MOVE")
    if imap.untagged_responses.get("EXPUNGE") != [b"2"]:
        fail("UID MOVE did not EXPUNGE message 2", imap.untagged_responses.get("EXPUNGE"))
    imap.untagged_responses.pop("EXPUNGE", None)
    data = check(imap.status('"Py Two"', "(MESSAGES)"), "STATUS Py Two")
    if b"MESSAGES 1" not in data[0]:
        fail("STATUS after MOVE", data)

    # EXPUNGE answers with the sequence numbers of the removed messages.
    check(imap.append("Py/Sub", r"(\Deleted)", None, PLAIN.replace(b"plain A", b"doomed")), "APPEND doomed")
    check(imap.noop(), "NOOP")
    data = check(imap.expunge(), "EXPUNGE")
    if data != [b"2"]:
        fail("EXPUNGE of the deleted message 2", data)

    # RENAME moves children too (RFC 9051 6.3.6); DELETE of a leaf.
    check(imap.create("Py/Other/Deep"), "CREATE Py/Other/Deep")
    check(imap.rename("Py/Other", "Py/Renamed"), "RENAME")
    if list_names(imap, '""', "Py/*") != ["Py/Renamed", "Py/Renamed/Deep", "Py/Sub"]:
        fail("LIST after RENAME", list_names(imap, '""', "Py/*"))
    check(imap.delete("Py/Renamed/Deep"), "DELETE Py/Renamed/Deep")
    check(imap.delete('"Py Two"'), "DELETE Py Two")
    typ, data = imap.select('"Py Two"')
    if typ != "NO":
        fail("SELECT of a deleted mailbox", (typ, data))
    typ, data = imap.delete("INBOX")
    if typ != "NO":
        fail("DELETE INBOX must be refused", (typ, data))

    # IDLE (RFC 2177), raw: another connection's APPEND shows up as EXISTS.
    check(imap.select("Py/Sub"), "SELECT Py/Sub again")
    tag = imap._new_tag()
    imap.send(tag + b" IDLE\r\n")
    line = imap.readline()
    if not line.startswith(b"+"):
        fail("IDLE continuation", line)
    other = imaplib.IMAP4(host, port)
    check(other.login(user, password), "LOGIN (second connection)")
    check(other.append("Py/Sub", None, None, PLAIN.replace(b"plain A", b"during idle C")), "APPEND during IDLE")
    other.logout()
    imap.sock.settimeout(10)
    line = imap.readline()
    if line != b"* 2 EXISTS\r\n":
        fail("IDLE did not report the new message", line)
    imap.send(b"DONE\r\n")
    while True:
        line = imap.readline()
        if line.startswith(tag):
            break
        if not line.startswith(b"*"):
            fail("unexpected line while ending IDLE", line)
    if not line.startswith(tag + b" OK"):
        fail("IDLE completion", line)
    imap.sock.settimeout(None)

    check(imap.unselect() if hasattr(imap, "unselect") else imap.close(), "UNSELECT")
    typ, _ = imap.logout()
    if typ != "BYE":
        fail("LOGOUT", typ)
    print("imaplib full session ok")


if __name__ == "__main__":
    main()
